"""Every hook is prefixed, typed and documented, in its docstring and in docs/hooks.md.

The checks are driven by the hookspecs module itself, so a hook added without
its documentation fails here rather than reaching plugin authors undocumented.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from qiao.core import hookmarkers, hookspecs
from qiao.core.pluginmanager import create_plugins

ROOT = Path(__file__).resolve().parents[2]
HOOKS_DOC = ROOT / "docs" / "hooks.md"
PLUGINS_DOC = ROOT / "docs" / "plugins.md"
SPEC_MARK = f"{hookmarkers.PROJECT}_spec"
#: What the issue requires plugins to be able to do, by hook.
REQUIRED = {
    "qiao_entity_manifests",
    "qiao_extend_entities",
    "qiao_before_record_write",
    "qiao_after_record_write",
    "qiao_graphql_types",
    "qiao_routes",
    "qiao_cli_commands",
    "qiao_startup",
}


def _specs() -> dict[str, Callable[..., Any]]:
    """The hook specifications, found by pluggy's own marker, in source order."""
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and hasattr(fn, SPEC_MARK)
    }


SPECS = _specs()


def _docstring(fn: Callable[..., Any]) -> str:
    return inspect.cleandoc(fn.__doc__ or "")


def _params(fn: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(fn).parameters)


def _returns(fn: Callable[..., Any]) -> str:
    """The text of the ``:returns:`` field (up to the next unindented field), on one line."""
    match = re.search(r"^:returns:(.*?)(?=\n:\w|\Z)", _docstring(fn), re.S | re.M)
    assert match, f"{fn.__name__}: no ':returns:'"
    return " ".join(match.group(1).split())


def _type_checking_namespace() -> dict[str, Any]:
    """hookspecs' globals plus its ``if TYPE_CHECKING:`` imports, to resolve annotations."""
    tree = ast.parse(Path(hookspecs.__file__).read_text(encoding="utf-8"))
    namespace = dict(vars(hookspecs))
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            code = compile(ast.Module(body=node.body, type_ignores=[]), hookspecs.__file__, "exec")
            exec(code, namespace)
    return namespace


def _sections() -> dict[str, list[str]]:
    """Banner-comment titles of hookspecs.py and the hooks defined under each."""
    lines = Path(hookspecs.__file__).read_text(encoding="utf-8").splitlines()
    banner = re.compile(r"^# -{20,}$")
    titles = [
        (i, lines[i].removeprefix("# ").strip())
        for i in range(1, len(lines) - 1)
        if banner.match(lines[i - 1]) and banner.match(lines[i + 1])
    ]
    sections: dict[str, list[str]] = {}
    for name, fn in SPECS.items():
        line = inspect.getsourcelines(fn)[1] - 1
        above = [title for i, title in titles if i < line]
        assert above, f"{name} is above every section banner in hookspecs.py"
        sections.setdefault(above[-1], []).append(name)
    for _, title in titles:
        sections.setdefault(title, [])
    return sections


def _doc_sections(text: str) -> dict[str, tuple[str, str]]:
    """docs/hooks.md: hook name -> (its ``##`` section title, the text of its ``###`` part)."""
    found: dict[str, tuple[str, str]] = {}
    section = ""
    current: str | None = None
    body: list[str] = []
    for line in [*text.splitlines(), "## (end)"]:
        heading = re.match(r"^(#{2,3}) (.*)$", line)
        if heading:
            if current is not None:
                found[current] = (section, "\n".join(body))
            current, body = None, []
            level, title = heading.groups()
            if level == "##":
                section = title.strip()
            else:
                name = re.fullmatch(r"`(qiao_\w+)`", title.strip())
                assert name, f"docs/hooks.md: hook heading {title!r} is not `qiao_<name>`"
                current = name.group(1)
        elif current is not None:
            body.append(line)
    return found


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


# -- The hook surface ---------------------------------------------------------------------


def test_the_hooks_are_found_and_cover_what_plugins_must_be_able_to_do() -> None:
    assert set(SPECS) >= REQUIRED, f"missing hooks: {REQUIRED - set(SPECS)}"


def test_the_plugin_manager_knows_exactly_these_hooks() -> None:
    plugins = create_plugins([])
    known = {name for name in vars(plugins.pm.hook) if not name.startswith("_")}
    assert known == set(SPECS)


@pytest.mark.parametrize("name", SPECS)
def test_hook_is_prefixed(name: str) -> None:
    assert name.startswith("qiao_")


@pytest.mark.parametrize("name", SPECS)
def test_hook_is_fully_typed_with_types_that_exist(name: str) -> None:
    fn = SPECS[name]
    signature = inspect.signature(fn)
    for param in signature.parameters.values():
        assert param.annotation is not inspect.Parameter.empty, f"{name}({param.name}) untyped"
        assert param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (
            f"{name}({param.name}): hooks are called with plain keyword arguments"
        )
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: no return type"
    hints = typing.get_type_hints(fn, globalns=_type_checking_namespace())
    assert set(hints) == {*signature.parameters, "return"}


@pytest.mark.parametrize("name", SPECS)
def test_docstring_says_when_the_hook_is_called(name: str) -> None:
    doc = _docstring(SPECS[name])
    assert doc.splitlines()[0].endswith("."), f"{name}: the summary line is one sentence"
    assert "Called " in doc, f"{name}: the docstring must say when it is called ('Called ...')"


@pytest.mark.parametrize("name", SPECS)
def test_docstring_documents_every_parameter_once(name: str) -> None:
    documented = re.findall(r":param (\w+):", _docstring(SPECS[name]))
    assert documented == _params(SPECS[name])


@pytest.mark.parametrize("name", SPECS)
def test_returns_says_what_happens_to_results(name: str) -> None:
    fn = SPECS[name]
    returns = _returns(fn)
    firstresult = getattr(fn, SPEC_MARK).get("firstresult", False)
    if inspect.signature(fn).return_annotation in {None, "None"}:
        assert returns.startswith("nothing"), f"{name} returns None; ':returns:' starts 'nothing'"
    elif firstresult:
        assert "first result wins" in returns.lower(), f"{name} is firstresult"
    else:
        assert "collected" in returns.lower(), f"{name}: say that results are collected"


def test_hookspecs_are_grouped_under_section_banners() -> None:
    sections = _sections()
    assert len(sections) >= 2
    for title, hooks in sections.items():
        assert hooks, f"section {title!r} of hookspecs.py has no hooks"


# -- The reference ------------------------------------------------------------------------


def test_docs_have_a_heading_per_hook_under_its_section() -> None:
    documented = _doc_sections(HOOKS_DOC.read_text(encoding="utf-8"))
    assert set(documented) == set(SPECS), "docs/hooks.md and hookspecs.py list different hooks"
    for title, hooks in _sections().items():
        for name in hooks:
            assert documented[name][0] == title, f"{name} belongs under '## {title}'"


@pytest.mark.parametrize("name", SPECS)
def test_docs_give_the_signature_and_summary(name: str) -> None:
    documented = _doc_sections(HOOKS_DOC.read_text(encoding="utf-8"))
    assert name in documented, f"docs/hooks.md has no '### `{name}`'"
    _, body = documented[name]
    fn = SPECS[name]
    assert f"{name}({', '.join(_params(fn))})" in body, f"docs/hooks.md: {name}'s signature"
    summary = _docstring(fn).splitlines()[0].replace("``", "`")
    assert summary in " ".join(body.split()), f"docs/hooks.md: {name} lacks {summary!r}"
    assert "@hookimpl" in body, f"docs/hooks.md: {name} has no worked example"


@pytest.mark.parametrize("doc", [HOOKS_DOC, PLUGINS_DOC], ids=lambda p: p.name)
def test_doc_examples_are_valid_plugins(doc: Path, tmp_path: Path) -> None:
    """Each example with ``@hookimpl`` runs and registers: names and arguments match specs."""
    blocks = [b for b in _python_blocks(doc.read_text(encoding="utf-8")) if "@hookimpl" in b]
    assert blocks
    for i, block in enumerate(blocks):
        module = ModuleType(f"qiao_doc_example_{doc.stem}_{i}")
        module.__file__ = str(tmp_path / f"example_{i}.py")
        sys.modules[module.__name__] = module
        try:
            exec(compile(block, f"{doc.name} example {i + 1}", "exec"), vars(module))
            plugins = create_plugins([], [module])
        finally:
            del sys.modules[module.__name__]
        assert module.__name__ in plugins.names
        hooks = {n for n in vars(module) if n.startswith("qiao_")}
        assert hooks <= set(SPECS), f"{doc.name} example {i + 1} uses unknown hooks"
