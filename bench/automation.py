"""Events per second through the outbox and the rules engine, and the delay from commit to action.

Ten active automation rules (``automation_rule`` records, each with a trigger,
a condition formula and a notify action) watch new accounts, so every event
is one delivery to the engine, which runs the ten rules: ten conditions
evaluated on the stored record and, for each, one transaction writing a
notification and the run record that makes the delivery idempotent. Two
measurements per backend, on a fresh database each:

- **Throughput.** ``--events`` accounts are written first (100 per
  transaction); then workers start and the clock runs until every rule has
  run on every account. Events per second = events / elapsed; each event is
  ten actions.
- **Latency.** Workers run (``qiao worker``'s default settings: batch 20,
  polling every 0.2 s when idle) while accounts are written one per
  transaction at ``--rate`` per second. The delay of an action is the time its
  rule's transaction wrote its run record minus the time the account's
  transaction committed; the median and the 99th percentile are over every
  action.

Workers run as threads of this process, like the worker of ``qiao serve``.
``--quick`` is a smoke test. PostgreSQL comes from ``--postgres`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); a database is created and
dropped for each run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from qiao.core.config import Config
from qiao.core.events import queue
from qiao.core.events.worker import Worker, WorkerSettings
from qiao.core.hookspecs import hookimpl
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage.database import normalise_url
from qiao.core.storage.system import delivery

RULES = 10
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def rule(i: int) -> dict[str, Any]:
    """Rule ``i``: on a new account with a name, tell the bench user."""
    return {
        "name": f"bench_rule_{i}",
        "entity": "account",
        "trigger": {"created": {}},
        "condition": f'AND(NOT(ISBLANK(name)), BLANKVALUE(industry, "") <> "rule {i} off")',
        "actions": [{"notify": {"users": ["bench"], "title": f"新客户 {{name}}（规则 {i}）"}}],
    }


class Probe:
    """Notes when each rule run is written (inside its transaction, just before commit)."""

    __name__ = "bench_probe"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acted: list[tuple[str, float]] = []

    @hookimpl
    def qiao_after_record_write(
        self, entity: EntityDef, operation: str, record: dict[str, Any]
    ) -> None:
        if entity.name == "automation_run" and operation == "create":
            at = time.perf_counter()
            with self.lock:
                self.acted.append((record["record_id"], at))


@dataclass
class Result:
    backend: str
    events: int
    workers: int
    seconds: float
    latency_ms: list[float]

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latency_ms)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


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


def fresh_runtime(url: str, probe: Probe) -> Runtime:
    """A migrated, started runtime with the bench user and the ten rules."""
    runtime = Runtime(
        Config(database_url=url, plugins=("crm",), metadata_check_interval=5.0),
        extra_plugins=[probe],
    )
    runtime.migrate()
    runtime.start()
    records = runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.create(ctx, "user", {"username": "bench", "display_name": "压测"})
        for i in range(RULES):
            records.create(ctx, "automation_rule", rule(i))
    return runtime


def pending(runtime: Runtime) -> int:
    with runtime.db.read() as conn:
        stmt = select(func.count()).select_from(delivery).where(delivery.c.status != queue.DONE)
        return int(conn.execute(stmt).scalar_one())


@contextmanager
def running(runtime: Runtime, settings: WorkerSettings, count: int) -> Iterator[None]:
    stop = threading.Event()
    workers = [Worker(runtime, settings) for _ in range(count)]
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in workers]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join()
        for w in workers:
            w.close()


def throughput(url: str, events: int, workers: int, batch: int) -> float:
    probe = Probe()
    runtime = fresh_runtime(url, probe)
    try:
        records = runtime.records
        for start in range(0, events, 100):
            with records.transaction(Actor.system(), Source.IMPORT) as ctx:
                for i in range(start, min(events, start + 100)):
                    records.create(ctx, "account", {"name": f"经销商 {i}"})
        settings = WorkerSettings(batch_size=batch, poll_interval=0.05)
        began = time.perf_counter()
        with running(runtime, settings, workers):
            while len(probe.acted) < events * RULES:
                time.sleep(0.01)
        seconds = time.perf_counter() - began
        assert pending(runtime) == 0, "deliveries left after every action ran"
        return seconds
    finally:
        runtime.close()


def latency(url: str, events: int, rate: float) -> list[float]:
    probe = Probe()
    runtime = fresh_runtime(url, probe)
    committed: dict[str, float] = {}
    try:
        records = runtime.records
        with running(runtime, WorkerSettings(), 1):
            for i in range(events):
                due = time.perf_counter() + 1 / rate
                with records.transaction(Actor.system(), Source.GRAPHQL) as ctx:
                    account = records.create(ctx, "account", {"name": f"客户 {i}"})
                committed[account["id"]] = time.perf_counter()
                time.sleep(max(0.0, due - time.perf_counter()))
            deadline = time.monotonic() + 60
            while len(probe.acted) < events * RULES and time.monotonic() < deadline:
                time.sleep(0.01)
        return [(at - committed[rid]) * 1000 for rid, at in probe.acted if rid in committed]
    finally:
        runtime.close()


def run(backend: str, args: argparse.Namespace, folder: Path) -> list[Result]:
    results = []
    for workers in args.workers:
        with database(backend, args.postgres, folder) as url:
            seconds = throughput(url, args.events, workers, args.batch)
        delays: list[float] = []
        if workers == 1:
            with database(backend, args.postgres, folder) as url:
                delays = latency(url, args.latency_events, args.rate)
        results.append(Result(backend, args.events, workers, seconds, delays))
    return results


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\n{RULES} automation rules on accounts; "
        f"throughput: {args.events} events, batch {args.batch}; "
        f"latency: {args.latency_events} events at {args.rate}/s, default worker settings\n"
    )
    print(
        f"{'backend':10} {'workers':>7} {'events/s':>9} {'actions/s':>10} "
        f"{'median ms':>10} {'p99 ms':>8}"
    )
    for r in results:
        median = f"{statistics.median(r.latency_ms):10.1f}" if r.latency_ms else f"{'-':>10}"
        p99 = f"{r.percentile(0.99):8.1f}" if r.latency_ms else f"{'-':>8}"
        print(
            f"{r.backend:10} {r.workers:>7} {r.events_per_second:9.0f} "
            f"{r.events_per_second * RULES:10.0f} {median} {p99}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--events", type=int, default=2000, help="events for throughput")
    parser.add_argument("--batch", type=int, default=100, help="batch size for throughput")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="worker threads (several runs)"
    )
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="writes per second (latency)")
    parser.add_argument("--quick", action="store_true", help="a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.latency_events = 200, 40
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            results += run(backend, args, Path(folder))
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
