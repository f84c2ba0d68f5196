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

from collections.abc import Sequence
from typing import cast

from qiao.api.protocols import Access, Catalog, Database, Plugins, Record, Records, Runtime
from qiao.cli.state import pass_runtime
from qiao.core.automation.channels import NotificationChannel
from qiao.core.automation.notifications import notify
from qiao.core.calendars import BusinessCalendar, CalendarError
from qiao.core.calendars.store import calendars as _calendars
from qiao.core.encryption import index_column
from qiao.core.errors import (
    BadUserInput,
    ConfigurationError,
    Conflict,
    Forbidden,
    MetadataError,
    NotFound,
    QiaoError,
    Unauthenticated,
)
from qiao.core.events.model import Delivery, Event, EventHandler, GiveUp, RetryLater
from qiao.core.events.timers import cancel as cancel_timer
from qiao.core.events.timers import pending as pending_timers
from qiao.core.events.timers import schedule as schedule_timer
from qiao.core.graphql.context import RequestContext
from qiao.core.graphql.scalars import Date, DateTime, Decimal
from qiao.core.hookspecs import hookimpl, hookspec
from qiao.core.metadata.manifest import Manifest, load_manifest
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType, Label
from qiao.core.records.context import Actor, Source, WriteContext
from qiao.core.records.service import Page
from qiao.core.records.values import (
    DEFAULT_PHONE_REGION,
    normalise_phone,
    normalise_width,
    to_json,
)
from qiao.core.redaction import (
    REDACTED,
    Sensitive,
    contains_sensitive,
    redacted_snapshot,
    scrub,
)
from qiao.core.runtime import Runtime as CoreRuntime

#: The version of this API (not of Qiao): see the module's docstring.
API_VERSION = "1.0"


def blind_index_column(field: FieldDef) -> str:
    """The column of an encrypted, searchable field's blind index (docs/encryption.md)."""
    return index_column(field)


def business_calendar(runtime: Runtime, name: str) -> BusinessCalendar:
    """The business calendar ``name`` of the deployment (docs/calendars.md).

    Working days, holidays, make-up days and working hours, as the records say
    (re-read when they change). Raises :class:`NotFound` for an unknown name.
    """
    return _calendars(cast(CoreRuntime, runtime)).get(name)


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
    "NotificationChannel",
    "Page",
    "Plugins",
    "QiaoError",
    "Record",
    "Records",
    "RequestContext",
    "RetryLater",
    "Runtime",
    "Sensitive",
    "Source",
    "Unauthenticated",
    "WriteContext",
    "blind_index_column",
    "business_calendar",
    "cancel_timer",
    "contains_sensitive",
    "hookimpl",
    "hookspec",
    "load_manifest",
    "normalise_phone",
    "normalise_width",
    "notify",
    "pass_runtime",
    "pending_timers",
    "redacted_snapshot",
    "schedule_timer",
    "scrub",
    "to_json",
)
