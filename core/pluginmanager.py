"""Finding, ordering and calling plugins.

The plugin manager is built by :func:`create_plugins` for one deployment (no
global): it loads the plugins named in qiao.toml from the ``qiao`` entry-point
group, orders them by their declared ``QIAO_DEPENDS``, registers them and
checks that every implementation matches a hook. The rest of Qiao calls
plugins through the typed :class:`Plugins` facade, never through pluggy
directly, so hook names appear in one place.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import ValidationError

from qiao.core import hookspecs
from qiao.core.errors import ConfigurationError, MetadataError, QiaoError
from qiao.core.metadata.manifest import Manifest, RoleDecl, load_manifest
from qiao.core.metadata.model import EntityDef, FieldDef, describe_validation_error
from qiao.core.metadata.registry import Extension

if TYPE_CHECKING:
    import click
    from starlette.routing import BaseRoute

    from qiao.core.automation.channels import NotificationChannel
    from qiao.core.crypto import KeyProvider
    from qiao.core.events.model import EventHandler
    from qiao.core.records.context import WriteContext
    from qiao.core.records.service import RecordsService
    from qiao.core.runtime import Runtime

ENTRY_POINT_GROUP = "qiao"
#: Always enabled: users and teams (identity, permissions), the outbox of events, audit,
#: rules and notifications (automation), and pipelines and approvals (workflow).
BUILTIN_PLUGINS = ("core", "events", "audit", "automation", "workflow")
#: Comma-separated plugin names to refuse even when enabled (an escape hatch for operators).
BLOCK_ENV = "QIAO_BLOCK_PLUGINS"


def available_plugins() -> dict[str, EntryPoint]:
    """Every plugin installed in this environment, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def create_plugins(enabled: Iterable[str], extra: Sequence[ModuleType | object] = ()) -> Plugins:
    """Load, order and register the plugins a deployment enables.

    ``extra`` registers objects that are not installed as entry points (tests,
    embedded use); they come last. Raises :class:`ConfigurationError` naming
    the plugin when one is missing, broken, blocked or has unmet dependencies.
    """
    blocked = {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}
    wanted = list(dict.fromkeys([*BUILTIN_PLUGINS, *enabled]))
    installed = available_plugins()
    modules: dict[str, ModuleType] = {}
    for name in wanted:
        if name in blocked:
            raise ConfigurationError(f"plugin {name!r} is enabled but blocked by {BLOCK_ENV}")
        if name not in installed:
            raise ConfigurationError(
                f"plugin {name!r} is enabled but not installed "
                f"(installed: {', '.join(sorted(installed)) or 'none'})"
            )
        try:
            modules[name] = installed[name].load()
        except Exception as exc:
            raise ConfigurationError(f"plugin {name!r} failed to load: {exc}") from exc
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    named = [(name, modules[name]) for name in _dependency_order(modules)]
    named += [(getattr(obj, "__name__", None) or f"extra-{i}", obj) for i, obj in enumerate(extra)]
    try:
        for name, obj in named:
            pm.register(obj, name=name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or getattr(exc.plugin, "__name__", repr(exc.plugin))
        raise ConfigurationError(f"plugin {name!r}: {exc}") from exc
    return Plugins(pm)


def _dependency_order(modules: dict[str, ModuleType]) -> list[str]:
    """Plugin names with every plugin after those it depends on; cycles are refused."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise ConfigurationError(f"plugins depend on each other: {' -> '.join(chain)}")
        state[name] = "visiting"
        for dep in getattr(modules[name], "QIAO_DEPENDS", ()):
            if dep not in modules:
                raise ConfigurationError(
                    f"plugin {name!r} depends on {dep!r}, which is not enabled"
                )
            visit(dep, (*chain, dep))
        state[name] = "done"
        order.append(name)

    for name in modules:
        visit(name, (name,))
    return order


class Plugins:
    """A typed facade over the plugin manager: one method per hook."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.pm.list_name_plugin()]

    def _results(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Each implementation's result with its plugin's name, in load order."""
        caller = getattr(self.pm.hook, hook)
        results = []
        for impl in caller.get_hookimpls():
            args = {k: v for k, v in kwargs.items() if k in impl.argnames}
            try:
                results.append((impl.plugin_name, impl.function(**args)))
            except (ConfigurationError, MetadataError):
                raise
            except Exception as exc:
                raise ConfigurationError(
                    f"plugin {impl.plugin_name!r} failed in {hook}: {exc}"
                ) from exc
        return results

    def entities(self) -> tuple[list[EntityDef], list[Extension]]:
        """Every plugin's entities and extensions, checked field by field."""
        entities: list[EntityDef] = []
        extensions: list[Extension] = []
        for plugin, manifest in self.manifests():
            entities += [e.model_copy(update={"source": plugin}) for e in manifest.entities]
            extensions += manifest.extensions(plugin)
        by_name = {e.name: e for e in entities}
        for plugin, added in self._results("qiao_extend_entities", entities=dict(by_name)):
            for entity, fields in (added or {}).items():
                try:
                    checked = tuple(
                        f if isinstance(f, FieldDef) else FieldDef.model_validate(f) for f in fields
                    )
                except ValidationError as exc:
                    reason = describe_validation_error(exc)
                    raise MetadataError(
                        f"plugin {plugin!r} extending {entity!r}: {reason}"
                    ) from exc
                extensions.append(Extension(entity=entity, fields=checked, source=plugin))
        return entities, extensions

    def manifests(self) -> list[tuple[str, Manifest]]:
        """Every plugin's manifests, read and checked, with the plugin's name."""
        return [
            (plugin, item if isinstance(item, Manifest) else load_manifest(Path(item), plugin))
            for plugin, items in self._results("qiao_entity_manifests")
            for item in items or ()
        ]

    def roles(self) -> list[tuple[str, RoleDecl]]:
        """Every role the plugins' manifests ship, with the declaring plugin."""
        return [(plugin, role) for plugin, manifest in self.manifests() for role in manifest.roles]

    def before_write(self, **kwargs: Any) -> None:
        self._in_order("qiao_before_record_write", **kwargs)

    def after_write(self, **kwargs: Any) -> None:
        self._in_order("qiao_after_record_write", **kwargs)

    def _in_order(self, hook: str, **kwargs: Any) -> None:
        """Call a write hook in load order; its exceptions pass through unchanged."""
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})

    def classify_lead(self, text: str, lead: dict[str, Any]) -> list[tuple[int, Sequence[str]]]:
        """Every classifier's ``(score, tags)`` for a lead, in load order; abstentions dropped."""
        results = []
        for impl in self.pm.hook.qiao_classify_lead.get_hookimpls():
            args = {"text": text, "lead": lead}
            result = impl.function(**{k: v for k, v in args.items() if k in impl.argnames})
            if result is not None:
                results.append(result)
        return results

    def event_handlers(self) -> list[tuple[str, EventHandler]]:
        """Every plugin's event handlers with the plugin's name, in load order.

        Each notification channel a plugin offers comes with its handler
        (``notify.<name>``), listed as that plugin's.
        """
        from qiao.core.automation.channels import channel_handler

        handlers = [(p, h) for p, hs in self._results("qiao_event_handlers") for h in hs or ()]
        return handlers + [(p, channel_handler(c)) for p, c in self.notification_channels()]

    def notification_channels(self) -> list[tuple[str, NotificationChannel]]:
        """Every plugin's notification channels with the plugin's name, in load order."""
        return [(p, c) for p, cs in self._results("qiao_notification_channels") for c in cs or ()]

    def graphql_types(self) -> list[tuple[str, type]]:
        return [(p, t) for p, types in self._results("qiao_graphql_types") for t in types or ()]

    def routes(self) -> list[BaseRoute]:
        return [r for _, routes in self._results("qiao_routes") for r in routes or ()]

    def cli_commands(self) -> list[tuple[str, click.Command]]:
        return [(p, c) for p, cmds in self._results("qiao_cli_commands") for c in cmds or ()]

    def demo_data(self, records: RecordsService, context: WriteContext) -> list[str]:
        """Seed every plugin's demo data in load order; returns the plugins that have some.

        Unlike other hooks, a plugin's own refusal (a :class:`QiaoError`) is
        passed on unchanged: its message is what the person running the
        command needs to read.
        """
        seeded = []
        for impl in self.pm.hook.qiao_demo_data.get_hookimpls():
            args = {"records": records, "context": context}
            try:
                impl.function(**{k: v for k, v in args.items() if k in impl.argnames})
            except QiaoError:
                raise
            except Exception as exc:
                raise ConfigurationError(
                    f"plugin {impl.plugin_name!r} failed in qiao_demo_data: {exc}"
                ) from exc
            seeded.append(impl.plugin_name)
        return seeded

    def key_providers(self) -> dict[str, Callable[[Mapping[str, Any]], KeyProvider]]:
        """Key providers plugins offer, by name; a name offered twice is refused."""
        offered: dict[str, Callable[[Mapping[str, Any]], KeyProvider]] = {}
        owners: dict[str, str] = {}
        for plugin, providers in self._results("qiao_key_providers"):
            for name, factory in (providers or {}).items():
                if name in owners or name in {"file", "env"}:
                    taken = owners.get(name, "qiao")
                    raise ConfigurationError(
                        f"plugin {plugin!r} offers the key provider {name!r}, "
                        f"which {taken!r} offers already"
                    )
                owners[name] = plugin
                offered[name] = factory
        return offered

    def startup(self, runtime: Runtime) -> None:
        self._results("qiao_startup", runtime=runtime)
