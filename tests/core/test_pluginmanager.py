"""Finding, ordering, checking and calling plugins (no database involved).

Installed plugins are simulated with real :class:`EntryPoint` objects whose
modules are put in ``sys.modules`` (or live in ``plugin_fixtures``), so
``create_plugins`` loads them the way it loads an installed distribution.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from qiao.core.errors import ConfigurationError, MetadataError
from qiao.core.hookmarkers import hookimpl, hookspec
from qiao.core.metadata.manifest import Manifest
from qiao.core.metadata.model import FieldDef
from qiao.core.metadata.registry import Registry
from qiao.core.pluginmanager import (
    BLOCK_ENV,
    BUILTIN_PLUGINS,
    ENTRY_POINT_GROUP,
    Plugins,
    create_plugins,
)

from . import plugin_fixtures
from .plugin_fixtures import warranty

INSTALLED = (*BUILTIN_PLUGINS, "crm")
GADGET = {
    "name": "gadget",
    "plural": "gadgets",
    "label": {"en": "Gadget"},
    "fields": [{"name": "name", "type": "string", "label": {"en": "Name"}}],
}

Install = Callable[..., ModuleType]
#: The routes of these plugins need no runtime, so none is built.
NO_RUNTIME: Any = object()


def _route(path: str) -> Route:
    async def endpoint(_: Request) -> PlainTextResponse:
        return PlainTextResponse(path)

    return Route(path, endpoint)


def _manifest(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _build(plugins: Plugins) -> Registry:
    """The registry a runtime would build from these plugins (without custom metadata)."""
    entities, extensions = plugins.entities()
    return Registry.build(entities, extensions)


@pytest.fixture(autouse=True)
def _no_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator's QIAO_BLOCK_PLUGINS must not change what these tests load."""
    monkeypatch.delenv(BLOCK_ENV, raising=False)


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> dict[str, EntryPoint]:
    """The installed plugins as create_plugins sees them: Qiao's own, plus what a test adds."""
    from qiao.core import pluginmanager

    installed = {n: ep for n, ep in pluginmanager.available_plugins().items() if n in INSTALLED}
    monkeypatch.setattr(pluginmanager, "available_plugins", lambda: dict(installed))
    return installed


@pytest.fixture
def install(entry_points: dict[str, EntryPoint], monkeypatch: pytest.MonkeyPatch) -> Install:
    """``install(name, depends=(), **hooks)``: an importable plugin module behind an entry point."""

    def _install(
        name: str, depends: tuple[str, ...] = (), **hooks: Callable[..., Any]
    ) -> ModuleType:
        module = ModuleType(f"qiao_test_plugin_{name}")
        module.QIAO_DEPENDS = depends  # type: ignore[attr-defined]
        for hook, fn in hooks.items():
            setattr(module, hook, hookimpl(fn))
        monkeypatch.setitem(sys.modules, module.__name__, module)
        entry_points[name] = EntryPoint(name, module.__name__, ENTRY_POINT_GROUP)
        return module

    return _install


# -- Finding ------------------------------------------------------------------------------


def test_qiao_ships_core_and_crm_as_entry_points() -> None:
    from qiao.core.pluginmanager import available_plugins

    installed = available_plugins()
    assert installed["core"].value == "qiao.core.builtin"
    assert installed["crm"].value == "qiao.plugins.crm"
    assert create_plugins(["crm"]).names == [*BUILTIN_PLUGINS, "crm"]


def test_the_crm_objects_come_through_the_same_hook_as_any_plugin() -> None:
    entities, _ = create_plugins(["crm"]).entities()
    sources = {e.name: e.source for e in entities}
    assert sources["user"] == sources["team"] == "core"
    assert {sources[n] for n in ("account", "contact", "lead", "opportunity")} == {"crm"}


@pytest.mark.parametrize("enabled", [[], ["crm", "core"], ["core", "crm", "core"]])
def test_core_is_always_loaded_first_and_once(entry_points: Any, enabled: list[str]) -> None:
    names = create_plugins(enabled).names
    assert names[0] == "core"
    assert names.count("core") == 1


def test_a_missing_plugin_is_named_with_what_is_installed(entry_points: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        create_plugins(["crm", "warranty"])
    installed = ", ".join(sorted(INSTALLED))
    assert caught.value.message == (
        f"plugin 'warranty' is enabled but not installed (installed: {installed})"
    )


@pytest.mark.parametrize(
    ("target", "cause"),
    [
        (f"{plugin_fixtures.__name__}.broken", "qiao_warranty_backend"),
        ("qiao_test_plugin_uninstalled", "qiao_test_plugin_uninstalled"),
        (f"{warranty.__name__}:no_such_attribute", "no_such_attribute"),
    ],
    ids=["raises-on-import", "module-gone", "attribute-gone"],
)
def test_a_plugin_that_fails_to_load_is_named_in_one_line(
    entry_points: dict[str, EntryPoint], target: str, cause: str
) -> None:
    entry_points["warranty"] = EntryPoint("warranty", target, ENTRY_POINT_GROUP)
    with pytest.raises(ConfigurationError) as caught:
        create_plugins(["crm", "warranty"])
    message = caught.value.message
    assert message.startswith("plugin 'warranty' failed to load: ")
    assert cause in message
    assert "\n" not in message


def test_a_blocked_plugin_stops_start_up(install: Install, monkeypatch: pytest.MonkeyPatch) -> None:
    install("warranty")
    monkeypatch.setenv(BLOCK_ENV, " erp , warranty")
    with pytest.raises(ConfigurationError) as caught:
        create_plugins(["crm", "warranty"])
    assert caught.value.message == f"plugin 'warranty' is enabled but blocked by {BLOCK_ENV}"
    assert create_plugins(["crm"]).names == [*BUILTIN_PLUGINS, "crm"], (
        "blocking what is off is harmless"
    )


# -- Ordering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "enabled",
    [["service", "warranty", "crm"], ["crm", "warranty", "service"], ["warranty", "service"]],
)
def test_dependencies_load_first_whatever_the_enabled_order(
    install: Install, enabled: list[str]
) -> None:
    install("service", depends=("warranty",))
    install("warranty", depends=("crm",))
    if "crm" not in enabled:
        enabled = [*enabled, "crm"]
    names = create_plugins(enabled).names
    assert names.index("core") < names.index("crm") < names.index("warranty")
    assert names.index("warranty") < names.index("service")


def test_extra_plugins_come_after_the_installed_ones(install: Install) -> None:
    install("warranty", depends=("crm",))

    class Probe:
        __name__ = "probe"

    assert create_plugins(["warranty", "crm"], [Probe()]).names == [
        *BUILTIN_PLUGINS,
        "crm",
        "warranty",
        "probe",
    ]


def test_an_unmet_dependency_is_named(install: Install) -> None:
    install("service", depends=("warranty",))
    install("warranty", depends=("crm",))
    with pytest.raises(ConfigurationError) as caught:
        create_plugins(["service", "warranty"])
    assert caught.value.message == "plugin 'warranty' depends on 'crm', which is not enabled"


def test_a_dependency_cycle_is_refused_naming_the_chain(install: Install) -> None:
    install("a", depends=("b",))
    install("b", depends=("c",))
    install("c", depends=("a",))
    with pytest.raises(ConfigurationError) as caught:
        create_plugins(["a", "b", "c"])
    assert caught.value.message == "plugins depend on each other: a -> b -> c -> a"


def test_hook_results_come_in_load_order(install: Install) -> None:
    install("service", depends=("warranty",), qiao_routes=lambda: [_route("/service")])
    install("warranty", depends=("crm",), qiao_routes=lambda: [_route("/warranty")])
    plugins = create_plugins(["service", "warranty", "crm"])
    paths = [r.path for r in _added(plugins.routes(NO_RUNTIME)) if isinstance(r, Route)]
    assert paths == ["/warranty", "/service"]


# -- Checking implementations -------------------------------------------------------------


def test_a_misspelt_hook_is_refused_naming_the_plugin() -> None:
    class Typo:
        __name__ = "warranty"

        @hookimpl
        def qiao_entity_manifest(self) -> list[Path]:
            return []

    with pytest.raises(ConfigurationError) as caught:
        create_plugins([], [Typo()])
    assert caught.value.message.startswith("plugin 'warranty': ")
    assert "qiao_entity_manifest" in caught.value.message


def test_an_argument_the_hook_does_not_have_is_refused_naming_the_plugin() -> None:
    class Extra:
        __name__ = "warranty"

        @hookimpl
        def qiao_startup(self, runtime: Any, config: Any) -> None:
            pass

    with pytest.raises(ConfigurationError) as caught:
        create_plugins([], [Extra()])
    assert "'warranty'" in caught.value.message
    assert "config" in caught.value.message


def test_an_implementation_may_take_fewer_arguments_than_its_hook() -> None:
    seen: list[set[str]] = []

    class Lean:
        __name__ = "lean"

        @hookimpl
        def qiao_extend_entities(self) -> None:
            seen.append(set())

        @hookimpl
        def qiao_routes(self) -> list[BaseRoute]:
            return [_route("/lean")]

    plugins = create_plugins(["crm"], [Lean()])
    plugins.entities()
    assert seen == [set()]
    assert [getattr(r, "path", None) for r in _added(plugins.routes(NO_RUNTIME))] == ["/lean"]


def test_an_unexpected_error_in_a_hook_names_the_plugin_and_the_hook() -> None:
    class Faulty:
        __name__ = "faulty"

        @hookimpl
        def qiao_routes(self) -> list[BaseRoute]:
            raise KeyError("WARRANTY_API_KEY")

    plugins = create_plugins([], [Faulty()])
    with pytest.raises(ConfigurationError) as caught:
        plugins.routes(NO_RUNTIME)
    assert caught.value.message == "plugin 'faulty' failed in qiao_routes: 'WARRANTY_API_KEY'"


# -- Entities from plugins ----------------------------------------------------------------


def test_entities_carry_the_plugin_that_declared_them(install: Install) -> None:
    install("warranty", depends=("crm",), qiao_entity_manifests=lambda: [warranty.MANIFEST])
    registry = _build(create_plugins(["crm", "warranty"]))
    claim = registry.entity("warranty_claim")
    assert claim.source == "warranty"
    assert [r.entity for r in registry.referencing("account")].count("warranty_claim") == 1


def test_a_manifest_object_counts_as_declared_by_the_returning_plugin(install: Install) -> None:
    manifest = Manifest.model_validate({"entities": [GADGET | {"source": "someone_else"}]})
    install("gadgets", qiao_entity_manifests=lambda: [manifest])
    assert _build(create_plugins(["gadgets"])).entity("gadget").source == "gadgets"


def test_an_entity_declared_by_two_plugins_is_refused(install: Install, tmp_path: Path) -> None:
    import yaml

    first = _manifest(tmp_path, "first", yaml.safe_dump({"entities": [GADGET]}))
    second = _manifest(tmp_path, "second", yaml.safe_dump({"entities": [GADGET]}))
    install("first", qiao_entity_manifests=lambda: [first])
    install("second", qiao_entity_manifests=lambda: [second])
    with pytest.raises(MetadataError) as caught:
        _build(create_plugins(["first", "second"]))
    assert "'gadget'" in caught.value.message
    assert {"'first'", "'second'"} <= set(caught.value.message.replace(",", " ").split())


def test_a_plugin_adds_a_field_to_another_plugins_entity(install: Install) -> None:
    seen: list[str] = []

    def extend(entities: dict[str, Any]) -> dict[str, list[Any]]:
        seen.extend(entities)
        return {
            "account": [
                {
                    "name": "dealer_level",
                    "type": "enum",
                    "label": {"en": "Dealer level"},
                    "values": [{"value": "GOLD"}, {"value": "SILVER"}],
                },
                FieldDef.model_validate(
                    {"name": "warranty_years", "type": "integer", "label": {"en": "Years"}}
                ),
            ]
        }

    install("dealers", depends=("crm",), qiao_extend_entities=extend)
    account = _build(create_plugins(["crm", "dealers"])).entity("account")
    assert {"account", "user", "team"} <= set(seen)
    level = account.field("dealer_level")
    assert level is not None
    assert [v.value for v in level.values] == ["GOLD", "SILVER"]
    assert account.field("warranty_years") is not None
    assert account.field("name") is not None, "the declared fields stay"


def test_a_manifest_extends_section_adds_fields_too(install: Install, tmp_path: Path) -> None:
    path = _manifest(
        tmp_path,
        "dealers",
        "extends:\n"
        "  - entity: account\n"
        "    fields:\n"
        "      - {name: dealer_code, type: string, max_length: 12, label: {en: Dealer code}}\n",
    )
    install("dealers", depends=("crm",), qiao_entity_manifests=lambda: [path])
    field = _build(create_plugins(["crm", "dealers"])).entity("account").field("dealer_code")
    assert field is not None
    assert field.max_length == 12


@pytest.mark.parametrize(
    ("declaration", "fragment"),
    [
        ({"name": "name", "type": "string", "label": {"en": "Name"}}, "account.name"),
        ({"name": "level", "type": "colour", "label": {"en": "Level"}}, "extending 'account'"),
    ],
    ids=["existing-field", "invalid-field"],
)
def test_a_bad_extension_is_refused_naming_the_plugin(
    install: Install, declaration: dict[str, Any], fragment: str
) -> None:
    install("dealers", depends=("crm",), qiao_extend_entities=lambda: {"account": [declaration]})
    with pytest.raises(MetadataError) as caught:
        _build(create_plugins(["crm", "dealers"]))
    assert "'dealers'" in caught.value.message
    assert fragment in caught.value.message


def test_extending_an_entity_nobody_declares_is_refused(install: Install) -> None:
    field = {"name": "level", "type": "string", "label": {"en": "Level"}}
    install("dealers", qiao_extend_entities=lambda: {"dealer": [field]})
    with pytest.raises(MetadataError) as caught:
        _build(create_plugins(["dealers"]))
    assert caught.value.message == "'dealers' extends unknown entity 'dealer'"


# -- No global state ----------------------------------------------------------------------


def test_each_create_plugins_call_is_independent() -> None:
    class Routes:
        __name__ = "routes"

        @hookimpl
        def qiao_routes(self) -> list[BaseRoute]:
            return [_route("/routes")]

    plugin = Routes()
    with_routes = create_plugins(["crm"], [plugin])
    without = create_plugins(["crm"])
    assert with_routes.pm is not without.pm
    assert with_routes.names == [*BUILTIN_PLUGINS, "crm", "routes"]
    assert without.names == [*BUILTIN_PLUGINS, "crm"]
    assert _added(without.routes(NO_RUNTIME)) == []
    assert [getattr(r, "path", None) for r in _added(with_routes.routes(NO_RUNTIME))] == ["/routes"]
    # The same plugin object can serve two deployments in one process.
    again = create_plugins(["crm"], [plugin])
    assert len(_added(again.routes(NO_RUNTIME))) == 1
    assert len(_added(with_routes.routes(NO_RUNTIME))) == 1


# -- Calling through pluggy ---------------------------------------------------------------


class _Specs:
    """Hooks a plugin declares for itself (``QIAO_HOOKSPECS``)."""

    @hookspec(firstresult=True)
    def qiao_test_price(self, product: str) -> int | None:
        """The first plugin that knows a product's price answers."""

    @hookspec(historic=True)
    def qiao_test_configured(self, settings: dict[str, Any]) -> None:
        """Settings announced once, also to plugins registered later."""

    @hookspec
    def qiao_test_collect(self) -> str:
        """Every plugin's word."""


def _plugin(name: str, specs: Any = None, **hooks: Any) -> Any:
    """A plugin object named ``name`` with ``hooks`` as its (already marked) implementations."""
    namespace: dict[str, Any] = {"__name__": name, "QIAO_HOOKSPECS": specs}
    return type(f"Plugin_{name}", (), namespace | {k: staticmethod(v) for k, v in hooks.items()})()


def test_a_plugin_declares_its_own_hooks_and_others_implement_them() -> None:
    plugins = create_plugins(
        [],
        [
            _plugin("pricing", _Specs),
            _plugin("seller", qiao_test_collect=hookimpl(lambda: "seller")),
        ],
    )
    assert plugins.hook.qiao_test_collect() == ["seller"]


def test_a_hook_nobody_declares_is_still_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        create_plugins([], [_plugin("seller", qiao_test_collect=hookimpl(lambda: "seller"))])
    assert "'seller'" in caught.value.message
    assert "qiao_test_collect" in caught.value.message


def test_firstresult_stops_at_the_first_answer_in_load_order() -> None:
    calls: list[str] = []

    def price(name: str, value: int | None) -> Any:
        def answer(product: str) -> int | None:
            calls.append(name)
            return value

        return hookimpl(answer, specname="qiao_test_price")

    plugins = create_plugins(
        [],
        [
            _plugin("pricing", _Specs),
            _plugin("unknown", qiao_test_price=price("unknown", None)),
            _plugin("list_price", qiao_test_price=price("list_price", 100)),
            _plugin("discount", qiao_test_price=price("discount", 90)),
        ],
    )
    assert plugins.hook.qiao_test_price(product="lathe") == 100
    assert calls == ["unknown", "list_price"]


def test_tryfirst_and_trylast_move_an_implementation_whatever_the_load_order() -> None:
    order: list[str] = []

    def word(name: str, **options: Any) -> Any:
        def collect() -> str:
            order.append(name)
            return name

        return hookimpl(collect, specname="qiao_test_collect", **options)

    plugins = create_plugins(
        [],
        [
            _plugin("pricing", _Specs),
            _plugin("last", qiao_test_collect=word("last", trylast=True)),
            _plugin("plain", qiao_test_collect=word("plain")),
            _plugin("first", qiao_test_collect=word("first", tryfirst=True)),
        ],
    )
    assert plugins.hook.qiao_test_collect() == ["first", "plain", "last"]
    assert order == ["first", "plain", "last"]


def test_a_wrapper_runs_around_the_other_implementations_and_sees_their_outcome() -> None:
    seen: list[Any] = []

    def around() -> Any:
        seen.append("before")
        try:
            words = yield
        except ValueError as exc:
            seen.append(f"failed: {exc}")
            raise
        seen.append(list(words))
        return [*words, "wrapped"]

    def word() -> str:
        seen.append("word")
        if seen.count("word") == 2:
            raise ValueError("no second word")
        return "plain"

    plugins = create_plugins(
        [],
        [
            _plugin("pricing", _Specs),
            _plugin("plain", qiao_test_collect=hookimpl(word, specname="qiao_test_collect")),
            _plugin(
                "tracer",
                qiao_test_collect=hookimpl(around, wrapper=True, specname="qiao_test_collect"),
            ),
        ],
    )
    assert plugins.hook.qiao_test_collect() == ["plain", "wrapped"]
    with pytest.raises(ValueError, match="no second word"):
        plugins.hook.qiao_test_collect()
    assert seen == ["before", "word", ["plain"], "before", "word", "failed: no second word"]


def test_a_historic_hook_reaches_plugins_registered_after_the_call() -> None:
    received: list[tuple[str, dict[str, Any]]] = []

    def listener(name: str) -> Any:
        def configured(settings: dict[str, Any]) -> None:
            received.append((name, settings))

        return hookimpl(configured, specname="qiao_test_configured")

    plugins = create_plugins(
        [], [_plugin("pricing", _Specs), _plugin("early", qiao_test_configured=listener("early"))]
    )
    plugins.hook.qiao_test_configured.call_historic(kwargs={"settings": {"currency": "CNY"}})
    plugins.pm.register(_plugin("late", qiao_test_configured=listener("late")), name="late")
    assert received == [("early", {"currency": "CNY"}), ("late", {"currency": "CNY"})]


def test_subscribing_a_hook_that_has_no_entity_is_refused() -> None:
    def routes() -> list[BaseRoute]:
        return []

    with pytest.raises(ConfigurationError) as caught:
        create_plugins([], [_plugin("routes", qiao_routes=hookimpl(routes, entities=["x"]))])
    assert caught.value.message.startswith("plugin 'routes': qiao_routes has no entity")


def test_applies_on_a_hook_not_called_row_by_row_is_refused() -> None:
    def batch(values: list[dict[str, Any]]) -> None:
        return None

    marked = hookimpl(batch, applies=lambda context, entity, operation: True)
    with pytest.raises(ConfigurationError) as caught:
        create_plugins([], [_plugin("rows", qiao_before_records_write=marked)])
    assert caught.value.message.startswith(
        "plugin 'rows': qiao_before_records_write is not called row by row"
    )


def _added(routes: list[BaseRoute]) -> list[BaseRoute]:
    """``routes`` without those of the built-in plugins (the public intake pages)."""
    builtin = {getattr(r, "path", None) for r in create_plugins([]).routes(NO_RUNTIME)}
    return [r for r in routes if getattr(r, "path", None) not in builtin]


def test_loading_every_installed_plugin_imports_no_graphql() -> None:
    """Every CLI command loads the deployment's plugins; their GraphQL types are imported
    when a schema is built, so a command that serves none skips strawberry's imports."""
    probe = (
        "import sys\n"
        "from qiao.core.pluginmanager import available_plugins, create_plugins\n"
        "create_plugins(sorted(available_plugins()))\n"
        "print('strawberry' in sys.modules, 'graphql' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "False"]
