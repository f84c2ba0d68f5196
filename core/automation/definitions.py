"""The shapes of a rule's trigger and actions, checked against the metadata when it is written.

A rule is data an administrator (or a manifest) writes; a mistake found only
when a ticket arrives at night would go unseen. So every part is checked up
front: the trigger's fields, the condition (type-checked as TRUE/FALSE), every
field an action sets, every formula and message placeholder, every role named.
Errors are BAD_USER_INPUT with ``field`` naming the rule's field (``trigger``,
``condition`` or ``actions``) and the message naming the part, such as
``actions[1].notify.title``, with the formula position where there is one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qiao.core.catalog import Catalog
from qiao.core.errors import BadUserInput
from qiao.core.events import signing
from qiao.core.formula import Formula, FormulaError, Kind, check
from qiao.core.formula.metadata import entity_resolver
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType, describe_validation_error
from qiao.core.metadata.values import coerce

#: Entities rules may not act on: the engine's own bookkeeping (a rule on its runs would loop).
ENGINE_ENTITIES = frozenset({"automation_rule", "automation_run", "automation_webhook_call"})
#: Time triggers may count from these system fields as well as the entity's datetime fields.
SYSTEM_INSTANTS = ("created_at", "updated_at")
DEFAULT_TIMEZONE = "Asia/Shanghai"
#: A value of a ``set`` or ``create`` action that starts with this is a formula.
FORMULA_PREFIX = "="
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
#: The formula kinds a field of each type accepts from a ``set`` formula.
_ACCEPTS: dict[FieldType, frozenset[Kind]] = {
    FieldType.STRING: frozenset({Kind.STRING}),
    FieldType.TEXT: frozenset({Kind.STRING}),
    FieldType.EMAIL: frozenset({Kind.STRING}),
    FieldType.PHONE: frozenset({Kind.STRING}),
    FieldType.URL: frozenset({Kind.STRING}),
    FieldType.ENUM: frozenset({Kind.STRING}),
    FieldType.INTEGER: frozenset({Kind.INTEGER}),
    FieldType.DECIMAL: frozenset({Kind.INTEGER, Kind.DECIMAL}),
    FieldType.BOOLEAN: frozenset({Kind.BOOLEAN}),
    FieldType.DATE: frozenset({Kind.DATE}),
    FieldType.DATETIME: frozenset({Kind.DATETIME}),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- Triggers ---------------------------------------------------------------------------


class CreatedTrigger(_Strict):
    """The record was created."""


class UpdatedTrigger(_Strict):
    """The record was updated; with ``fields``, only when one of them changed."""

    fields: tuple[str, ...] = ()


class StateEnteredTrigger(_Strict):
    """An enum field took ``value`` (any value when omitted), on update or at creation."""

    field: str
    value: str | None = None


class OffsetTrigger(_Strict):
    """``minutes`` after (or before) the instant in a datetime field.

    With ``calendar`` (``after`` only), the minutes are working time of that
    business calendar: "escalate after 4 working hours" (docs/calendars.md).
    """

    field: str
    minutes: int = Field(ge=0, le=525_600)
    calendar: str | None = Field(default=None, min_length=1, max_length=64)


class Trigger(_Strict):
    """Exactly one of the kinds; ``timezone`` goes with ``schedule`` only."""

    created: CreatedTrigger | None = None
    updated: UpdatedTrigger | None = None
    state_entered: StateEnteredTrigger | None = None
    after: OffsetTrigger | None = None
    before: OffsetTrigger | None = None
    schedule: str | None = None
    timezone: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        kinds = [k for k in TRIGGER_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of {', '.join(TRIGGER_KINDS)}")
        if self.timezone is not None and self.schedule is None:
            raise ValueError("timezone goes with schedule only")
        if self.before is not None and self.before.calendar is not None:
            raise ValueError("working time counts forward: calendar goes with after only")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in TRIGGER_KINDS if getattr(self, k) is not None)

    @property
    def offset(self) -> OffsetTrigger | None:
        return self.after or self.before

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or DEFAULT_TIMEZONE)


TRIGGER_KINDS = ("created", "updated", "state_entered", "after", "before", "schedule")
EVENT_KINDS = frozenset({"created", "updated", "state_entered"})


# -- Actions ----------------------------------------------------------------------------


class Recipients(_Strict):
    """Who to notify: usernames, holders of roles, users in relation fields, their managers."""

    users: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    #: Paths of relations to ``user``: ``owner``, ``engineer``, ``account.owner``.
    fields: tuple[str, ...] = ()
    #: Paths as in ``fields``; their users' managers are notified.
    managers: tuple[str, ...] = ()


class NotifyList(_Strict):
    """Records listed under a notification's body, read as each recipient (docs/automation.md).

    ``filter`` is the filter language of list queries; a string value starting with ``=``
    is a formula on the rule's record (``{industry: {eq: "=account.industry"}}``).
    ``line`` shows one record, with ``{field}`` placeholders naming the listed entity's
    own fields; ``heading`` may hold ``{count}``, how many records match for the recipient.
    """

    heading: str = Field(min_length=1, max_length=200)
    entity: str
    filter: dict[str, Any] = Field(default_factory=dict)
    order_by: tuple[dict[str, str], ...] = ()
    first: int = Field(default=3, ge=1, le=20)
    line: str = Field(min_length=1, max_length=500)
    #: Shown after the heading when the recipient may read no matching record.
    empty: str = Field(default="无", max_length=200)


class NotifyAction(Recipients):
    title: str = Field(min_length=1, max_length=200)
    body: str = ""
    kind: str = Field(default="automation", max_length=64)
    lists: tuple[NotifyList, ...] = Field(default=(), max_length=5)

    @model_validator(mode="after")
    def _someone(self) -> NotifyAction:
        if not (self.users or self.roles or self.fields or self.managers):
            raise ValueError("name someone to notify: users, roles, fields or managers")
        return self


class AssignAction(_Strict):
    """Set a user relation to a named user or to a holder of a role (optionally by region)."""

    field: str = "owner"
    user: str | None = None
    role: str | None = None
    #: A formula on the record whose value must equal the candidate's team region.
    region: str | None = None
    #: ``fewest``: the candidate with the fewest records of this entity in ``field``.
    strategy: Literal["fewest", "first"] = "fewest"

    @model_validator(mode="after")
    def _one_target(self) -> AssignAction:
        if (self.user is None) == (self.role is None):
            raise ValueError("give either user or role")
        if self.region is not None and self.role is None:
            raise ValueError("region goes with role")
        return self


class CreateAction(_Strict):
    entity: str
    values: dict[str, Any] = Field(default_factory=dict)
    #: A relation field of the new record to point at the record the rule acts on.
    link: str | None = None


class WebhookAction(_Strict):
    url: str = Field(pattern=r"^https?://", max_length=2048)
    secret: str = Field(min_length=1, max_length=200)


class StartApprovalAction(_Strict):
    process: str = Field(min_length=1, max_length=100)


class EscalateAction(_Strict):
    """Hand the record to the current user's manager (or a holder of ``role``) and tell them."""

    field: str = "owner"
    to: Literal["manager", "role"] = "manager"
    role: str | None = None
    region: str | None = None
    #: A datetime field set to the time of the escalation.
    stamp: str | None = None
    title: str = Field(default="升级处理：{id}", min_length=1, max_length=200)
    body: str = ""

    @model_validator(mode="after")
    def _role(self) -> EscalateAction:
        if (self.to == "role") != (self.role is not None):
            raise ValueError("role is given exactly when to is 'role'")
        if self.region is not None and self.role is None:
            raise ValueError("region goes with role")
        return self


class RenderDocumentAction(_Strict):
    """Render a document template for the record and keep it as the record's document.

    The template is a record administrators may edit or switch off, so that it exists,
    is active and is about the rule's entity is checked when the action runs; a missing
    one fails the run (docs/automation.md).
    """

    template: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")


#: The settings model of each action kind but ``set``, whose body is ``{field: value}``.
ACTION_MODELS: dict[str, type[BaseModel]] = {
    "assign": AssignAction,
    "create": CreateAction,
    "notify": NotifyAction,
    "webhook": WebhookAction,
    "start_approval": StartApprovalAction,
    "escalate": EscalateAction,
    "render_document": RenderDocumentAction,
}
ACTION_KINDS = ("set", *ACTION_MODELS)


# -- Checked forms ----------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """A value to write: a literal (already in stored form), a formula on the record, or
    for a relation, a path of relations from the record (``"@customer.owner"``) whose end
    it points at too."""

    literal: Any = None
    formula: Formula | None = None
    path: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Template:
    """Message text with ``{formula}`` placeholders, each checked on the rule's entity."""

    text: str
    parts: tuple[tuple[str, Formula], ...]


@dataclass(frozen=True)
class CheckedList:
    """A notification's list: its settings, its filter with each ``=formula`` compiled (on
    the rule's entity) and the fields its line shows."""

    settings: NotifyList
    filter: Any
    shown: tuple[str, ...]


@dataclass(frozen=True)
class Action:
    """One checked action: its kind, its parsed settings and what was compiled from them."""

    kind: str
    settings: Any
    values: Mapping[str, Value] = dataclasses.field(default_factory=dict)
    formula: Formula | None = None
    title: Template | None = None
    body: Template | None = None
    lists: tuple[CheckedList, ...] = ()


@dataclass(frozen=True)
class RuleDefinition:
    """A rule's trigger, condition and actions, checked against one catalog."""

    entity: str
    trigger: Trigger
    condition: Formula | None
    actions: tuple[Action, ...]


RoleExists = Callable[[str], bool]


def check_rule(
    catalog: Catalog,
    entity_name: str,
    trigger: Any,
    condition: str | None,
    actions: Any,
    role_exists: RoleExists,
) -> RuleDefinition:
    """Check a whole rule; raises BAD_USER_INPUT naming the rule field and the part at fault."""
    if entity_name in ENGINE_ENTITIES or entity_name not in catalog.registry.entities:
        raise BadUserInput(f"no entity {entity_name!r} that rules can act on", field="entity")
    entity = catalog.entity(entity_name)
    checked_trigger = check_trigger(entity, trigger)
    formula = None
    if condition is not None and condition.strip():
        formula = _formula(catalog, entity_name, condition, Kind.BOOLEAN, "condition", "condition")
    checked = check_actions(catalog, entity_name, actions, role_exists)
    return RuleDefinition(entity_name, checked_trigger, formula, checked)


def check_trigger(entity: EntityDef, raw: Any) -> Trigger:
    try:
        trigger = Trigger.model_validate(raw)
    except ValidationError as exc:
        reason = describe_validation_error(exc, raw)
        raise BadUserInput(f"trigger: {reason}", field="trigger") from None
    if trigger.updated is not None:
        for name in trigger.updated.fields:
            if entity.field(name) is None:
                raise _bad(
                    "trigger", f"trigger.updated.fields: {entity.name} has no field {name!r}"
                )
    if trigger.state_entered is not None:
        state = trigger.state_entered
        field = entity.field(state.field)
        if field is None or field.type is not FieldType.ENUM:
            raise _bad(
                "trigger", f"trigger.state_entered.field: {state.field!r} is not an enum field"
            )
        if state.value is not None and state.value not in field.enum_values:
            raise _bad(
                "trigger",
                f"trigger.state_entered.value: {state.value!r} is not a value of {field.name} "
                f"({', '.join(field.enum_values)})",
            )
    if trigger.offset is not None:
        name = trigger.offset.field
        field = entity.field(name)
        if name not in SYSTEM_INSTANTS and (field is None or field.type is not FieldType.DATETIME):
            raise _bad("trigger", f"trigger.{trigger.kind}.field: {name!r} is not a datetime field")
    if trigger.schedule is not None:
        if not croniter.is_valid(trigger.schedule):
            raise _bad(
                "trigger", f"trigger.schedule: {trigger.schedule!r} is not a cron expression"
            )
        try:
            trigger.zone  # noqa: B018 - resolves the zone name
        except (ZoneInfoNotFoundError, ValueError):
            message = f"trigger.timezone: unknown time zone {trigger.timezone!r}"
            raise _bad("trigger", message) from None
    return trigger


def check_actions(
    catalog: Catalog, entity_name: str, raw: Any, role_exists: RoleExists
) -> tuple[Action, ...]:
    """Check an action list (see docs/automation.md for each kind)."""
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes) or not raw:
        raise _bad("actions", "actions: give a list of at least one action")
    return tuple(
        _check_action(catalog, entity_name, item, f"actions[{i}]", role_exists)
        for i, item in enumerate(raw)
    )


def _check_action(
    catalog: Catalog, entity_name: str, raw: Any, where: str, role_exists: RoleExists
) -> Action:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise _bad(
            "actions", f"{where}: an action is an object with one of {', '.join(ACTION_KINDS)}"
        )
    ((kind, body),) = raw.items()
    if kind not in ACTION_KINDS:
        raise _bad("actions", f"{where}: unknown action {kind!r} (use {', '.join(ACTION_KINDS)})")
    where = f"{where}.{kind}"
    entity = catalog.entity(entity_name)
    if kind == "set":
        if not isinstance(body, Mapping) or not body:
            raise _bad("actions", f"{where}: give the fields to set, as an object")
        values = _values(catalog, entity, body, where)
        return Action(kind, dict(body), values=values)
    try:
        settings = ACTION_MODELS[kind].model_validate(body)
    except ValidationError as exc:
        raise _bad("actions", f"{where}: {describe_validation_error(exc, body)}") from None
    match settings:
        case AssignAction():
            _user_field(catalog, entity, settings.field, f"{where}.field")
            _roles(role_exists, [settings.role] if settings.role else [], where)
            formula = _region(catalog, entity_name, settings.region, where)
            return Action(kind, settings, formula=formula)
        case CreateAction():
            return _create(catalog, entity, settings, where)
        case NotifyAction():
            _recipients(catalog, entity, settings, where, role_exists)
            return Action(
                kind,
                settings,
                title=template(catalog, entity_name, settings.title, f"{where}.title"),
                body=template(catalog, entity_name, settings.body, f"{where}.body"),
                lists=tuple(
                    _notify_list(catalog, entity_name, item, f"{where}.lists[{i}]")
                    for i, item in enumerate(settings.lists)
                ),
            )
        case EscalateAction():
            _user_field(catalog, entity, settings.field, f"{where}.field")
            _roles(role_exists, [settings.role] if settings.role else [], where)
            if settings.stamp is not None:
                stamp = entity.field(settings.stamp)
                if stamp is None or stamp.type is not FieldType.DATETIME:
                    raise _bad(
                        "actions", f"{where}.stamp: {settings.stamp!r} is not a datetime field"
                    )
            return Action(
                kind,
                settings,
                formula=_region(catalog, entity_name, settings.region, where),
                title=template(catalog, entity_name, settings.title, f"{where}.title"),
                body=template(catalog, entity_name, settings.body, f"{where}.body"),
            )
        case WebhookAction():
            try:
                signing.secret_key(settings.secret)
            except ValueError as exc:
                raise _bad("actions", f"{where}.secret: {exc}") from None
            return Action(kind, settings)
        case _:
            return Action(kind, settings)


def _values(
    catalog: Catalog, entity: EntityDef, raw: Mapping[str, Any], where: str
) -> dict[str, Value]:
    """Values for ``entity``'s fields: literals coerced now, formulas checked on the source."""
    values: dict[str, Value] = {}
    for name, value in raw.items():
        field = entity.field(name)
        if field is None or field.computed:
            raise _bad("actions", f"{where}.{name}: {entity.name} has no field {name!r} to set")
        if _is_path(field, value):
            path = relation_path(catalog, entity, field, value, f"{where}.{name}")
            values[name] = Value(path=path)
            continue
        if isinstance(value, str) and value.startswith(FORMULA_PREFIX):
            accepts = _ACCEPTS.get(field.type)
            if accepts is None:
                raise _bad(
                    "actions",
                    f"{where}.{name}: a {field.type.value} field takes a literal, not a formula",
                )
            formula = _formula(catalog, entity.name, value[1:], None, "actions", f"{where}.{name}")
            if formula.type.kind not in accepts:
                raise _bad(
                    "actions",
                    f"{where}.{name}: the formula gives {formula.type.name}, "
                    f"which a {field.type.value} field does not take",
                )
            values[name] = Value(formula=formula)
            continue
        try:
            values[name] = Value(literal=coerce(field, value))
        except ValueError as exc:
            raise _bad("actions", f"{where}.{name}: {exc}") from None
    return values


def _create(catalog: Catalog, source: EntityDef, settings: CreateAction, where: str) -> Action:
    if settings.entity in ENGINE_ENTITIES or settings.entity not in catalog.registry.entities:
        raise _bad("actions", f"{where}.entity: no entity {settings.entity!r} to create")
    target = catalog.entity(settings.entity)
    if settings.link is not None:
        link = target.field(settings.link)
        if link is None or link.type is not FieldType.RELATION or link.target != source.name:
            raise _bad(
                "actions",
                f"{where}.link: {target.name} has no relation {settings.link!r} to {source.name}",
            )
    # Formulas of a create action read the record the rule acts on, not the new one.
    values: dict[str, Value] = {}
    for name, value in settings.values.items():
        field = target.field(name)
        if field is None or field.computed:
            raise _bad("actions", f"{where}.values.{name}: {target.name} has no field {name!r}")
        if _is_path(field, value):
            path = relation_path(catalog, source, field, value, f"{where}.values.{name}")
            values[name] = Value(path=path)
            continue
        if isinstance(value, str) and value.startswith(FORMULA_PREFIX):
            formula = _formula(
                catalog, source.name, value[1:], None, "actions", f"{where}.values.{name}"
            )
            accepts = _ACCEPTS.get(field.type, frozenset())
            if formula.type.kind not in accepts:
                raise _bad(
                    "actions",
                    f"{where}.values.{name}: the formula gives {formula.type.name}, "
                    f"which a {field.type.value} field does not take",
                )
            values[name] = Value(formula=formula)
        else:
            try:
                values[name] = Value(literal=coerce(field, value))
            except ValueError as exc:
                raise _bad("actions", f"{where}.values.{name}: {exc}") from None
    return Action("create", settings, values=values)


def _notify_list(
    catalog: Catalog, entity_name: str, settings: NotifyList, where: str
) -> CheckedList:
    if settings.entity in ENGINE_ENTITIES or settings.entity not in catalog.registry.entities:
        raise _bad("actions", f"{where}.entity: no entity {settings.entity!r} to list")
    listed = catalog.entity(settings.entity)
    shown = []
    for match in _PLACEHOLDER.finditer(settings.line):
        name = match.group(1).strip()
        if listed.field(name) is None:
            raise _bad("actions", f"{where}.line: {listed.name} has no field {name!r}")
        shown.append(name)
    for match in _PLACEHOLDER.finditer(settings.heading):
        if match.group(1).strip() != "count":
            raise _bad("actions", f"{where}.heading: the only placeholder is {{count}}")

    def compiled(value: Any, path: str) -> Any:
        if isinstance(value, Mapping):
            return {k: compiled(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [compiled(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str) and value.startswith(FORMULA_PREFIX):
            return _formula(catalog, entity_name, value[1:], None, "actions", path)
        return value

    return CheckedList(settings, compiled(settings.filter, f"{where}.filter"), tuple(shown))


def _recipients(
    catalog: Catalog, entity: EntityDef, who: Recipients, where: str, role_exists: RoleExists
) -> None:
    _roles(role_exists, who.roles, where)
    for kind, paths in (("fields", who.fields), ("managers", who.managers)):
        for path in paths:
            user_path(catalog, entity, path, f"{where}.{kind}")


#: What starts a relation path among the values of ``set`` and ``create``.
PATH_PREFIX = "@"


def _is_path(field: FieldDef, value: Any) -> bool:
    return (
        field.type is FieldType.RELATION
        and isinstance(value, str)
        and value.startswith(PATH_PREFIX)
    )


def relation_path(
    catalog: Catalog, entity: EntityDef, field: FieldDef, value: str, where: str
) -> tuple[str, ...]:
    """The steps of ``"@device"`` or ``"@customer.owner"``: relations from ``entity`` whose
    last one points where ``field`` does."""
    path = value[len(PATH_PREFIX) :]
    current = entity
    for step in path.split("."):
        relation = current.field(step)
        if relation is None or relation.type is not FieldType.RELATION or relation.target is None:
            raise _bad("actions", f"{where}: {value!r}: {current.name} has no relation {step!r}")
        current = catalog.entity(relation.target)
    if current.name != field.target:
        raise _bad("actions", f"{where}: {value!r} leads to {current.name}, not to {field.target}")
    return tuple(path.split("."))


def user_path(catalog: Catalog, entity: EntityDef, path: str, where: str) -> list[str]:
    """The steps of a path of relations ending at ``user`` (``account.owner``)."""
    steps = path.split(".")
    current = entity
    for i, step in enumerate(steps):
        field = current.field(step)
        if field is None or field.type is not FieldType.RELATION or field.target is None:
            raise _bad("actions", f"{where}: {path!r}: {current.name} has no relation {step!r}")
        current = catalog.entity(field.target)
        if i == len(steps) - 1 and current.name != "user":
            raise _bad("actions", f"{where}: {path!r} does not lead to a user")
    return steps


def _user_field(catalog: Catalog, entity: EntityDef, name: str, where: str) -> None:
    field = entity.field(name)
    if field is None or field.type is not FieldType.RELATION or field.target != "user":
        raise _bad("actions", f"{where}: {entity.name} has no relation {name!r} to user")


def _roles(role_exists: RoleExists, roles: Sequence[str], where: str) -> None:
    for role in roles:
        if not role_exists(role):
            raise _bad("actions", f"{where}: no role named {role!r}")


def _region(catalog: Catalog, entity_name: str, source: str | None, where: str) -> Formula | None:
    if source is None:
        return None
    return _formula(catalog, entity_name, source, Kind.STRING, "actions", f"{where}.region")


def template(catalog: Catalog, entity_name: str, text: str, where: str) -> Template:
    """Check each ``{...}`` placeholder of ``text`` as a formula on the entity."""
    parts = []
    for match in _PLACEHOLDER.finditer(text):
        source = match.group(1).strip()
        if source == "id":
            continue
        parts.append((source, _formula(catalog, entity_name, source, None, "actions", where)))
    return Template(text, tuple(parts))


def _formula(
    catalog: Catalog, entity_name: str, source: str, expect: Kind | None, field: str, where: str
) -> Formula:
    resolver = entity_resolver(catalog.registry.entities, entity_name)
    try:
        return check(source, resolver, expect=expect)
    except FormulaError as exc:
        raise _bad(field, f"{where}: {exc.describe()}") from None


def _bad(field: str, message: str) -> BadUserInput:
    return BadUserInput(message, field=field)
