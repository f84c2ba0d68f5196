"""Reads awaited in the event loop: the same session as the engine's, and dead connections
replaced or sent again, as :meth:`Database.run_read` does (core/storage/loop_reads.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from psycopg_pool import PoolTimeout

from qiao.core.storage import loop_reads
from qiao.core.storage.database import Database, PoolSettings
from qiao.core.storage.loop_reads import LoopReads
from qiao.core.testing.databases import terminate_sessions

pytestmark = pytest.mark.storage
T = TypeVar("T")
PID = "SELECT pg_backend_pid()"


@pytest.fixture(params=["postgresql"])
def qiao_backend(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only: SQLite's reads stay in threads (the first test shows it)."""
    backend: str = request.param
    return backend


@pytest.fixture
def postgresql_url(qiao_database_url: str) -> str:
    return qiao_database_url


def _with_reads(db: Database, work: Callable[[LoopReads], Awaitable[T]]) -> T:
    """``work`` on an opened pool of ``db`` in a loop of its own, the pool closed after."""

    async def run() -> T:
        reads = LoopReads.of(db)
        assert reads is not None
        await reads.open()
        try:
            return await work(reads)
        finally:
            await reads.close()

    return asyncio.run(run())


@pytest.fixture
def db(postgresql_url: str) -> Iterator[Database]:
    database = Database(postgresql_url, PoolSettings(size=2, overflow=0, reads=1))
    yield database
    database.dispose()


def test_sqlite_and_a_read_pool_of_zero_await_nothing(postgresql_url: str) -> None:
    for db in (Database("sqlite://"), Database(postgresql_url, PoolSettings(reads=0))):
        try:
            assert LoopReads.of(db) is None
        finally:
            db.dispose()


def test_the_read_pool_size_is_a_setting_refused_below_zero() -> None:
    assert PoolSettings().reads == 10
    with pytest.raises(Exception, match="read_pool_size"):
        PoolSettings(reads=-1)


def test_a_loop_read_runs_in_the_engine_s_session(postgresql_url: str) -> None:
    """The URL's session options, UTC, and the engine's type adapters: the same values."""
    url = postgresql_url + ("&" if "?" in postgresql_url else "?")
    db = Database(url + "options=-c%20plan_cache_mode%3Dforce_custom_plan", PoolSettings(reads=1))
    statement = (
        "SELECT current_setting('TimeZone'), current_setting('plan_cache_mode'),"
        " TIMESTAMPTZ '2026-01-02 03:04:05+08', %(amount)s::numeric(12, 2),"
        " json_build_object('名称', %(name)s::text)::text"
    )
    params = {"amount": "12.50", "name": "苏州"}
    try:
        with db.engine.connect() as conn:
            expected = tuple(conn.exec_driver_sql(statement, params).one())
        got = _with_reads(db, lambda reads: reads.first_row(statement, params))
    finally:
        db.dispose()
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]
    assert got[:2] == ("UTC", "force_custom_plan")


def test_a_connection_the_server_ended_is_replaced_before_use(
    db: Database, postgresql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Seen from its socket when handed out, so the read is not sent on it at all."""

    async def work(reads: LoopReads) -> tuple[int, int]:
        before = await reads.first_row(PID, {})
        assert before is not None
        terminate_sessions(postgresql_url, {before[0]})
        after = await reads.first_row(PID, {})
        assert after is not None
        return before[0], after[0]

    before, after = _with_reads(db, work)
    assert before != after
    assert "retrying" not in caplog.text


def test_a_read_meeting_a_dead_connection_is_sent_once_more(
    db: Database, postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection dropped without a sign (the socket looks idle) fails on its statement;
    the read goes again on a new connection instead of failing the request."""
    monkeypatch.setattr(loop_reads, "server_closed", lambda _conn: False)

    async def work(reads: LoopReads) -> tuple[int, tuple[Any, ...] | None]:
        before = await reads.first_row(PID, {})
        assert before is not None
        terminate_sessions(postgresql_url, {before[0]})
        return before[0], await reads.first_row(PID + ", 7", {})

    before, after = _with_reads(db, work)
    assert after is not None and after[1] == 7 and after[0] != before


def test_unprepared_reads_are_never_prepared_and_others_are(db: Database) -> None:
    """``prepare=False`` is planned_per_run's rule: planned for its values on every run."""
    unprepared = "SELECT count(*) FROM qiao_event WHERE entity = %(entity)s"
    prepared = "SELECT count(*) FROM qiao_event WHERE entity <> %(entity)s"
    count = "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %(like)s"

    async def work(reads: LoopReads) -> tuple[Any, ...]:
        for _ in range(8):
            await reads.first_row(unprepared, {"entity": "lead"}, prepare=False)
            await reads.first_row(prepared, {"entity": "lead"})
        # One connection in the pool: these look at the one that ran both statements.
        return (
            await reads.first_row(count, {"like": "%entity = %"}, prepare=False),
            await reads.first_row(count, {"like": "%entity <> %"}, prepare=False),
        )

    never, once = _with_reads(db, work)
    assert never == (0,) and once == (1,)


def test_a_pool_is_ready_from_its_opening_to_its_closing(db: Database) -> None:
    async def run() -> list[bool]:
        reads = LoopReads.of(db)
        assert reads is not None
        seen = [reads.ready]
        await reads.open()
        seen.append(reads.ready)
        await reads.close()
        return [*seen, reads.ready]

    assert asyncio.run(run()) == [False, True, False]


def test_a_read_from_an_unreachable_database_fails_after_the_wait() -> None:
    """No connection can be made: the read fails after its wait, not the pool's 30 s."""
    db = Database("postgresql://postgres@127.0.0.1:1/nowhere", PoolSettings(reads=1))

    async def run() -> float:
        reads = LoopReads.of(db, wait=0.5)
        assert reads is not None
        await reads.open()
        began = time.monotonic()
        try:
            with pytest.raises(PoolTimeout):
                await reads.first_row("SELECT 1", {})
            return time.monotonic() - began
        finally:
            await reads.close()

    try:
        assert 0.4 < asyncio.run(run()) < 5
    finally:
        db.dispose()
