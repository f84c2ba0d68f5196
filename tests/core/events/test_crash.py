"""kill -9 a worker process in the middle of a batch: nothing is lost, nothing done twice.

A real ``qiao worker`` process delivers webhooks to a receiver on 127.0.0.1
that, as Standard Webhooks receivers should, applies each webhook-id once.
The worker is killed with SIGKILL while it holds a claimed batch; a new one
starts, and once the dead worker's lease has passed it delivers the rest.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import select

from qiao.core.events import queue, signing, webhooks
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage.system import delivery, delivery_attempt, event

from .receiver import receiver

pytestmark = [pytest.mark.storage, pytest.mark.slow]
QIAO = [sys.executable, "-c", "from qiao.cli.main import main; main()"]
ACCOUNTS = 40
BATCH = 10
LEASE = 3


def _worker(config: Path) -> subprocess.Popen[bytes]:
    options = ["--batch-size", str(BATCH), "--lease", str(LEASE), "--poll-interval", "0.05"]
    return subprocess.Popen(
        [*QIAO, "--config", str(config), "worker", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_killed_worker_loses_nothing_and_doubles_nothing(
    qiao_runtime: Runtime, qiao_database_url: str, tmp_path: Path
) -> None:
    runtime = qiao_runtime
    config = tmp_path / "qiao.toml"
    settings = {
        "database": {"url": qiao_database_url},
        "plugins": {"enabled": ["crm"]},
        "metadata": {"check_interval": 0},
    }
    config.write_text(tomli_w.dumps(settings), encoding="utf-8")
    with receiver() as hook:
        hook.delay = 0.05
        with runtime.db.write() as conn:
            webhooks.add_endpoint(
                conn, hook.url, "account", signing.new_secret(), runtime.records.clock()
            )
        with runtime.records.transaction(Actor.system(), Source.IMPORT) as ctx:
            for i in range(ACCOUNTS):
                runtime.records.create(ctx, "account", {"name": f"经销商 {i:02d}"})

        first = _worker(config)
        try:
            _wait(lambda: len(hook.requests) >= BATCH + BATCH // 2, 60, "the first deliveries")
        finally:
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=10)
        assert first.returncode == -signal.SIGKILL
        received_at_kill = set(hook.ids())
        rows = _deliveries(runtime)
        done_at_kill = {r["id"] for r in rows if r["status"] == queue.DONE}
        assert done_at_kill <= received_at_kill, "marked delivered what never arrived"
        assert len(received_at_kill) < ACCOUNTS, "killed too late to be mid-run"
        held = {r["id"] for r in rows if r["locked_by"] is not None}
        assert held, "the killed worker held a claimed batch"

        second = _worker(config)
        try:
            _wait(
                lambda: all(r["status"] == queue.DONE for r in _deliveries(runtime)),
                60,
                "every delivery to be done",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            out, err = second.communicate(timeout=30)
        assert second.returncode == 0, err.decode()
        assert b"stopped" in out

        rows = _deliveries(runtime)
        with runtime.db.read() as conn:
            accounts = conn.execute(select(event.c.id).where(event.c.entity == "account"))
            account_events = {r[0] for r in accounts}
        assert len(account_events) == ACCOUNTS
        assert {r["event_id"] for r in rows} == account_events, "an event was lost"
        assert len(rows) == ACCOUNTS, "one delivery per event and endpoint"
        ids = hook.ids()
        assert set(ids) == {r["id"] for r in rows}, "every delivery arrived"
        repeated = {i for i in ids if ids.count(i) > 1}
        assert repeated <= held, "only what the killed worker held was sent again"
        assert len(repeated) <= BATCH
        for delivery_id in repeated:
            outcomes = [a["outcome"] for a in _attempts(runtime, delivery_id)]
            assert outcomes == ["interrupted", "ok"]


def _deliveries(runtime: Runtime) -> list[dict[str, object]]:
    with runtime.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(delivery))]


def _attempts(runtime: Runtime, delivery_id: str) -> list[dict[str, object]]:
    a = delivery_attempt
    with runtime.db.read() as conn:
        rows = conn.execute(select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.number))
        return [dict(r._mapping) for r in rows]
