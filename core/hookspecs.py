"""Qiao's hook specifications: every way a plugin can extend Qiao.

Hooks are grouped by the phase of Qiao's life in which they are called. Call
conventions (pluggy's): hooks are called with keyword arguments only, and an
implementation may accept fewer arguments than its specification, so hooks can
gain arguments without breaking plugins. Unless a hook says "first result
wins", the results of all implementations are collected into a list, in plugin
load order (dependencies first).

A plugin module may declare ``QIAO_DEPENDS = ("crm",)`` to be loaded after the
plugins it builds on. docs/hooks.md is the reference with worked examples;
tests/core/test_hookspecs.py fails when a hook lacks its documentation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from qiao.core.hookmarkers import hookspec

if TYPE_CHECKING:
    import click
    from starlette.routing import BaseRoute

    from qiao.core.crypto import KeyProvider
    from qiao.core.events.model import Delivery, EventHandler
    from qiao.core.formula.evaluator import WorkingCalendar
    from qiao.core.host import PluginHost
    from qiao.core.metadata.demo import DemoData
    from qiao.core.metadata.manifest import Manifest
    from qiao.core.metadata.model import EntityDef
    from qiao.core.records.context import WriteContext
    from qiao.core.records.service import Record


# -------------------------------------------------------------------------------------
# Metadata: what entities exist
# -------------------------------------------------------------------------------------


@hookspec
def qiao_entity_manifests() -> Sequence[Path | Manifest]:
    """Contribute entities (and extensions of other plugins' entities).

    Called whenever Qiao builds its metadata registry: at start-up, and again
    each time the metadata version changes.

    :returns: manifest file paths (YAML, see docs/manifest.md) or already built
        :class:`~qiao.core.metadata.manifest.Manifest` objects. Results are
        collected from all plugins; entities declared twice stop start-up.
    """


@hookspec
def qiao_extend_entities(entities: dict[str, EntityDef]) -> dict[str, Sequence[Any]] | None:
    """Add fields to entities that other plugins declare.

    Called after every plugin's manifests are read, in load order, so a plugin
    sees the entities of the plugins it depends on.

    :param entities: every declared entity by name (read-only).
    :returns: a mapping from entity name to field declarations (dicts in the
        manifest format, or :class:`~qiao.core.metadata.model.FieldDef`), or
        ``None``. Results are collected; adding a field that exists is an error.
    """


# -------------------------------------------------------------------------------------
# Records: every write through the records service
# -------------------------------------------------------------------------------------


@hookspec
def qiao_before_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    """Inspect or adjust a write before it reaches the database.

    Called inside the write's transaction, after values were checked against
    the field declarations and before the row is written.

    :param context: who writes, from which source, on which connection.
    :param entity: the entity written.
    :param operation: ``"create"``, ``"update"`` or ``"delete"``.
    :param values: the checked values to write, by field name; implementations
        may change this dict (changed values are checked again).
    :param existing: the stored record for updates and deletes, else ``None``.
    :returns: nothing; raise :class:`~qiao.core.errors.BadUserInput` (with
        ``field``) or :class:`~qiao.core.errors.Forbidden` to refuse the write,
        which rolls back everything in the transaction.
    """


@hookspec
def qiao_after_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    record: dict[str, Any],
    changes: dict[str, tuple[Any, Any]],
) -> None:
    """React to a write, inside the same transaction.

    Called after the row was written and before the transaction commits, so
    anything written here (an outbox event, an audit entry) commits or rolls
    back together with the record. Slow or external work belongs in a worker.

    :param context: who wrote, from which source, on which connection.
    :param entity: the entity written.
    :param operation: ``"create"``, ``"update"`` or ``"delete"``.
    :param record: the record as stored (for deletes: as it was).
    :param changes: field name -> (old value, new value) for the fields the
        write changed (for creates the old value is ``None``).
    :returns: nothing; raising rolls the whole write back.
    """


@hookspec
def qiao_before_records_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: list[dict[str, Any]],
    existing: list[dict[str, Any] | None],
) -> None:
    """Inspect or adjust a batch of writes of one entity before it reaches the database.

    Called inside the batch's transaction by ``RecordsService.create_many``
    (imports, the offline sync push, connectors) and ``update_many``
    (connectors' pulls), after every row's values were checked and before any
    row is written; and for a single write, as a batch of one, when a plugin
    implements only this hook. A plugin that does its work for many rows in
    fewer queries (a run of numbers, every row's duplicates at once)
    implements it. A plugin implementing it is not called
    with ``qiao_before_record_write`` for the batch's rows; a plugin
    implementing only that hook is called once per row, so no plugin misses a
    write. Plugins are called in load order, each with the whole batch.

    :param context: who writes, from which source, on which connection.
    :param entity: the entity written.
    :param operation: ``"create"``, ``"update"`` or ``"delete"``.
    :param values: each row's checked values by field name, in input order;
        implementations may change the dicts (changed values are checked again).
    :param existing: the stored record of each row (``None`` for creates).
    :returns: nothing; raising refuses the whole batch, which rolls back
        everything in the transaction.
    """


@hookspec
def qiao_after_records_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    records: list[dict[str, Any]],
    changes: list[dict[str, tuple[Any, Any]]],
) -> None:
    """React to a batch of writes of one entity, inside the same transaction.

    Called once every row of a ``RecordsService.create_many`` batch (of an
    ``update_many`` batch: every row that changed something) is written,
    before the transaction commits, with the same dispatch as
    ``qiao_before_records_write``: a plugin implementing this hook gets the
    batch once instead of one ``qiao_after_record_write`` call per record (the
    audit log appends the batch's entries under one head lock, the outbox
    stores every event in one statement), and a single write as a batch of one
    when it implements only this hook.

    :param context: who wrote, from which source, on which connection.
    :param entity: the entity written.
    :param operation: ``"create"``, ``"update"`` or ``"delete"``.
    :param records: the records as stored, in input order.
    :param changes: each record's changes, field name -> (old value, new value).
    :returns: nothing; raising rolls the whole batch back.
    """


@hookspec(firstresult=True)
def qiao_business_calendar(runtime: PluginHost, name: str) -> WorkingCalendar | None:
    """The business calendar ``name``, in which WORKDAY and its kin count working days.

    Called when a formula or validation rule names a calendar (docs/calendars.md).
    The built-in ``calendars`` plugin answers from its records, after every other
    plugin, and refuses a name it does not know; the first answer that is not None
    is used.

    :param runtime: the deployment, for a plugin that keeps its calendars per runtime.
    :param name: the calendar the formula names (``"cn"``).
    :returns: an object with ``is_working_day``, ``next_working_day``,
        ``add_working_days`` and ``working_days_between`` (as
        :class:`~qiao.core.calendars.BusinessCalendar` has), or None to leave
        ``name`` to the next plugin. The first result wins.
    """


# -------------------------------------------------------------------------------------
# Events: reacting to committed changes, in workers
# -------------------------------------------------------------------------------------


@hookspec
def qiao_event_handlers(runtime: PluginHost) -> Sequence[EventHandler]:
    """Subscribe to record events and fired timers, to act on them in a worker.

    Called once when a worker starts (``qiao worker``, or the worker that
    ``qiao serve`` runs). Each event from the outbox gets one delivery per
    handler whose entity, operation and ``when`` filters accept it; a worker
    runs it after the change committed, retrying failures with back-off.

    :param runtime: the worker's runtime (its plugins, records service, clock).

    :returns: :class:`~qiao.core.events.model.EventHandler` objects, each with a
        name unique across plugins. Results are collected from all plugins.
    """


@runtime_checkable
class NotificationChannel(Protocol):
    """A way to reach people. ``send`` runs in a worker, after the notification committed.

    ``delivery.id`` is stable across retries: pass it to the provider as the
    idempotency key (or remember it), because a worker that dies after sending
    and before recording the outcome sends again. Raise to retry with back-off,
    :class:`~qiao.core.events.model.RetryLater` to pick the time, or
    :class:`~qiao.core.events.model.GiveUp` to stop.
    """

    name: str

    def send(self, delivery: Delivery, notification: Record) -> None: ...


@hookspec
def qiao_notification_channels() -> Sequence[NotificationChannel]:
    """Deliver notifications beyond the app: e-mail, WeCom, DingTalk, SMS.

    Called once when a worker starts. Every ``notification`` record (written
    by rules, assignments, approvals ...) is also shown in the app; each
    channel gets one delivery per new notification, run in a worker after the
    notification committed, with its own retries and dead letters.

    :returns: :class:`NotificationChannel`
        objects: a ``name`` unique across plugins (the handler is
        ``notify.<name>``) and ``send(delivery, notification)``, which receives
        the event's :class:`~qiao.core.events.model.Delivery` (its ``id`` is the
        idempotency key to give the provider) and the notification record
        (``owner_id`` is the recipient's user id). Results are collected.
    """


# -------------------------------------------------------------------------------------
# Application: the API, the CLI and start-up
# -------------------------------------------------------------------------------------


@hookspec
def qiao_graphql_types() -> Sequence[type]:
    """Extend the GraphQL schema with strawberry types.

    Called each time the schema is built (start-up and every metadata version).

    :returns: strawberry ``@strawberry.type`` classes named ``Query`` or
        ``Mutation`` whose fields are merged into the root types. Results are
        collected; a field name defined twice stops the build with an error
        naming both owners. Import the module that defines them inside the hook,
        so commands that build no schema skip strawberry (docs/hooks.md).
    """


@hookspec
def qiao_routes(runtime: PluginHost) -> Sequence[BaseRoute]:
    """Add HTTP routes (Starlette) to the application.

    Called once, when the application is built.

    :param runtime: the runtime the application serves; endpoints use it
        (bound with ``functools.partial`` or a closure) to reach the records.

    :returns: Starlette routes. Results are collected; paths must not clash
        with Qiao's own (``/graphql``, ``/healthz``, ``/readyz``).
    """


@hookspec(firstresult=True)
def qiao_intake_challenge(form: str, fields: Mapping[str, Any], client: str) -> str | None:
    """Check that a public intake submission comes from a person (a CAPTCHA, an SMS code).

    Called for every submission to a public intake form (docs/intake.md), after
    its origin and rate limit are checked and before anything is stored.

    :param form: the intake form's name.
    :param fields: everything posted, including ``challenge_*`` fields that
        carry the answer (a CAPTCHA provider's token); those are never stored.
    :param client: the client's address.
    :returns: a message refusing the submission (answered 400 and shown beside
        the form), or None to let it through. The first result wins (None does not count).
    """


@hookspec
def qiao_cli_commands() -> Sequence[click.Command]:
    """Add commands to the ``qiao`` command line.

    Called when the CLI starts, with the plugins enabled in the deployment.

    :returns: click commands or groups. Results are collected; a name that is
        taken stops the CLI with an error.
    """


@hookspec
def qiao_demo_data() -> Sequence[Path | DemoData]:
    """Ship example records that show a plugin at work.

    Called by ``qiao init --demo``, ``qiao demo`` and ``qiao template install
    --demo``, which seed the demo data of the plugins they name in load order,
    in one transaction (so a plugin's demo data may refer to the records of
    the plugins it depends on).

    :returns: demo files (YAML, see docs/manifest.md) or already built
        :class:`~qiao.core.metadata.demo.DemoData`. Results are collected; the
        records are written through the records service as the system, and a
        refused record rolls back every plugin's demo data.
    """


@hookspec
def qiao_key_providers() -> Mapping[str, Callable[[Mapping[str, Any]], KeyProvider]]:
    """Offer key providers that hold the key-encryption key elsewhere (an HSM, a KMS).

    Called when a process first needs its key provider, with the plugins the
    deployment enables. ``[keys] provider = "<name>"`` in qiao.toml picks one;
    the KEK stays inside the device, which only wraps and unwraps data keys
    (GB/T 39786 level 3 expects keys held in a certified crypto product).
    Each process calls the factory again every 5 seconds and after an unwrap
    fails (so a rotated KEK is taken up without a restart): keep the device's
    session open across calls, as the built-in ``pkcs11`` provider does.
    docs/encryption.md documents the GM/T 0018 SDF provider such a plugin makes.

    :returns: a mapping from provider name to a factory; the factory receives
        the ``[keys]`` table of qiao.toml and returns a
        :class:`~qiao.core.crypto.KeyProvider`, raising
        :class:`~qiao.core.errors.ConfigurationError` when the device cannot be
        used. Results are collected; a name offered twice, or the built-in
        ``file``, ``env`` or ``pkcs11``, stops start-up.
    """


@hookspec
def qiao_startup(runtime: PluginHost) -> None:
    """Prepare a plugin's own resources once the runtime is ready.

    Called once per process after the database, metadata and plugins are
    loaded, before the first request or command is served.

    :param runtime: the deployment's runtime (config, database, records service).
    :returns: nothing; raising stops start-up with the plugin named.
    """
