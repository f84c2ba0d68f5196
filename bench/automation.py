"""Events per second through the outbox, and the delay from commit to action.

Workers run as separate processes (``Worker.run``, the loop of ``qiao
worker``, with its default settings unless said otherwise), each with its own
runtime; this process writes the events and collects, over a queue, when each
action happened (``time.monotonic``, one clock for every process). Two kinds
of work, reported apart:

- **handler**: a plugin's event handler that does real but cheap work for each
  new account: it signs the event's JSON as a webhook sender would
  (HMAC-SHA256) and reports. This is the outbox itself: fan-out, claim under a
  lease, run, record the outcome.
- **rules**: ``--rules`` active automation rules (``automation_rule`` records:
  a trigger, a condition formula, a notify action) watch new accounts, so each
  event is one delivery to the rules engine, which evaluates each rule's
  condition and writes a notification plus the run record that makes it
  idempotent, one transaction per rule. The time of an action is when its run
  record is written.

Two measurements per kind, each on a fresh database:

- **Throughput**: ``--events`` accounts (``--rules-events`` for rules) are written first (100 per
  transaction); then ``--processes`` workers start together and the clock runs
  until every action has been reported.
- **Latency**: workers idle (woken by LISTEN/NOTIFY on PostgreSQL, polling
  every 0.2 s on SQLite) while accounts are written one per transaction at
  ``--rate`` per second (``--rules-rate`` for rules); the delay of an action is
  its time minus the commit time of its account.

Every run checks that it did the work: each account acted on exactly as often
as expected, and no delivery left pending. ``--quick`` is a smoke test.
PostgreSQL comes from ``--postgres``; a database is created and dropped per run.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import multiprocessing
import os
import queue
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from qiao.core import audit
from qiao.core.config import Config
from qiao.core.config.audit import KEY_FILE_ENV, AuditSettings
from qiao.core.crypto.keys import generate_key_file
from qiao.core.events.model import Delivery, EventHandler
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage.database import normalise_url
from qiao.core.storage.system import delivery
from qiao.core.worker import Worker, WorkerSettings

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
KINDS = ("handler", "rules")
SIGNING_KEY = b"bench-signing-key"


def rule(i: int) -> dict[str, Any]:
    """Rule ``i``: on a new account with a name, tell the bench user."""
    return {
        "name": f"bench_rule_{i}",
        "entity": "account",
        "trigger": {"created": {}},
        "condition": f'AND(NOT(ISBLANK(name)), BLANKVALUE(industry, "") <> "rule {i} off")',
        "actions": [{"notify": {"users": ["bench"], "title": f"新客户 {{name}}（规则 {i}）"}}],
    }


class Reporter:
    """In a worker process: tells the bench process when each action happened."""

    __name__ = "bench_reporter"

    def __init__(self, kind: str, acted: Any) -> None:
        self.kind = kind
        self.acted = acted

    def sign(self, item: Delivery) -> None:
        """What a webhook sender does before sending: the event as JSON, signed."""
        event = item.event
        body = json.dumps(
            {"id": event.id, "entity": event.entity, "record": event.record_id, **event.changes},
            ensure_ascii=False,
            sort_keys=True,
        ).encode()
        hmac.new(SIGNING_KEY, body, hashlib.sha256).hexdigest()
        self.acted.put((event.record_id, time.monotonic()))

    @hookimpl
    def qiao_event_handlers(self) -> list[EventHandler]:
        if self.kind != "handler":
            return []
        return [EventHandler("bench_sign", self.sign, entities=("account",))]

    @hookimpl
    def qiao_after_record_write(
        self, entity: EntityDef, operation: str, record: dict[str, Any]
    ) -> None:
        if self.kind == "rules" and entity.name == "automation_run" and operation == "create":
            self.acted.put((record["record_id"], time.monotonic()))


def config(url: str) -> Config:
    """The bench deployment: the CRM, and an audit key as ``qiao init`` writes one, so every
    write takes the audit chain's head lock as it does in production (docs/audit.md)."""
    audit_settings = AuditSettings(key_file=Path(os.environ[KEY_FILE_ENV]))
    return Config(
        database_url=url, plugins=("crm",), metadata_check_interval=5.0, audit=audit_settings
    )


def worker_process(
    url: str, kind: str, settings: WorkerSettings, acted: Any, ready: Any, go: Any, stop: Any
) -> None:
    """A worker process: its own runtime and worker, started when the bench says go."""
    runtime = Runtime(config(url), extra_plugins=[Reporter(kind, acted)])
    try:
        runtime.start()
        worker = Worker(runtime, settings)
        ready.release()
        go.wait()
        worker.run(stop)
        worker.close()
    finally:
        runtime.close()


@contextmanager
def database(backend: str, postgres: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        return
    admin = create_engine(normalise_url(postgres), isolation_level="AUTOCOMMIT")
    name = f"qiao_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(normalise_url(postgres)).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepared(url: str, kind: str, rules: int) -> Runtime:
    """A migrated, started runtime with the bench user and, for ``rules``, the rules."""
    runtime = Runtime(config(url))
    runtime.migrate()
    audit.initialize(runtime, existing_ok=True)
    runtime.start()
    records = runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.create(ctx, "user", {"username": "bench", "display_name": "压测"})
        for i in range(rules if kind == "rules" else 0):
            records.create(ctx, "automation_rule", rule(i))
    return runtime


class Workers:
    """``count`` worker processes on ``url``; they start work on :meth:`go`."""

    def __init__(self, url: str, kind: str, settings: WorkerSettings, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.acted = ctx.Queue()
        ready = ctx.Semaphore(0)
        self._go, self._stop = ctx.Event(), ctx.Event()
        args = (url, kind, settings, self.acted, ready, self._go, self._stop)
        self.processes = [ctx.Process(target=worker_process, args=args) for _ in range(count)]
        for p in self.processes:
            p.start()
        for _ in self.processes:
            if not ready.acquire(timeout=120):
                raise RuntimeError("a worker process did not start")

    def go(self) -> float:
        started = time.monotonic()
        self._go.set()
        return started

    def collect(self, expected: int, seconds: float) -> list[tuple[str, float]]:
        """The first ``expected`` actions reported (fails after ``seconds`` without one)."""
        got: list[tuple[str, float]] = []
        while len(got) < expected:
            try:
                got.append(self.acted.get(timeout=seconds))
            except queue.Empty:
                raise RuntimeError(f"only {len(got)} of {expected} actions reported") from None
        return got

    def close(self) -> None:
        self._stop.set()
        for p in self.processes:
            p.join(30)
            if p.is_alive():
                p.kill()


@contextmanager
def workers(url: str, kind: str, settings: WorkerSettings, count: int) -> Iterator[Workers]:
    running = Workers(url, kind, settings, count)
    try:
        yield running
    finally:
        running.close()


def write_accounts(runtime: Runtime, count: int, per_transaction: int) -> None:
    records = runtime.records
    for start in range(0, count, per_transaction):
        with records.transaction(Actor.system(), Source.IMPORT) as ctx:
            for i in range(start, min(count, start + per_transaction)):
                records.create(ctx, "account", {"name": f"经销商 {i}"})


def check_done(runtime: Runtime, acted: list[tuple[str, float]], events: int, each: int) -> None:
    """Every account acted on ``each`` times, nothing pending."""
    per_record: dict[str, int] = {}
    for record_id, _ in acted:
        per_record[record_id] = per_record.get(record_id, 0) + 1
    assert len(per_record) == events, f"{len(per_record)} of {events} accounts acted on"
    assert set(per_record.values()) == {each}, "an account acted on a wrong number of times"
    deadline = time.monotonic() + 30
    while True:  # outcomes are recorded after the action, at the end of the batch
        with runtime.db.read() as conn:
            stmt = select(func.count()).select_from(delivery).where(delivery.c.status != "done")
            left = int(conn.execute(stmt).scalar_one())
        if left == 0:
            return
        assert time.monotonic() < deadline, f"{left} deliveries not done"
        time.sleep(0.1)


@dataclass
class Result:
    backend: str
    kind: str
    processes: int
    events: int
    actions_per_event: int
    seconds: float
    rate: float
    latency_ms: list[float]

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latency_ms)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def throughput(url: str, kind: str, args: argparse.Namespace, events: int) -> float:
    each = args.rules if kind == "rules" else 1
    runtime = prepared(url, kind, args.rules)
    try:
        write_accounts(runtime, events, 100)
        settings = WorkerSettings(batch_size=args.batch)
        with workers(url, kind, settings, args.processes) as running:
            began = running.go()
            acted = running.collect(events * each, 60)
            seconds = max(at for _, at in acted) - began
        check_done(runtime, acted, events, each)
        return seconds
    finally:
        runtime.close()


def latency(url: str, kind: str, args: argparse.Namespace, rate: float) -> list[float]:
    each = args.rules if kind == "rules" else 1
    events = args.latency_events
    runtime = prepared(url, kind, args.rules)
    committed: dict[str, float] = {}
    try:
        records = runtime.records
        with workers(url, kind, WorkerSettings(), args.processes) as running:
            running.go()
            time.sleep(1.0)  # idle, listening or polling
            next_at = time.monotonic()
            for i in range(events):
                with records.transaction(Actor.system(), Source.GRAPHQL) as ctx:
                    account = records.create(ctx, "account", {"name": f"客户 {i}"})
                committed[account["id"]] = time.monotonic()
                next_at += 1 / rate
                time.sleep(max(0.0, next_at - time.monotonic()))
            acted = running.collect(events * each, 60)
        check_done(runtime, acted, events, each)
        return [(at - committed[rid]) * 1000 for rid, at in acted]
    finally:
        runtime.close()


def run(backend: str, args: argparse.Namespace, folder: Path) -> list[Result]:
    results = []
    for kind in args.kinds:
        events = args.rules_events if kind == "rules" else args.events
        with database(backend, args.postgres, folder) as url:
            seconds = throughput(url, kind, args, events)
        rate = args.rules_rate if kind == "rules" else args.rate
        with database(backend, args.postgres, folder) as url:
            delays = latency(url, kind, args, rate)
        each = args.rules if kind == "rules" else 1
        result = Result(backend, kind, args.processes, events, each, seconds, rate, delays)
        results.append(result)
        print(
            f"[{backend}] {kind}: {result.events_per_second:.0f} events/s; "
            f"at {rate:g}/s p99 {result.percentile(0.99):.1f} ms",
            flush=True,
        )
    return results


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\n{args.processes} worker processes; throughput: {args.events} events "
        f"({args.rules_events} for rules) written first, "
        f"batch {args.batch}; latency: {args.latency_events} events, one per transaction, "
        f"default worker settings; rules: {args.rules} per event\n"
    )
    print(
        f"{'backend':10} {'work':8} {'events/s':>9} {'actions/s':>10} "
        f"{'rate/s':>7} {'median ms':>10} {'p99 ms':>8}"
    )
    for r in results:
        print(
            f"{r.backend:10} {r.kind:8} {r.events_per_second:9.0f} "
            f"{r.events_per_second * r.actions_per_event:10.0f} {r.rate:7g} "
            f"{statistics.median(r.latency_ms):10.1f} {r.percentile(0.99):8.1f}"
        )
    print(
        "\naims (PostgreSQL, handler): >= 1000 events/s with two worker processes; "
        "p99 < 50 ms at 100 events/s"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--events", type=int, default=5000, help="events for throughput")
    parser.add_argument("--batch", type=int, default=100, help="batch size for throughput")
    parser.add_argument("--rules", type=int, default=10, help="rules per event (rules)")
    parser.add_argument("--rules-events", type=int, default=500, help="events (rules)")
    parser.add_argument("--latency-events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="events/s (handler latency)")
    parser.add_argument("--rules-rate", type=float, default=10.0, help="events/s (rules latency)")
    parser.add_argument("--quick", action="store_true", help="a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.rules_events, args.latency_events = 500, 100, 100
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as folder:
        # Worker processes are spawned: they find the audit key through the environment.
        generate_key_file(Path(folder) / "audit-key.json")
        os.environ[KEY_FILE_ENV] = str(Path(folder) / "audit-key.json")
        for backend in backends:
            results += run(backend, args, Path(folder))
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
