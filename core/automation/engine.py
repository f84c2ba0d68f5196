"""Running rules from events in a worker: matching, conditions, the loop guard, idempotency.

One handler, ``automation.rules``, receives record events of entities that
have event rules, and the timers the engine set. For an event it opens one
transaction as the system (source ``automation``) that

1. looks for the run records of this delivery (key ``<delivery>:<rule>``) and
   leaves out the rules that have one: that delivery ran before and committed;
2. reads the record as it is now and, rule by rule, evaluates the condition
   on it and runs the actions, each rule in a savepoint with its run record;
3. commits every rule's effects and run records together.

A worker that dies between acting and recording its outcome therefore finds
the run records on the next attempt and does nothing twice. A rule whose
actions are refused (bad input, nobody to assign to) or whose condition cannot
be computed gets a FAILED run record with the reason (its savepoint undoes
what it did) and the other rules still run; any other error fails the
delivery, which the worker retries with back-off.

Loop guard: each run record keeps the transaction's request id and the chain
of rules that led to it, and every event written by the transaction carries
that request id. A rule never reacts to an event its own run caused, directly
or through other rules (nor to one caused by rules that ran with it in the
same transaction), and a chain of rules triggering rules stops after
:data:`MAX_CHAIN` runs, leaving a SKIPPED run record that says so.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, select

from qiao.core.automation import timing
from qiao.core.automation.actions import execute
from qiao.core.automation.rules import Rule, rules_of
from qiao.core.calendars.store import calendars
from qiao.core.errors import Conflict, QiaoError
from qiao.core.events.model import Delivery, Event, EventHandler
from qiao.core.formula import FormulaError
from qiao.core.formula.record_values import evaluate_on_record
from qiao.core.ids import new_id
from qiao.core.records.context import Actor, Source, WriteContext
from qiao.core.records.host import RecordsHost
from qiao.core.records.service import Record, RecordsService
from qiao.core.redaction import is_redacted_change
from qiao.core.runtime import Runtime

log = logging.getLogger("qiao.automation")

HANDLER = "automation.rules"
#: Seconds the fan-out relies on the rules it read last at least (a rule written in this
#: process is seen at once).
FAN_OUT_MIN_AGE = 1.0
#: Runs in one chain of rules triggering rules; the next is skipped.
MAX_CHAIN = 5
#: Records a scheduled rule acts on per firing (the first by id whose condition holds).
SCHEDULE_LIMIT = 500
#: Records a scheduled rule reads per firing while looking for those.
SCHEDULE_SCAN_LIMIT = 10_000
_PAGE = 200


def handlers(runtime: Runtime) -> list[EventHandler]:
    """The engine's handler for the worker of ``runtime``."""
    rules = rules_of(runtime)

    def wants(event: Event) -> bool:
        """Timers the engine set, and changes of entities that some rule watches."""
        if event.operation == "timer":
            return (event.timer or "").startswith(timing.PREFIX)
        return event.entity in rules.get(min_age=FAN_OUT_MIN_AGE).event_entities

    return [EventHandler(HANDLER, handle, operations=("create", "update", "timer"), when=wants)]


def handle(delivery: Delivery) -> None:
    event = delivery.event
    runtime = delivery.runtime
    rules = rules_of(runtime).get()
    if event.operation == "timer":
        if event.timer == timing.SCHEDULE_TIMER:
            _scheduled(runtime, delivery, event.record_id)
            return
        rule = rules.by_id((event.payload or {}).get("rule", ""))
        if rule is not None and rule.definition.trigger.offset is not None:
            _run(runtime, delivery, [rule], [], due=_timer_due(event))
        return
    matching = [r for r in rules.on_events(event.entity) if matches(r, event)]
    if not matching:
        return
    chain = _chain(runtime, event)
    # A rule never reacts to a change its own run led to.
    _run(runtime, delivery, [r for r in matching if r.id not in chain], chain)


def matches(rule: Rule, event: Event) -> bool:
    """Whether an event fires the rule's trigger (the condition is checked later, on the record)."""
    trigger = rule.definition.trigger
    if trigger.created is not None:
        return event.operation == "create"
    if trigger.updated is not None:
        wanted = trigger.updated.fields
        return event.operation == "update" and (
            not wanted or any(f in event.changes for f in wanted)
        )
    state = trigger.state_entered
    if state is None or state.field not in event.changes:
        return False
    change = event.changes[state.field]
    if is_redacted_change(change):
        return True  # encrypted: the condition must tell, on the record
    return change[1] is not None and (state.value is None or change[1] == state.value)


def _chain(runtime: RecordsHost, event: Event) -> list[str]:
    """The rules whose runs led to this event, oldest first (empty for other sources)."""
    if event.source != str(Source.AUTOMATION):
        return []
    runs = runtime.current().table("automation_run")
    with runtime.db.read() as conn:
        chains = conn.execute(
            select(runs.c.chain).where(runs.c.request_id == event.request_id).order_by(runs.c.id)
        ).scalars()
        return list(dict.fromkeys(rule for chain in chains for rule in chain or ()))


def _run(
    runtime: RecordsHost,
    delivery: Delivery,
    rules: Sequence[Rule],
    chain: Sequence[str],
    *,
    due: dt.datetime | None = None,
) -> None:
    """Run rules on the event's record for one delivery, each at most once."""
    if not rules:
        return
    records = runtime.records
    record_id = delivery.event.record_id
    keys = {rule.id: f"{delivery.id}:{rule.id}" for rule in rules}
    with _transaction(records) as ctx:
        conn = ctx.connection
        done = _ran(conn, runtime, list(keys.values()))
        pending = [r for r in rules if keys[r.id] not in done]
        if not pending:
            return
        record = records.get(conn, pending[0].entity, record_id, actor=Actor.system())
        if record is None:
            return  # deleted since: nothing to act on
        if due is not None and timing.due_at(pending[0], record, calendars(runtime).get) != due:
            return  # the deadline moved; the timer set for the new one stands for it
        for rule in pending:
            run = {
                "key": keys[rule.id],
                "rule": rule.id,
                "entity": rule.entity,
                "record_id": record_id,
                "event_id": delivery.event.id,
                "request_id": ctx.request_id,
                "chain": [*chain, rule.id],
            }
            if len(chain) >= MAX_CHAIN:
                error = f"a chain of {len(chain)} rules triggering rules stops here"
                records.create(ctx, "automation_run", {**run, "status": "SKIPPED", "error": error})
                continue
            record = _one(runtime, ctx, rule, record, run)


def _one(
    runtime: RecordsHost, ctx: WriteContext, rule: Rule, record: Record, run: dict[str, Any]
) -> Record:
    """One rule in a savepoint; returns the record as the rule left it."""
    records = runtime.records
    try:
        with ctx.connection.begin_nested():
            if not condition_holds(runtime, ctx.connection, rule, record):
                return record
            changed, details = _execute(runtime, ctx, rule, record)
            records.create(ctx, "automation_run", {**run, "status": "DONE", "details": details})
    except Conflict:
        raise  # a concurrent write, or this delivery running twice at once: retried
    except (QiaoError, FormulaError) as exc:
        message = exc.message if isinstance(exc, QiaoError) else exc.describe()
        log.warning("automation rule %r failed on %s: %s", rule.name, run["record_id"], message)
        records.create(ctx, "automation_run", {**run, "status": "FAILED", "error": message})
        return record
    return changed


@contextmanager
def _transaction(records: RecordsService) -> Iterator[WriteContext]:
    """A system transaction whose request id the run records keep (the loop guard's link)."""
    request_id = new_id().replace("-", "")
    with records.transaction(Actor.system(), Source.AUTOMATION, request_id) as ctx:
        yield ctx


def _execute(
    runtime: RecordsHost, ctx: WriteContext, rule: Rule, record: Record
) -> tuple[Record, list[dict[str, Any]]]:
    return execute(
        runtime,
        ctx,
        rule.entity,
        record,
        rule.definition.actions,
        reason=rule.name,
        rule_id=rule.id,
    )


def condition_holds(runtime: RecordsHost, conn: Connection, rule: Rule, record: Record) -> bool:
    formula = rule.definition.condition
    if formula is None:
        return True
    clock = runtime.records.formula_clock()
    value = evaluate_on_record(conn, runtime.current(), rule.entity, record, formula, clock)
    return value is True


def _ran(conn: Connection, runtime: RecordsHost, keys: list[str]) -> set[str]:
    runs = runtime.current().table("automation_run")
    return set(conn.execute(select(runs.c.key).where(runs.c.key.in_(keys))).scalars())


def _timer_due(event: Event) -> dt.datetime | None:
    due = (event.payload or {}).get("due_at")
    return dt.datetime.fromisoformat(due) if due else None


def _scheduled(runtime: RecordsHost, delivery: Delivery, rule_id: str) -> None:
    """A scheduled rule's time came: act on the records its condition selects, re-arm it.

    One transaction for the whole firing: it re-arms the timer, acts on at
    most :data:`SCHEDULE_LIMIT` records (reading at most
    :data:`SCHEDULE_SCAN_LIMIT`) and writes one run record listing them. A
    refused action fails the firing (FAILED run record, nothing done) and the
    timer is re-armed all the same.
    """
    rule = rules_of(runtime).get().by_id(rule_id)
    if rule is None or rule.kind != "schedule":
        return
    records = runtime.records
    trigger = rule.definition.trigger
    with _transaction(records) as ctx:
        conn = ctx.connection
        run: dict[str, Any] = {
            "key": f"{delivery.id}:{rule.id}",
            "rule": rule.id,
            "entity": rule.entity,
            "event_id": delivery.event.id,
            "request_id": ctx.request_id,
            "chain": [rule.id],
        }
        if _ran(conn, runtime, [run["key"]]):
            return
        timing.arm_schedule(conn, rule.id, trigger, records.clock())
        try:
            with conn.begin_nested():
                acted: list[str] = []
                scanned = 0
                for record in _records(records, conn, rule.entity):
                    if scanned >= SCHEDULE_SCAN_LIMIT or len(acted) >= SCHEDULE_LIMIT:
                        break
                    scanned += 1
                    if condition_holds(runtime, conn, rule, record):
                        _execute(runtime, ctx, rule, record)
                        acted.append(record["id"])
                details = {"records": acted, "scanned": scanned}
                records.create(ctx, "automation_run", {**run, "status": "DONE", "details": details})
        except Conflict:
            raise
        except (QiaoError, FormulaError) as exc:
            message = exc.message if isinstance(exc, QiaoError) else exc.describe()
            log.warning("scheduled automation rule %r failed: %s", rule.name, message)
            records.create(ctx, "automation_run", {**run, "status": "FAILED", "error": message})


def _records(records: RecordsService, conn: Connection, entity: str) -> Iterator[Record]:
    """Every record of ``entity`` by id, a page at a time."""
    after = None
    while True:
        page = records.list(conn, entity, first=_PAGE, after=after, actor=Actor.system())
        yield from page.records
        if not page.has_next_page:
            return
        after = page.cursors[-1]
