"""Running a rule's actions on one record, in the caller's transaction.

Actions run in order, each on the record as the previous one left it (an
``assign`` followed by a ``notify`` of ``owner`` tells the new owner). They
write as the system through the records service, so the write hooks (audit,
events, validation) apply as for any write, and the source and request id
stay the caller's: events caused by a rule carry the rule run's request id,
which is how the loop guard recognises them (see :mod:`.engine`).

:func:`run_actions` is the entry point for other code (a pipeline's actions
on entering a state, an approval's outcome); the engine calls :func:`execute`
with the rule's already checked actions.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from qiao.core import notifications
from qiao.core.automation.definitions import (
    Action,
    AssignAction,
    CheckedList,
    CreateAction,
    EscalateAction,
    NotifyAction,
    RenderDocumentAction,
    StartApprovalAction,
    Template,
    Value,
    WebhookAction,
    check_actions,
    user_path,
)
from qiao.core.automation.rules import role_names
from qiao.core.documents.render import render_document
from qiao.core.documents.templates import find_template
from qiao.core.errors import BadUserInput, Conflict, Forbidden
from qiao.core.formula import Formula
from qiao.core.formula.record_values import evaluate_on_record
from qiao.core.metadata.model import FieldDef, FieldType
from qiao.core.metadata.values import to_json
from qiao.core.records.context import Actor, WriteContext
from qiao.core.records.service import Record
from qiao.core.redaction import REDACTED, Sensitive, is_hidden, scrub

if TYPE_CHECKING:
    from qiao.core.records.host import RecordsHost

_LOCAL = ZoneInfo("Asia/Shanghai")


class ActionFailed(BadUserInput):
    """An action cannot be done on this record (nobody to assign to, say): the run fails."""


def run_actions(
    ctx: WriteContext,
    entity_name: str,
    record: Record,
    actions: Sequence[Mapping[str, Any]],
    *,
    reason: str,
) -> None:
    """Check ``actions`` (the format of a rule's ``actions``) and run them on ``record``.

    An empty list does nothing. Raises BAD_USER_INPUT for an action list that
    does not check, and :class:`ActionFailed` for one that cannot be done;
    either way the caller's transaction should roll back. A list is checked
    once per metadata version and process: pipelines and approvals run the
    same few lists on every move.
    """
    if not actions:
        return
    runtime = ctx.runtime
    catalog = runtime.current()
    key = (catalog.version, entity_name, json.dumps(actions, sort_keys=True, default=str))
    checked = _checked.get(key)
    if checked is None:
        roles = role_names(ctx.connection, catalog)
        checked = check_actions(catalog, entity_name, actions, roles.__contains__)
        if len(_checked) >= _CHECKED_LIMIT:
            _checked.clear()
        _checked[key] = checked
    execute(runtime, ctx, entity_name, record, checked, reason=reason)


#: Submits a record to an approval process: (context, process, entity, record id) -> the
#: request. The workflow package, which owns approvals, registers it when it loads.
ApprovalStarter = Callable[[WriteContext, str, str, str], Any]
_approval_starter: ApprovalStarter | None = None


def register_approval_starter(start: ApprovalStarter) -> None:
    """Carry out ``start_approval`` actions with ``start`` (the workflow package's).

    Automation sits beside workflow, which runs action lists on its own moves, so
    the action is registered by the package that owns it rather than imported here.
    """
    global _approval_starter
    _approval_starter = start


#: Checked action lists by (metadata version, entity, the list as JSON).
_checked: dict[tuple[int, str, str], tuple[Action, ...]] = {}
#: Far above the number of action lists any deployment declares.
_CHECKED_LIMIT = 1000


def execute(
    runtime: RecordsHost,
    ctx: WriteContext,
    entity_name: str,
    record: Record,
    actions: Sequence[Action],
    *,
    reason: str,
    rule_id: str | None = None,
) -> tuple[Record, list[dict[str, Any]]]:
    """Run checked actions; returns the record as they left it and what each did."""
    step = _Step(runtime, ctx, entity_name, reason, rule_id)
    done = []
    for action in actions:
        record, detail = step.run(action, record)
        done.append({"action": action.kind, **detail})
    return record, done


class _Step:
    """What every action needs: the records service, a system context, the clock."""

    def __init__(
        self, runtime: RecordsHost, ctx: WriteContext, entity: str, reason: str, rule_id: str | None
    ) -> None:
        self.runtime = runtime
        self.records = runtime.records
        self.catalog = runtime.current()
        self.conn = ctx.connection
        self.ctx = ctx.as_actor(Actor.system())
        self.entity = entity
        self.reason = reason
        self.rule_id = rule_id
        self.clock = self.records.formula_clock()

    def run(self, action: Action, record: Record) -> tuple[Record, dict[str, Any]]:
        match action.settings:
            case AssignAction():
                return self.assign(action, record)
            case CreateAction():
                return record, self.create(action, record)
            case NotifyAction():
                return record, self.notify(action, record)
            case WebhookAction():
                return record, self.webhook(action.settings, record)
            case StartApprovalAction():
                return record, self.start_approval(action.settings, record)
            case EscalateAction():
                return self.escalate(action, record)
            case RenderDocumentAction():
                return record, self.render_document(action.settings, record)
            case _:
                values = self.values(action.values, record)
                updated = self.records.update(self.ctx, self.entity, record["id"], values)
                return updated, {"fields": sorted(values)}

    # -- Values -----------------------------------------------------------------------------

    def evaluate(self, formula: Formula, record: Record) -> Any:
        return evaluate_on_record(self.conn, self.catalog, self.entity, record, formula, self.clock)

    def values(self, values: Mapping[str, Value], record: Record) -> dict[str, Any]:
        return {name: self.value(value, record) for name, value in values.items()}

    def value(self, value: Value, record: Record) -> Any:
        if value.path is not None:
            return self.related_id(record, value.path)
        if value.formula is not None:
            return self.evaluate(value.formula, record)
        return value.literal

    def related_id(self, record: Record, steps: Sequence[str]) -> str | None:
        """The id at the end of a path of relations from the record (None where it breaks)."""
        entity = self.catalog.entity(self.entity)
        current: Mapping[str, Any] | None = record
        for i, step in enumerate(steps):
            relation = entity.field(step)
            assert relation is not None and relation.target is not None
            assert current is not None
            target_id = current.get(relation.column)
            if target_id is None or i == len(steps) - 1:
                return target_id
            entity = self.catalog.entity(relation.target)
            current = self.records.get(self.conn, relation.target, target_id, actor=Actor.system())
            if current is None:
                return None
        return None

    def render(self, template: Template | None, record: Record) -> str:
        """The template's text with each placeholder replaced by its value on the record."""
        if template is None:
            return ""
        text = template.text.replace("{id}", record["id"])
        for source, formula in template.parts:
            shown = self.show(formula, self.evaluate(formula, record))
            text = text.replace("{" + source + "}", shown)
        return text

    def show(self, formula: Formula, value: Any) -> str:
        """A value as a person reads it: enum labels in Chinese, local times, plain numbers.

        An encrypted field's value is shown as ``[redacted]``: the rendered text is kept in
        plain fields (notifications) and sent out (docs/encryption.md).
        """
        if value is None:
            return ""
        if isinstance(value, Sensitive):
            return REDACTED
        if formula.fields == (formula.source.strip(),):
            field = self._field(formula.source.strip())
            if field is not None and field.type is FieldType.ENUM:
                label = next((v.label for v in field.values if v.value == value), None)
                return label.text("zh-CN") if label is not None else str(value)
        if isinstance(value, dt.datetime):
            return value.astimezone(_LOCAL).strftime("%Y-%m-%d %H:%M")
        if isinstance(value, bool):
            return "是" if value else "否"
        if isinstance(value, Decimal):
            return format(value, "f")
        return str(value)

    def _field(self, path: str) -> Any:
        entity = self.catalog.entity(self.entity)
        steps = path.split(".")
        for step in steps[:-1]:
            relation = entity.field(step)
            if relation is None or relation.target is None:
                return None
            entity = self.catalog.entity(relation.target)
        return entity.field(steps[-1])

    # -- People -----------------------------------------------------------------------------

    def users_at(self, record: Record, path: str) -> str | None:
        """The user id a relation path (``account.owner``) leads to from the record."""
        entity = self.catalog.entity(self.entity)
        steps = user_path(self.catalog, entity, path, path)
        current: Mapping[str, Any] | None = record
        for step in steps:
            assert current is not None
            relation = entity.field(step)
            assert relation is not None and relation.target is not None
            target_id = current.get(relation.column)
            if target_id is None or relation.target == "user":
                return target_id
            entity = self.catalog.entity(relation.target)
            current = self.records.get(self.conn, relation.target, target_id, actor=Actor.system())
            if current is None:
                return None
        return None

    def candidates(self, role: str, region: Formula | None, record: Record) -> list[str]:
        """Active holders of ``role``, those whose team's region is the region's value."""
        users = notifications.users_with_role(self.conn, self.catalog, role)
        if region is None or not users:
            return users
        wanted = self.evaluate(region, record)
        if wanted is None:
            return []
        user_t = self.catalog.table("user")
        team_t = self.catalog.table("team")
        rows = self.conn.execute(
            select(user_t.c.id)
            .join(team_t, team_t.c.id == user_t.c.team_id)
            .where(user_t.c.id.in_(users), team_t.c.region == wanted)
        )
        matched = {r[0] for r in rows}
        return [u for u in users if u in matched]

    def pick(self, candidates: list[str], field: str, strategy: str) -> str | None:
        """The first candidate, or the one holding the fewest records in ``field``."""
        if not candidates or strategy == "first":
            return candidates[0] if candidates else None
        table = self.catalog.table(self.entity)
        column_field = self.catalog.entity(self.entity).field(field)
        assert column_field is not None
        column = table.c[column_field.column]
        held = dict(
            self.conn.execute(
                select(column, func.count()).where(column.in_(candidates)).group_by(column)
            ).all()
        )
        return min(candidates, key=lambda user: held.get(user, 0))

    # -- Actions ----------------------------------------------------------------------------

    def assign(self, action: Action, record: Record) -> tuple[Record, dict[str, Any]]:
        settings: AssignAction = action.settings
        if settings.user is not None:
            found = notifications.user_ids(self.conn, self.catalog, [settings.user])
            if not found:
                raise ActionFailed(f"assign: no active user named {settings.user!r}")
            chosen: str | None = found[0]
        else:
            assert settings.role is not None
            chosen = self.pick(
                self.candidates(settings.role, action.formula, record),
                settings.field,
                settings.strategy,
            )
            if chosen is None:
                where = " in that region" if settings.region else ""
                raise ActionFailed(f"assign: no active user with the role {settings.role!r}{where}")
        updated = self.records.update(self.ctx, self.entity, record["id"], {settings.field: chosen})
        return updated, {"field": settings.field, "to": chosen}

    def create(self, action: Action, record: Record) -> dict[str, Any]:
        settings: CreateAction = action.settings
        values = self.values(action.values, record)
        if settings.link is not None:
            values[settings.link] = record["id"]
        created = self.records.create(self.ctx, settings.entity, values)
        return {"entity": settings.entity, "id": created["id"]}

    def notify(self, action: Action, record: Record) -> dict[str, Any]:
        settings: NotifyAction = action.settings
        users: list[str | None] = [*notifications.user_ids(self.conn, self.catalog, settings.users)]
        for role in settings.roles:
            users += notifications.users_with_role(self.conn, self.catalog, role)
        users += [self.users_at(record, path) for path in settings.fields]
        users += [
            notifications.manager_of(self.conn, self.catalog, self.users_at(record, path))
            for path in settings.managers
        ]
        recipients = [u for u in dict.fromkeys(users) if u is not None]
        title = self.render(action.title, record)
        body = self.render(action.body, record)
        if not action.lists:
            notifications.notify(
                self.ctx,
                users=recipients,
                title=title,
                body=body,
                kind=settings.kind,
                link_entity=self.entity,
                link_id=record["id"],
            )
            return {"users": recipients}
        filters = [self.resolved(listed.filter, record) for listed in action.lists]
        for user in recipients:
            reader = self.reader(user)
            sections = [
                self.listed(listed, where, reader)
                for listed, where in zip(action.lists, filters, strict=True)
            ]
            notifications.notify(
                self.ctx,
                users=[user],
                title=title,
                body="\n".join([body, *sections]) if body else "\n".join(sections),
                kind=settings.kind,
                link_entity=self.entity,
                link_id=record["id"],
            )
        return {"users": recipients}

    def resolved(self, value: Any, record: Record) -> Any:
        """A list's filter with each formula replaced by its value on the rule's record."""
        if isinstance(value, Mapping):
            resolved = {}
            for key, item in value.items():
                found = self.resolved(item, record)
                # A blank value compares as blank: "eq" a blank industry is no industry,
                # not "no condition", which a null operand means in the filter language.
                if found is None and key in ("eq", "neq"):
                    resolved["is_null"] = key == "eq"
                else:
                    resolved[key] = found
            return resolved
        if isinstance(value, list):
            return [self.resolved(v, record) for v in value]
        if isinstance(value, Formula):
            found = self.evaluate(value, record)
            return format(found, "f") if isinstance(found, Decimal) else found
        return value

    def reader(self, user_id: str) -> Actor:
        """The recipient as an actor: lists are read with their rights and row rules."""
        users = self.catalog.table("user")
        row = self.conn.execute(
            select(users.c.username, users.c.is_admin).where(users.c.id == user_id)
        ).one()
        return Actor(user_id=user_id, username=row.username, is_admin=bool(row.is_admin))

    def listed(self, listed: CheckedList, where: Any, reader: Actor) -> str:
        """One list of a notification as ``reader`` reads it: heading, then the lines.

        A reader who may not read the entity, or a field the list filters on, sees the
        list as empty: what a message tells is never more than its reader may read.
        """
        settings = listed.settings
        entity = self.catalog.entity(settings.entity)
        try:
            page = self.records.list(
                self.conn,
                settings.entity,
                filter=where,
                order_by=list(settings.order_by) or None,
                first=settings.first,
                with_total=True,
                actor=reader,
            )
            rows, count = page.records, page.total_count or 0
        except Forbidden:
            rows, count = [], 0
        heading = settings.heading.replace("{count}", str(count))
        if not rows:
            return f"{heading}：{settings.empty}"
        lines = []
        for row in rows:
            line = settings.line
            for name in listed.shown:
                field = entity.field(name)
                assert field is not None
                line = line.replace("{" + name + "}", _shown(field, row.get(field.column)))
            lines.append(line)
        return f"{heading}：" + "；".join(lines)

    def webhook(self, settings: WebhookAction, record: Record) -> dict[str, Any]:
        now = self.records.clock().astimezone(dt.UTC).isoformat(timespec="microseconds")
        entity = self.catalog.entity(self.entity)
        data = scrub(
            {
                f.name: to_json(f, record.get(f.column))
                for f in entity.fields
                if not is_hidden(f) and not f.computed
            }
        )
        body = {
            "type": f"automation.{self.entity}",
            "timestamp": now,
            "data": {
                "rule_id": self.rule_id,
                "reason": self.reason,
                "entity": self.entity,
                "record_id": record["id"],
                "record": data,
            },
        }
        call = self.records.create(
            self.ctx,
            "automation_webhook_call",
            {"rule": self.rule_id, "url": settings.url, "secret": settings.secret, "body": body},
        )
        return {"call": call["id"]}

    def start_approval(self, settings: StartApprovalAction, record: Record) -> dict[str, Any]:
        start = _approval_starter
        if start is None:
            raise ActionFailed("start_approval: the workflow plugin is not enabled")
        try:
            started = start(self.ctx, settings.process, self.entity, record["id"])
        except Conflict as exc:  # the record waits for an approval already: not worth retrying
            raise ActionFailed(f"start_approval: {exc.message}") from None
        return {"process": settings.process, "request": _id_of(started)}

    def render_document(self, settings: RenderDocumentAction, record: Record) -> dict[str, Any]:
        """Render the template for the record as the rule's actor, through the records
        service (its read rules apply, as to a caller of ``renderDocument``), and keep it
        as a ``document`` of the record in this run's transaction."""
        if "document_template" not in self.catalog.registry.entities:
            raise ActionFailed("render_document: the documents plugin is not enabled")
        template = find_template(self.conn, self.catalog, settings.template)
        if template is None:
            raise ActionFailed(
                f"render_document: no active document template {settings.template!r}"
            )
        if template.entity != self.entity:
            raise ActionFailed(
                f"render_document: document template {settings.template!r} renders "
                f"{template.entity} records, not {self.entity}"
            )
        document = render_document(self.ctx, settings.template, record["id"])
        return {
            "template": settings.template,
            "document": document["id"],
            "filename": document["filename"],
        }

    def escalate(self, action: Action, record: Record) -> tuple[Record, dict[str, Any]]:
        settings: EscalateAction = action.settings
        field = self.catalog.entity(self.entity).field(settings.field)
        assert field is not None
        current = record.get(field.column)
        if settings.to == "manager":
            target = notifications.manager_of(self.conn, self.catalog, current)
            if target is None:
                raise ActionFailed("escalate: the current user has no manager to escalate to")
        else:
            assert settings.role is not None
            candidates = [
                u for u in self.candidates(settings.role, action.formula, record) if u != current
            ]
            target = self.pick(candidates, settings.field, "fewest")
            if target is None:
                raise ActionFailed(
                    f"escalate: no other active user with the role {settings.role!r}"
                )
        values: dict[str, Any] = {settings.field: target}
        if settings.stamp is not None:
            values[settings.stamp] = self.records.clock()
        updated = self.records.update(self.ctx, self.entity, record["id"], values)
        notifications.notify(
            self.ctx,
            users=[target],
            title=self.render(action.title, updated),
            body=self.render(action.body, updated),
            kind="escalation",
            link_entity=self.entity,
            link_id=record["id"],
        )
        return updated, {"field": settings.field, "from": current, "to": target}


def _shown(field: FieldDef, value: Any) -> str:
    """A listed record's value as a person reads it (enum labels in Chinese)."""
    if value is None:
        return ""
    if isinstance(value, Sensitive):
        return REDACTED
    if field.type is FieldType.ENUM:
        label = next((v.label for v in field.values if v.value == value), None)
        return label.text("zh-CN") if label is not None else str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(_LOCAL).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _id_of(started: Any) -> Any:
    if isinstance(started, Mapping):
        return started.get("id")
    return started
