"""The market: the templates Qiao ships (``templates_market/index.yaml``) and those installed.

The index lists the shipped templates with their versions and summaries, so
that ``qiao template list`` reads one small file. Any installed plugin whose
package holds a ``template.yaml`` is a template too, so a template made with
``qiao template new`` and installed with pip is installed into a deployment the
same way as the shipped ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import EntryPoint
from importlib.util import find_spec
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from qiao.core.errors import ConfigurationError, MetadataError, NotFound
from qiao.core.market.manifest import MANIFEST_FILE, Bilingual, load_template_manifest
from qiao.core.market.package import TemplatePackage
from qiao.core.metadata.model import describe_validation_error
from qiao.core.metadata.yamltext import parse_yaml
from qiao.core.pluginmanager import BUILTIN_PLUGINS, available_plugins

INDEX_FILE = "index.yaml"


class IndexEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    title: Bilingual
    summary: Bilingual


class Index(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    templates: tuple[IndexEntry, ...]


def load_index() -> Index:
    """The shipped market index."""
    text = (resources.files("qiao.templates_market") / INDEX_FILE).read_text(encoding="utf-8")
    data = parse_yaml(text)
    try:
        return Index.model_validate(data)
    except ValidationError as exc:
        raise MetadataError(f"{INDEX_FILE}: {describe_validation_error(exc, data)}") from None


@dataclass(frozen=True)
class Listing:
    """One template as ``qiao template list`` shows it."""

    name: str
    version: str
    title: Bilingual
    summary: Bilingual
    installed: bool


class Market:
    """The index and the plugins installed in this environment."""

    def __init__(self, index: Index, plugins: Mapping[str, EntryPoint]) -> None:
        self.index = {entry.name: entry for entry in index.templates}
        self.plugins = plugins

    @classmethod
    def load(cls) -> Market:
        return cls(load_index(), available_plugins())

    def listings(self) -> list[Listing]:
        """The index's templates, then installed templates the index does not name."""
        found = [
            Listing(e.name, e.version, e.title, e.summary, e.name in self.plugins)
            for e in self.index.values()
        ]
        for name in sorted(self.plugins.keys() - self.index.keys()):
            folder = self._folder(name)
            if folder is not None:
                manifest = load_template_manifest(folder)
                found.append(
                    Listing(name, manifest.version, manifest.title, manifest.description, True)
                )
        return found

    def package(self, name: str) -> TemplatePackage:
        """The installed template ``name``, read from its package folder."""
        if name not in self.plugins:
            if name in self.index:
                raise ConfigurationError(
                    f"template {name!r} is in the market index but its package is not installed"
                )
            raise NotFound(f"no template {name!r} in the market; see 'qiao template list'")
        folder = self._folder(name)
        if folder is None:
            raise ConfigurationError(f"plugin {name!r} is not a template (no {MANIFEST_FILE})")
        return TemplatePackage.load(folder)

    def is_template(self, name: str) -> bool:
        return name in self.plugins and self._folder(name) is not None

    def depends(self, name: str) -> tuple[str, ...]:
        """What plugin ``name`` declares in QIAO_DEPENDS (a template: in its manifest)."""
        if self.is_template(name):
            return self.package(name).depends
        if name not in self.plugins:
            raise ConfigurationError(f"plugin {name!r} is needed but not installed")
        module = self.plugins[name].load()
        return tuple(getattr(module, "QIAO_DEPENDS", ()))

    def to_enable(self, name: str, enabled: Iterable[str]) -> list[str]:
        """``name`` and the plugins it needs that are not enabled, dependencies first."""
        have = {*BUILTIN_PLUGINS, *enabled}
        order: list[str] = []

        def visit(plugin: str, chain: tuple[str, ...]) -> None:
            if plugin in have or plugin in order:
                return
            if plugin in chain[:-1]:
                raise ConfigurationError(f"plugins depend on each other: {' -> '.join(chain)}")
            for dep in self.depends(plugin):
                visit(dep, (*chain, dep))
            order.append(plugin)

        visit(name, (name,))
        return order

    def _folder(self, name: str) -> Path | None:
        """The folder of plugin ``name``'s package if it holds a template manifest."""
        try:
            spec = find_spec(self.plugins[name].module)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations)))
        return folder if (folder / MANIFEST_FILE).is_file() else None
