"""Finding, ordering and calling plugins.

The plugin manager is built by :func:`create_plugins` for one deployment (no
global): it loads the plugins named in qiao.toml from the ``qiao`` entry-point
group, orders them by their declared ``QIAO_DEPENDS``, adds the hook
specifications plugins declare (``QIAO_HOOKSPECS``), registers them and checks
that every implementation matches a hook.

pluggy does all the calling, so wrappers, ``tryfirst``/``trylast``,
``firstresult`` and historic hooks behave as pluggy documents them. Plugins are
registered dependents first: pluggy calls the last registered implementation
first, so implementations run in load order, dependencies before the plugins
that build on them. The :class:`Plugins` facade adds what pluggy does not know
of: which plugin contributed each result (entities remember their plugin), the
plugin's name in errors, and the entity subscriptions of the write hooks.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

import pluggy
from pydantic import ValidationError

from qiao.core import hookspecs
from qiao.core.errors import ConfigurationError, MetadataError, NotFound
from qiao.core.hookmarkers import APPLIES_ATTRIBUTE, ENTITIES_ATTRIBUTE, PROJECT, Applies
from qiao.core.hookspecs import NotificationChannel
from qiao.core.metadata.demo import DemoData, load_demo
from qiao.core.metadata.manifest import Manifest, load_manifest
from qiao.core.metadata.model import EntityDef, FieldDef, describe_validation_error
from qiao.core.metadata.registry import Extension
from qiao.core.permissions.roles import SECTION as ROLES
from qiao.core.permissions.roles import RoleDecl

if TYPE_CHECKING:
    import click
    from starlette.routing import BaseRoute

    from qiao.core.crypto import KeyProvider
    from qiao.core.events.model import EventHandler
    from qiao.core.formula.evaluator import WorkingCalendar
    from qiao.core.host import PluginHost
    from qiao.core.records.host import RecordsHost

ENTRY_POINT_GROUP = "qiao"
#: Always enabled: users and teams (identity, permissions), the outbox of events, audit,
#: rules and notifications (automation), pipelines and approvals (workflow), consent,
#: retention and erasure of personal data (privacy), public intake forms (intake),
#: documents and QR codes rendered from records (documents), record numbers from
#: declared patterns (numbering), business calendars (calendars), booking overlaps
#: (bookings), recurring plans (recurrence) and the replay clock (clock).
BUILTIN_PLUGINS = (
    "core",
    "events",
    "audit",
    "automation",
    "workflow",
    "privacy",
    "intake",
    "documents",
    "numbering",
    "calendars",
    "bookings",
    "recurrence",
    "clock",
    "sync",
)
#: Comma-separated plugin names to refuse even when enabled (an escape hatch for operators).
BLOCK_ENV = "QIAO_BLOCK_PLUGINS"
#: A plugin module's attribute naming the hook specifications it adds (a module or class).
HOOKSPECS_ATTRIBUTE = "QIAO_HOOKSPECS"


@functools.cache
def available_plugins() -> Mapping[str, EntryPoint]:
    """Every plugin installed in this environment, by name.

    Read once per process: scanning the installed distributions takes milliseconds
    and every runtime asks, while a plugin installed later needs a restart anyway,
    as loading its code does.
    """
    return MappingProxyType({ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)})


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
    named = [(name, modules[name]) for name in _dependency_order(modules)]
    named += [(getattr(obj, "__name__", None) or f"extra-{i}", obj) for i, obj in enumerate(extra)]
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        for _, obj in named:
            specs = getattr(obj, HOOKSPECS_ATTRIBUTE, None)
            if specs is not None:
                pm.add_hookspecs(specs)
        for name, obj in reversed(named):
            pm.register(obj, name=name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or getattr(exc.plugin, "__name__", repr(exc.plugin))
        raise ConfigurationError(f"plugin {name!r}: {exc}") from exc
    except ValueError as exc:  # a hook specified twice, or a plugin name taken
        raise ConfigurationError(f"plugins: {exc}") from exc
    versions = {name: _version(obj, installed.get(name)) for name, obj in named}
    plugins = Plugins(pm, [name for name, _ in named], versions)
    plugins.check_subscriptions()
    return plugins


def _version(plugin: object, entry_point: EntryPoint | None) -> str:
    """A plugin's ``QIAO_VERSION``, else its distribution's version (``0`` when it has none)."""
    declared = getattr(plugin, "QIAO_VERSION", None)
    if declared is not None:
        return str(declared)
    return _distribution_version(entry_point) if entry_point is not None else "0"


@functools.cache
def _distribution_version(entry_point: EntryPoint) -> str:
    """The version of the distribution that installed ``entry_point`` (its metadata is
    parsed on every read, so it is read once per process)."""
    dist = entry_point.dist
    return dist.version if dist is not None else "0"


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
    """A typed facade over the plugin manager: one method per core hook.

    Hooks a plugin declares itself are called through :attr:`hook`, pluggy's
    own hook relay (``plugins.hook.leads_classify(text=...)``).
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        names: Sequence[str],
        versions: Mapping[str, str] | None = None,
    ) -> None:
        self.pm = pm
        self._names = list(names)
        self._versions = dict(versions or {})
        self._callers: dict[tuple[str, frozenset[str]], pluggy.HookCaller] = {}
        self._write_callers: dict[tuple[str, str], pluggy.HookCaller] = {}
        self._write_plans: dict[tuple[str, str], list[_Step]] = {}

    @property
    def names(self) -> list[str]:
        """Every registered plugin's name, in load order."""
        return list(self._names)

    def version(self, name: str) -> str:
        """The version of plugin ``name`` (a template's from its template.yaml)."""
        return self._versions.get(name, "0")

    @property
    def hook(self) -> pluggy.HookRelay:
        """pluggy's hook relay: every hook, the plugins' own included."""
        return self.pm.hook

    # -- Calling ------------------------------------------------------------------------

    def _by_plugin(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Each plugin's result of a collecting hook, with the plugin's name, in load order.

        pluggy calls each plugin's implementations on their own (with every
        plugin's wrappers around them), so a result is known by its plugin and
        an unexpected error names the plugin and the hook.
        """
        results = []
        for name in self._implementers(hook):
            try:
                for result in self._caller_of(hook, name)(**kwargs):
                    results.append((name, result))
            except (ConfigurationError, MetadataError):
                raise
            except Exception as exc:
                raise ConfigurationError(f"plugin {name!r} failed in {hook}: {exc}") from exc
        return results

    def _implementers(self, hook: str) -> list[str]:
        """The plugins with an implementation (not only a wrapper) of ``hook``, in load order."""
        caller: pluggy.HookCaller = getattr(self.pm.hook, hook)
        own = {i.plugin_name for i in caller.get_hookimpls() if not _is_wrapper(i)}
        return [name for name in self._names if name in own]

    def _caller_of(self, hook: str, plugin: str) -> pluggy.HookCaller:
        return self._subset(hook, frozenset(self._implementers(hook)) - {plugin})

    def _subset(self, hook: str, removed: frozenset[str]) -> pluggy.HookCaller:
        """pluggy's caller of ``hook`` without the named plugins (wrappers of the others stay)."""
        key = (hook, removed)
        caller = self._callers.get(key)
        if caller is None:
            plugins = [self.pm.get_plugin(name) for name in removed]
            caller = self.pm.subset_hook_caller(
                hook, remove_plugins=[p for p in plugins if p is not None]
            )
            self._callers[key] = caller
        return caller

    def check_subscriptions(self) -> None:
        """Refuse ``entities=`` on a hook that is not about one entity's records, and
        ``applies=`` on one that is not a per-record write hook."""
        for name in vars(self.pm.hook):
            caller = getattr(self.pm.hook, name)
            if not isinstance(caller, pluggy.HookCaller) or caller.spec is None:
                continue
            for impl in caller.get_hookimpls():
                wanted = getattr(impl.function, ENTITIES_ATTRIBUTE, None)
                if wanted is not None and "entity" not in caller.spec.argnames:
                    raise ConfigurationError(
                        f"plugin {impl.plugin_name!r}: {name} has no entity to subscribe to "
                        "(entities= is for the record write hooks)"
                    )
                if hasattr(impl.function, APPLIES_ATTRIBUTE) and name not in _PER_RECORD:
                    raise ConfigurationError(
                        f"plugin {impl.plugin_name!r}: {name} is not called row by row "
                        "(applies= is for qiao_before_record_write and qiao_after_record_write)"
                    )

    def _for_entity(self, hook: str, entity: str) -> pluggy.HookCaller:
        """``hook`` without the plugins whose implementations subscribe to other entities."""
        key = (hook, entity)
        caller = self._write_callers.get(key)
        if caller is None:
            impls = getattr(self.pm.hook, hook).get_hookimpls()
            subscribed: dict[str, bool] = {}
            for impl in impls:
                wanted = getattr(impl.function, ENTITIES_ATTRIBUTE, None)
                accepts = wanted is None or entity in wanted
                subscribed[impl.plugin_name] = subscribed.get(impl.plugin_name, False) or accepts
            others = frozenset(name for name, accepts in subscribed.items() if not accepts)
            caller = self._subset(hook, others)
            self._write_callers[key] = caller
        return caller

    # -- Metadata -----------------------------------------------------------------------

    def entities(self) -> tuple[list[EntityDef], list[Extension]]:
        """Every plugin's entities and extensions, checked field by field."""
        entities: list[EntityDef] = []
        extensions: list[Extension] = []
        for plugin, manifest in self.manifests():
            entities += [e.model_copy(update={"source": plugin}) for e in manifest.entities]
            extensions += manifest.extensions(plugin)
        by_name = {e.name: e for e in entities}
        for plugin, added in self._by_plugin("qiao_extend_entities", entities=dict(by_name)):
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
            for plugin, items in self._by_plugin("qiao_entity_manifests")
            for item in items or ()
        ]

    def roles(self) -> list[tuple[str, RoleDecl]]:
        """Every role the plugins' manifests ship, with the declaring plugin."""
        return [
            (plugin, role)
            for plugin, manifest in self.manifests()
            for role in manifest.section(ROLES)
        ]

    # -- Records ------------------------------------------------------------------------

    def before_write(self, *, entity: EntityDef, **kwargs: Any) -> None:
        """``qiao_before_record_write`` for the plugins subscribed to ``entity``.

        A plugin implementing only ``qiao_before_records_write`` gets the write
        as a batch of one. Exceptions pass through unchanged: a plugin's
        refusal is the caller's answer.
        """
        self._write_one(_BEFORE, entity, kwargs, _BEFORE_ARGS)

    def after_write(self, *, entity: EntityDef, **kwargs: Any) -> None:
        """``qiao_after_record_write`` for the plugins subscribed to ``entity`` (a plugin
        implementing only ``qiao_after_records_write`` gets a batch of one)."""
        self._write_one(_AFTER, entity, kwargs, _AFTER_ARGS)

    def before_write_many(
        self,
        *,
        context: Any,
        entity: EntityDef,
        operation: str,
        values: list[dict[str, Any]],
        existing: list[dict[str, Any] | None],
    ) -> None:
        """The before-write hooks for a batch: once per plugin implementing the batch hook,
        once per row for a plugin implementing only the per-record one (unless its
        ``applies=`` says the batch has nothing for it), in load order."""
        batch = {"values": values, "existing": existing}
        self._write_many(_BEFORE, _BEFORE_ARGS, context, entity, operation, batch)

    def after_write_many(
        self,
        *,
        context: Any,
        entity: EntityDef,
        operation: str,
        records: list[dict[str, Any]],
        changes: list[dict[str, tuple[Any, Any]]],
    ) -> None:
        """The after-write hooks for a batch, dispatched as :meth:`before_write_many`."""
        batch = {"records": records, "changes": changes}
        self._write_many(_AFTER, _AFTER_ARGS, context, entity, operation, batch)

    def _write_many(
        self,
        hooks: tuple[str, str],
        batch_names: Mapping[str, str],
        context: Any,
        entity: EntityDef,
        operation: str,
        batch: Mapping[str, list[Any]],
    ) -> None:
        """``hooks`` for a batch whose per-row lists are ``batch`` (by batch argument name):
        the batch hook once per plugin implementing it, the per-record hook once per row
        for the others whose ``applies=`` (if any) accepts the batch."""
        common = {"context": context, "entity": entity, "operation": operation}
        rows: list[dict[str, Any]] | None = None  # made when a per-record hook needs them
        for step in self._write_plan(hooks, entity.name):
            if step.batched:
                self._caller_of(hooks[1], step.name)(**common, **batch)
            elif step.applies is None or step.applies(context, entity, operation):
                if rows is None:
                    columns = zip(*(batch[name] for name in batch_names.values()), strict=True)
                    rows = [dict(zip(batch_names, row, strict=True)) for row in columns]
                single = self._caller_of(hooks[0], step.name)
                for row in rows:
                    single(**common, **row)

    def _write_one(
        self,
        hooks: tuple[str, str],
        entity: EntityDef,
        kwargs: dict[str, Any],
        batch_names: Mapping[str, str],
    ) -> None:
        plan = self._write_plan(hooks, entity.name)
        if all(step.single for step in plan):
            self._for_entity(hooks[0], entity.name)(entity=entity, **kwargs)
            return
        as_batch = {k: v for k, v in kwargs.items() if k not in batch_names}
        as_batch |= {batch_names[k]: [v] for k, v in kwargs.items() if k in batch_names}
        for step in plan:
            if step.single:
                self._caller_of(hooks[0], step.name)(entity=entity, **kwargs)
            else:
                self._caller_of(hooks[1], step.name)(entity=entity, **as_batch)

    def _write_plan(self, hooks: tuple[str, str], entity: str) -> list[_Step]:
        """The plugins a write of ``entity`` calls, in load order (:class:`_Step`)."""
        key = (hooks[1], entity)
        plan = self._write_plans.get(key)
        if plan is None:
            single = self._subscribers(hooks[0], entity)
            batch = self._subscribers(hooks[1], entity)
            applies = {
                impl.plugin_name: getattr(impl.function, APPLIES_ATTRIBUTE)
                for impl in getattr(self.pm.hook, hooks[0]).get_hookimpls()
                if hasattr(impl.function, APPLIES_ATTRIBUTE)
            }
            plan = [
                _Step(n, n in single, n in batch, applies.get(n))
                for n in self._names
                if n in single or n in batch
            ]
            self._write_plans[key] = plan
        return plan

    def _subscribers(self, hook: str, entity: str) -> set[str]:
        """The plugins whose own implementation of ``hook`` accepts writes of ``entity``."""
        found: set[str] = set()
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            wanted = getattr(impl.function, ENTITIES_ATTRIBUTE, None)
            if not _is_wrapper(impl) and (wanted is None or entity in wanted):
                found.add(impl.plugin_name)
        return found

    # -- Events -------------------------------------------------------------------------

    def event_handlers(self, runtime: PluginHost) -> list[tuple[str, EventHandler]]:
        """Every plugin's event handlers with the plugin's name, in load order."""
        return [
            (p, h)
            for p, hs in self._by_plugin("qiao_event_handlers", runtime=runtime)
            for h in hs or ()
        ]

    def notification_channels(self) -> list[tuple[str, NotificationChannel]]:
        """Every plugin's notification channels with the plugin's name, in load order."""
        return [(p, c) for p, cs in self._by_plugin("qiao_notification_channels") for c in cs or ()]

    # -- Application --------------------------------------------------------------------

    def graphql_types(self) -> list[tuple[str, type]]:
        return [(p, t) for p, types in self._by_plugin("qiao_graphql_types") for t in types or ()]

    def routes(self, runtime: PluginHost) -> list[BaseRoute]:
        return [
            r for _, routes in self._by_plugin("qiao_routes", runtime=runtime) for r in routes or ()
        ]

    def intake_challenge(self, form: str, fields: Mapping[str, Any], client: str) -> str | None:
        """The first plugin's refusal of a public intake submission, or None (docs/intake.md)."""
        refusal: str | None = self.pm.hook.qiao_intake_challenge(
            form=form, fields=fields, client=client
        )
        return refusal

    def business_calendar(self, runtime: RecordsHost, name: str) -> WorkingCalendar:
        """The calendar ``name`` from the first plugin that knows it (docs/calendars.md)."""
        found: WorkingCalendar | None = self.pm.hook.qiao_business_calendar(
            runtime=runtime, name=name
        )
        if found is None:
            raise NotFound(f"no business calendar {name!r}", field="calendar")
        return found

    def cli_commands(self) -> list[tuple[str, click.Command]]:
        return [(p, c) for p, cmds in self._by_plugin("qiao_cli_commands") for c in cmds or ()]

    def demo_data(self, only: Iterable[str] | None = None) -> list[tuple[str, DemoData]]:
        """Each plugin's demo data, read and checked, in load order (``only`` these plugins)."""
        wanted = None if only is None else set(only)
        return [
            (plugin, item if isinstance(item, DemoData) else load_demo(Path(item)))
            for plugin, items in self._by_plugin("qiao_demo_data")
            if wanted is None or plugin in wanted
            for item in items or ()
        ]

    def key_providers(self) -> dict[str, Callable[[Mapping[str, Any]], KeyProvider]]:
        """Key providers plugins offer, by name; a name offered twice is refused."""
        offered: dict[str, Callable[[Mapping[str, Any]], KeyProvider]] = {}
        owners: dict[str, str] = {}
        for plugin, providers in self._by_plugin("qiao_key_providers"):
            for name, factory in (providers or {}).items():
                if name in owners or name in {"file", "env", "pkcs11"}:
                    taken = owners.get(name, "qiao")
                    raise ConfigurationError(
                        f"plugin {plugin!r} offers the key provider {name!r}, "
                        f"which {taken!r} offers already"
                    )
                owners[name] = plugin
                offered[name] = factory
        return offered

    def startup(self, runtime: PluginHost) -> None:
        self._by_plugin("qiao_startup", runtime=runtime)


#: The per-record and the batch hook of each side of a write.
_BEFORE = ("qiao_before_record_write", "qiao_before_records_write")
_AFTER = ("qiao_after_record_write", "qiao_after_records_write")
_PER_RECORD = {_BEFORE[0], _AFTER[0]}
#: Each per-record hook argument of a side, and the batch hook argument listing it per row.
_BEFORE_ARGS = {"values": "values", "existing": "existing"}
_AFTER_ARGS = {"record": "records", "changes": "changes"}


class _Step(NamedTuple):
    """One plugin a write of an entity calls: whether it implements the per-record hook,
    whether it implements the batch hook, and its per-record hook's ``applies=``."""

    name: str
    single: bool
    batched: bool
    applies: Applies | None


def _is_wrapper(impl: pluggy.HookImpl) -> bool:
    return bool(impl.wrapper or impl.hookwrapper)
