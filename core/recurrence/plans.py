"""Recurring plans at work: arming each followed record's timer, firing it, rescheduling.

A followed record has at most one timer per plan, named ``plan:<name>``, due
``lead_days`` before its next due date. The worker that fires it creates, in
one transaction, the plan's record and a ``plan_occurrence`` keyed by plan,
followed record and due date; a second run for the same date (a retried
delivery, a concurrent worker) finds the key taken and creates nothing. Then
the next timer is armed: from the anchor, or, for a plan that reschedules from
completion, when the created record is completed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from qiao.core.catalog import Catalog
from qiao.core.errors import ConfigurationError
from qiao.core.events import timers
from qiao.core.events.model import Delivery, Event, EventHandler
from qiao.core.formula import Formula, Kind, check
from qiao.core.formula.errors import FormulaError
from qiao.core.formula.metadata import entity_resolver
from qiao.core.formula.record_values import evaluate_on_record
from qiao.core.metadata.model import FieldDef, FieldType
from qiao.core.records.context import Actor, Source, WriteContext
from qiao.core.recurrence.declaration import UNIT_LIMITS, Every, PlanDecl
from qiao.core.runtime import Runtime

TIMER_PREFIX = "plan:"
HANDLER = "recurrence.plans"
OCCURRENCE = "plan_occurrence"
#: A value starting with it names relations from the followed record: ``"@device.customer"``.
PATH_PREFIX = "@"
_DATES = {FieldType.DATE, FieldType.DATETIME}
#: The most intervals a plan looks ahead for its next due date.
_MAX_STEPS = 100_000


@dataclass(frozen=True)
class RelationPath:
    """A relation value: the record at the end of these relations from the followed record."""

    steps: tuple[tuple[str, str], ...]  # (entity, relation field) per step


def _path(catalog: Catalog, entity: str, written: FieldDef, value: str, where: str) -> RelationPath:
    """Check ``"@device.customer"`` for the relation ``written``; ConfigurationError if not."""
    steps: list[tuple[str, str]] = []
    current = entity
    for name in value[len(PATH_PREFIX) :].split("."):
        relation = catalog.registry.entities[current].field(name)
        if relation is None or relation.type is not FieldType.RELATION or not relation.target:
            raise ConfigurationError(f"{where}: {value!r}: {current}.{name} is not a relation")
        steps.append((current, name))
        current = relation.target
    if written.type is not FieldType.RELATION or written.target != current:
        raise ConfigurationError(
            f"{where}: {value!r} points at {current}, which {written.name} does not take"
        )
    return RelationPath(tuple(steps))


def _related_id(ctx: WriteContext, record: dict[str, Any], path: RelationPath) -> Any:
    """The id at the end of ``path`` from ``record`` (None where it breaks)."""
    current: dict[str, Any] | None = record
    found: Any = None
    for entity, name in path.steps:
        if current is None:
            return None
        relation = ctx.catalog.entity(entity).field(name)
        assert relation is not None and relation.target is not None
        found = current.get(relation.column)
        if found is None:
            return None
        current = ctx.records.get(ctx.connection, relation.target, found, actor=Actor.system())
    return found


@dataclass(frozen=True)
class Plan:
    """A declaration checked against the metadata, its formulas typed."""

    decl: PlanDecl
    anchor: FieldDef
    until: FieldDef | None
    when: Formula | None
    values: dict[str, Any]  # field name -> literal, checked Formula or RelationPath
    every: Formula | None  # the interval's count, when each record says it
    lead_days: Formula | None  # the days ahead, when each record says them

    @property
    def timer(self) -> str:
        return TIMER_PREFIX + self.decl.name

    @classmethod
    def of(cls, catalog: Catalog, decl: PlanDecl) -> Plan:
        """Check ``decl``; ConfigurationError says what does not fit."""
        where = f"recurring plan {decl.name}"
        entities = catalog.registry.entities
        entity = entities.get(decl.entity)
        target = entities.get(decl.create.entity)
        if entity is None or target is None:
            missing = decl.entity if entity is None else decl.create.entity
            raise ConfigurationError(f"{where}: unknown entity {missing!r}")

        def field(owner: Any, name: str, types: set[FieldType], what: str) -> FieldDef:
            found: FieldDef | None = owner.field(name)
            if found is None or found.computed or found.type not in types:
                raise ConfigurationError(f"{where}: {owner.name}.{name} must be a stored {what}")
            return found

        anchor = field(entity, decl.anchor, _DATES, "date or datetime field")
        until = field(entity, decl.until, _DATES, "date field") if decl.until else None
        if decl.reschedule_from:
            field(target, decl.reschedule_from, _DATES, "date or datetime field")
        if decl.create.due_field:
            field(target, decl.create.due_field, {FieldType.DATE}, "date field")
        if decl.create.link:
            link = field(target, decl.create.link, {FieldType.RELATION}, "relation")
            if link.target != entity.name:
                raise ConfigurationError(
                    f"{where}: {target.name}.{link.name} must point at {entity.name}"
                )
        resolver = entity_resolver(entities, entity.name)
        lead = decl.lead_days
        try:
            when = check(decl.when, resolver, expect=Kind.BOOLEAN) if decl.when else None
            counts = decl.every.formula
            every = check(counts, resolver, expect=Kind.INTEGER) if counts else None
            lead_days = None
            if isinstance(lead, str):
                lead_days = check(lead[1:], resolver, expect=Kind.INTEGER)
            values: dict[str, Any] = {}
            for name, value in decl.create.values.items():
                written = target.field(name)
                if written is None:
                    raise ConfigurationError(f"{where}: {target.name} has no field {name!r}")
                if isinstance(value, str) and value.startswith(PATH_PREFIX):
                    values[name] = _path(catalog, entity.name, written, value, where)
                    continue
                formula = isinstance(value, str) and value.startswith("=")
                values[name] = check(value[1:], resolver) if formula else value
        except FormulaError as exc:
            raise ConfigurationError(f"{where}: {exc.message}") from None
        return cls(decl, anchor, until, when, values, every, lead_days)

    # -- Dates ------------------------------------------------------------------------

    def local(self, value: Any) -> dt.date | None:
        if isinstance(value, dt.datetime):
            return value.astimezone(self.decl.zone).date()
        return value if isinstance(value, dt.date) else None

    def counts(self, ctx: WriteContext, record: dict[str, Any]) -> tuple[Every, int] | None:
        """The record's interval and days ahead; None when its formulas give no usable value."""
        every, lead = self.decl.every, self.decl.lead_days

        def count(formula: Formula) -> Any:
            clock = ctx.records.formula_clock()
            return evaluate_on_record(
                ctx.connection, ctx.catalog, self.decl.entity, record, formula, clock
            )

        if self.every is not None:
            times = count(self.every)
            if not isinstance(times, int) or not 1 <= times <= UNIT_LIMITS[every.unit]:
                return None
            every = every.counted(times)
        if self.lead_days is not None:
            lead = count(self.lead_days)
        if not isinstance(lead, int) or not 0 <= lead <= 3_660:
            return None
        return every, lead

    def next_due(self, every: Every, base: dt.date, not_before: dt.date) -> dt.date:
        """The first due date after ``base`` that falls on or after ``not_before``."""
        for times in range(1, _MAX_STEPS):
            due = every.after(base, times)
            if due >= not_before:
                return due
        raise ConfigurationError(f"recurring plan {self.decl.name} finds no due date")

    def arm(
        self,
        ctx: WriteContext,
        record: dict[str, Any],
        base: dt.date | None = None,
        not_before: dt.date | None = None,
    ) -> dt.date | None:
        """Set the record's timer to its next occurrence (or remove it); returns the due date."""
        base = base or self.local(record.get(self.anchor.column))
        counts = self.counts(ctx, record) if base is not None else None
        if base is None or counts is None:
            timers.cancel(ctx.connection, self.decl.entity, record["id"], self.timer)
            return None
        every, lead_days = counts
        today = ctx.now().astimezone(self.decl.zone).date()
        due = self.next_due(every, base, max(today, not_before or today))
        until = self.local(record.get(self.until.column)) if self.until else None
        if until is not None and due > until:
            timers.cancel(ctx.connection, self.decl.entity, record["id"], self.timer)
            return None
        payload = {"plan": self.decl.name, "due_on": due.isoformat(), "base": base.isoformat()}
        timers.schedule(
            ctx.connection,
            self.decl.entity,
            record["id"],
            self.timer,
            self.decl.fires_at(due, lead_days),
            payload,
        )
        return due

    # -- Occurrences ------------------------------------------------------------------

    def occur(self, ctx: WriteContext, record: dict[str, Any], due: dt.date) -> str | None:
        """Create the record for ``due`` unless it exists; returns its id (None when skipped)."""
        records = ctx.records
        key = f"{self.decl.name}:{record['id']}:{due.isoformat()}"
        system = Actor.system()
        found = records.list(
            ctx.connection, OCCURRENCE, filter={"key": {"eq": key}}, first=1, actor=system
        )
        if found.records:
            return None
        catalog = ctx.catalog
        clock = records.formula_clock()
        if self.when is not None:
            holds = evaluate_on_record(
                ctx.connection, catalog, self.decl.entity, record, self.when, clock
            )
            if holds is not True:
                return None
        values: dict[str, Any] = {}
        for name, value in self.values.items():
            if isinstance(value, Formula):
                value = evaluate_on_record(
                    ctx.connection, catalog, self.decl.entity, record, value, clock
                )
            elif isinstance(value, RelationPath):
                value = _related_id(ctx, record, value)
            values[name] = value
        create = self.decl.create
        if create.link:
            values[create.link] = record["id"]
        if create.due_field:
            values[create.due_field] = due
        made = records.create(ctx, create.entity, values)
        records.create(
            ctx,
            OCCURRENCE,
            {
                "key": key,
                "plan": self.decl.name,
                "entity": self.decl.entity,
                "record_id": record["id"],
                "due_on": due,
                "created_entity": create.entity,
                "created_id": made["id"],
            },
        )
        return str(made["id"])


def fire(runtime: Runtime, plans: dict[str, Plan], delivery: Delivery) -> None:
    """The handler of a plan's timer: create the occurrence, arm the next one."""
    event = delivery.event
    payload = event.payload or {}
    plan = plans.get(str(payload.get("plan")))
    if plan is None:
        return  # the plan was withdrawn since its timer was set
    due = dt.date.fromisoformat(payload["due_on"])
    base = dt.date.fromisoformat(payload["base"])
    records = runtime.records
    with records.transaction(Actor.system(), Source.AUTOMATION) as ctx:
        record = records.get(
            ctx.connection, plan.decl.entity, event.record_id, actor=Actor.system()
        )
        if record is None:
            return
        plan.occur(ctx, record, due)
        if plan.decl.reschedule_from is None:
            plan.arm(ctx, record, base, due + dt.timedelta(days=1))


def handler(runtime: Runtime, plans: Any) -> EventHandler:
    """The event handler of plan timers; ``plans()`` gives the checked plans by name."""

    def wants(event: Event) -> bool:
        return (event.timer or "").startswith(TIMER_PREFIX)

    def handle(delivery: Delivery) -> None:
        fire(runtime, plans(), delivery)

    return EventHandler(HANDLER, handle, operations=("timer",), when=wants)


def completed(ctx: WriteContext, plans: list[Plan], record: dict[str, Any], value: Any) -> None:
    """A created record was completed: its plan's next occurrence counts from ``value``."""
    system = Actor.system()
    found = ctx.records.list(
        ctx.connection,
        OCCURRENCE,
        filter={"created_id": {"eq": record["id"]}},
        first=1,
        actor=system,
    )
    if not found.records:
        return
    occurrence = found.records[0]
    for plan in plans:
        if plan.decl.name != occurrence["plan"]:
            continue
        followed = ctx.records.get(
            ctx.connection, plan.decl.entity, occurrence["record_id"], actor=system
        )
        done = plan.local(value)
        if followed is not None and done is not None:
            plan.arm(ctx, followed, done, done + dt.timedelta(days=1))
