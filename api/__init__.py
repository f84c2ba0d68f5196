"""Qiao's plugin API: the one module a plugin or a template imports.

Everything a plugin needs is here: the hook markers, the write context its
hooks receive, the records service and runtime (as protocols), errors, entity
and field definitions, events, timers, notifications, GraphQL and HTTP
helpers, and the CLI decorator. Test fixtures are in :mod:`qiao.api.testing`,
templates' building blocks in :mod:`qiao.api.templates`. The rest of
``qiao.core`` is internal and changes without notice; CI fails a plugin of this
repository that imports it.

Versioning (docs/plugins.md): :data:`API_VERSION` follows semantic versioning
apart from Qiao's own version. A minor release may add names, hooks, hook
arguments and optional parameters; it never removes or renames one. A name to
be removed is deprecated first, with a warning, for at least one minor
release. Hook arguments may grow (pluggy lets an implementation take fewer
arguments than its hook), so implement hooks with the arguments you use.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection

from qiao.api.protocols import Access, Catalog, Database, Plugins, Record, Records, Runtime
from qiao.cli.state import pass_runtime
from qiao.core.actor import Actor
from qiao.core.calendars import BusinessCalendar, CalendarError
from qiao.core.calendars.store import calendars as _calendars
from qiao.core.edge.auth import actor_of
from qiao.core.edge.ratelimit import RateLimiter
from qiao.core.edge.threads import in_thread
from qiao.core.encryption import index_column
from qiao.core.errors import (
    BadUserInput,
    ConfigurationError,
    Conflict,
    Contended,
    Forbidden,
    MetadataError,
    NotFound,
    PayloadTooLarge,
    QiaoError,
    Unauthenticated,
    UnsupportedMediaType,
)
from qiao.core.events.model import Delivery, Event, EventHandler, GiveUp, RetryLater
from qiao.core.events.timers import cancel as cancel_timer
from qiao.core.events.timers import pending as pending_timers
from qiao.core.events.timers import schedule as schedule_timer
from qiao.core.events.timers import schedule_many as schedule_timers
from qiao.core.graphql.context import RequestContext
from qiao.core.graphql.names import entity_of_type
from qiao.core.hookmarkers import hookimpl, hookspec
from qiao.core.hookspecs import NotificationChannel
from qiao.core.metadata.manifest import Manifest, load_manifest
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType, Label
from qiao.core.metadata.sections import Section
from qiao.core.metadata.values import to_json
from qiao.core.normalise import DEFAULT_PHONE_REGION, normalise_phone, normalise_width
from qiao.core.notifications import Notice, notify, notify_many
from qiao.core.records.batch import Created, RowError, RowsRefused, Upserted
from qiao.core.records.context import Source, WriteContext
from qiao.core.records.service import Page, RecordsService, UniqueIds
from qiao.core.redaction import (
    REDACTED,
    Sensitive,
    contains_sensitive,
    redacted_snapshot,
    scrub,
)
from qiao.core.runtime import Runtime as CoreRuntime
from qiao.core.workflow.approvals import decide as _decide

if TYPE_CHECKING:
    from qiao.core.graphql.scalars import Date, DateTime, Decimal
    from qiao.core.records.host import RecordsHost

#: The version of this API (not of Qiao): see the module's docstring.
API_VERSION = "1.5"


def decide_approval(
    ctx: WriteContext, request_id: str, decision: str, comment: str | None = None
) -> Record:
    """Approve (``"APPROVED"``) or reject (``"REJECTED"``) the current step of an approval
    request as ``ctx.actor``, in the caller's transaction; returns the request.

    For plugins that carry a decision taken elsewhere (a DingTalk approval instance) into
    Qiao: the actor must be one of the step's approvers (FORBIDDEN otherwise), and a
    request that no longer waits is CONFLICT, exactly as ``approveRequest`` and
    ``rejectRequest`` in GraphQL (docs/workflow.md).
    """
    if decision not in {"APPROVED", "REJECTED"}:
        raise BadUserInput("decision is APPROVED or REJECTED", field="decision")
    return _decide(ctx, request_id, decision, comment)


def blind_index_column(field: FieldDef) -> str:
    """The column of an encrypted, searchable field's blind index (docs/encryption.md)."""
    return index_column(field)


def blind_indexes(records: Records, entity: str, field: FieldDef, value: Any) -> list[str]:
    """Every blind index ``value`` may be stored under in ``field`` of ``entity``: one per
    live index key, so two while ``qiao keys rotate --index`` re-indexes the entity.

    For a plugin that loads a :func:`blind_index_column` itself (a duplicate check over
    a whole file) and compares a new value with it. The value is normalised as the index
    normalises it; an index hit is a candidate only, to be confirmed on the record read
    back, as a forged or colliding index is no match (docs/encryption.md).
    """
    return cast(RecordsService, records).encryption.lookup(None, entity, field, value)


def entity_named(runtime: Runtime, name: str, argument: str = "entity") -> str:
    """The metadata name (``sales_order``) of the entity a client names by its GraphQL type
    name (``SalesOrder``), as hand-written GraphQL fields and plugin routes take entities.

    An unknown name is BAD_USER_INPUT on ``argument``; a snake_case name is refused with
    the type name to use instead, so every door names entities the same way.
    """
    return entity_of_type(cast(CoreRuntime, runtime).current().registry.entities, name, argument)


def business_calendar(
    runtime: Runtime | RecordsHost, name: str, *, connection: Connection | None = None
) -> BusinessCalendar:
    """The business calendar ``name`` of the deployment (docs/calendars.md).

    Working days, holidays, make-up days and working hours, as the records say
    (re-read when they change). Raises :class:`NotFound` for an unknown name.
    A write hook passes its ``context.runtime`` (the runtime as the records layer
    holds it) and ``context.connection``, so calendars written in the same
    transaction (a template install with demo data) are found.
    """
    return _calendars(cast(CoreRuntime, runtime)).get(name, connection)


__all__: Sequence[str] = (
    "API_VERSION",
    "DEFAULT_PHONE_REGION",
    "REDACTED",
    "Access",
    "Actor",
    "BadUserInput",
    "BusinessCalendar",
    "CalendarError",
    "Catalog",
    "ConfigurationError",
    "Conflict",
    "Contended",
    "Created",
    "Database",
    "Date",
    "DateTime",
    "Decimal",
    "Delivery",
    "EntityDef",
    "Event",
    "EventHandler",
    "FieldDef",
    "FieldType",
    "Forbidden",
    "GiveUp",
    "Label",
    "Manifest",
    "MetadataError",
    "NotFound",
    "Notice",
    "NotificationChannel",
    "Page",
    "PayloadTooLarge",
    "Plugins",
    "QiaoError",
    "RateLimiter",
    "Record",
    "Records",
    "RequestContext",
    "RetryLater",
    "RowError",
    "RowsRefused",
    "Runtime",
    "Section",
    "Sensitive",
    "Source",
    "Unauthenticated",
    "UniqueIds",
    "UnsupportedMediaType",
    "Upserted",
    "WriteContext",
    "actor_of",
    "blind_index_column",
    "blind_indexes",
    "business_calendar",
    "cancel_timer",
    "contains_sensitive",
    "decide_approval",
    "entity_named",
    "hookimpl",
    "hookspec",
    "in_thread",
    "load_manifest",
    "normalise_phone",
    "normalise_width",
    "notify",
    "notify_many",
    "pass_runtime",
    "pending_timers",
    "redacted_snapshot",
    "schedule_timer",
    "schedule_timers",
    "scrub",
    "to_json",
)

#: Names whose modules load strawberry: imported when first used (by a plugin's GraphQL
#: types, as the schema is built), so a CLI command that serves no GraphQL skips it.
_ON_FIRST_USE = {
    "Date": "qiao.core.graphql.scalars",
    "DateTime": "qiao.core.graphql.scalars",
    "Decimal": "qiao.core.graphql.scalars",
}


def __getattr__(name: str) -> Any:
    module = _ON_FIRST_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
