"""Connections: no ping round trip, recovery from dead connections, autocommit reads, pool size."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from qiao.core.config import Config
from qiao.core.errors import ConfigurationError
from qiao.core.events import livewake
from qiao.core.runtime import Runtime
from qiao.core.storage.database import Database, PoolSettings, after_commit, planned_per_run
from qiao.core.testing.databases import terminate_sessions

pytestmark = pytest.mark.storage


@pytest.fixture
def db(qiao_database_url: str) -> Iterator[Database]:
    database = Database(qiao_database_url, PoolSettings(size=3, overflow=2))
    yield database
    database.dispose()


def _frontend_messages(db: Database, work: Any) -> list[str]:
    """What the client sends to PostgreSQL while ``work`` runs (libpq's protocol trace).

    ``db`` must have a pool of one connection, so the traced one is the one used.
    """
    with db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
    assert raw is not None
    with tempfile.TemporaryFile() as trace:
        raw.pgconn.trace(trace.fileno())
        raw.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            work()
        finally:
            raw.pgconn.untrace()
        trace.seek(0)
        lines = trace.read().decode().splitlines()
    return [" ".join(line.split("\t")[2:4]).strip() for line in lines if line.startswith("F")]


def _backend_pid(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def test_pool_follows_its_settings(db: Database) -> None:
    assert db.engine.pool.size() == 3  # type: ignore[attr-defined]
    assert db.engine.pool._max_overflow == 2  # type: ignore[attr-defined]


def test_pool_settings_refuse_nonsense() -> None:
    with pytest.raises(ConfigurationError, match="pool_size"):
        PoolSettings(size=0)
    with pytest.raises(ConfigurationError, match="max_overflow"):
        PoolSettings(overflow=-1)


def test_run_read_is_one_round_trip_on_postgresql(
    qiao_database_url: str, qiao_backend: str
) -> None:
    if qiao_backend != "postgresql":
        pytest.skip("the wire protocol is PostgreSQL's")
    db = Database(qiao_database_url, PoolSettings(size=1, overflow=0))
    try:
        db.run_read(lambda conn: conn.execute(text("SELECT 1")).scalar_one())  # connected
        result: list[int] = []
        sent = _frontend_messages(
            db,
            lambda: result.append(
                db.run_read(lambda conn: conn.execute(text("SELECT 41 + 1")).scalar_one())
            ),
        )
        with_snapshot = _frontend_messages(
            db,
            lambda: db.run_read(lambda conn: conn.execute(text("SELECT 1")).all(), snapshot=True),
        )
    finally:
        db.dispose()
    assert result == [42]
    # No ping, no BEGIN, no ROLLBACK: the statement alone, in one round trip.
    assert all("BEGIN" not in m and "ROLLBACK" not in m for m in sent), sent
    assert sum(m.startswith(("Query", "Sync")) for m in sent) == 1, sent
    assert any("BEGIN" in m for m in with_snapshot), with_snapshot


def test_the_metadata_check_keeps_prepared_statements_and_costs_one_round_trip(
    qiao_config: Config, qiao_backend: str
) -> None:
    """Each process re-reads the metadata version every second or so, between requests.

    In a transaction its ROLLBACK would also make psycopg send DEALLOCATE ALL,
    so the next request would prepare its statement again.
    """
    if qiao_backend != "postgresql":
        pytest.skip("the wire protocol is PostgreSQL's")
    settings = dataclasses.replace(
        qiao_config, pool=PoolSettings(size=1, overflow=0), metadata_check_interval=0.0
    )
    runtime = Runtime(settings)
    try:
        catalog = runtime.current()
        sent = _frontend_messages(runtime.db, runtime.current)
        assert runtime.current() is catalog  # unchanged, so kept
    finally:
        runtime.close()
    assert not [m for m in sent if any(w in m for w in ("BEGIN", "ROLLBACK", "DEALLOCATE"))], sent
    assert sum(m.startswith(("Query", "Sync")) for m in sent) == 1, sent


def test_autocommit_reads_leave_pooled_connections_transactional(
    db: Database, qiao_backend: str
) -> None:
    if qiao_backend != "postgresql":
        pytest.skip("autocommit reads are a PostgreSQL feature")
    for _ in range(5):
        db.run_read(lambda conn: conn.execute(text("SELECT 1")).scalar_one())
    with db.engine.connect() as conn:
        assert conn.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute(text("CREATE TABLE rolled_back (x int)"))
        raise RuntimeError("undo")
    with db.read() as conn:
        assert conn.execute(text("SELECT to_regclass('rolled_back')")).scalar() is None


def test_a_read_is_retried_once_when_its_connection_dies(
    db: Database, qiao_backend: str, qiao_database_url: str
) -> None:
    if qiao_backend != "postgresql":
        pytest.skip("an SQLite connection cannot be killed from outside")
    calls: list[int] = []

    def work(conn: Connection) -> int:
        pid = _backend_pid(conn)
        calls.append(pid)
        if len(calls) == 1:
            # Ended after the checkout, so only the retry can save the read.
            terminate_sessions(qiao_database_url, {pid})
        return int(conn.execute(text("SELECT 7")).scalar_one())

    assert db.run_read(work) == 7
    assert len(calls) == 2 and calls[0] != calls[1]


def test_a_read_fails_if_the_retry_dies_too(
    db: Database, qiao_backend: str, qiao_database_url: str
) -> None:
    if qiao_backend != "postgresql":
        pytest.skip("an SQLite connection cannot be killed from outside")

    def work(conn: Connection) -> int:
        terminate_sessions(qiao_database_url, {_backend_pid(conn)})
        return int(conn.execute(text("SELECT 7")).scalar_one())

    with pytest.raises(Exception, match=r"terminat|closed|lost"):
        db.run_read(work)


def test_connections_closed_by_the_server_are_replaced_at_checkout(
    db: Database, qiao_backend: str, qiao_database_url: str
) -> None:
    if qiao_backend != "postgresql":
        pytest.skip("an SQLite connection cannot be killed from outside")
    held = [db.engine.connect() for _ in range(3)]
    pids = {_backend_pid(c) for c in held}
    for c in held:
        c.close()  # back to the pool, idle
    terminate_sessions(qiao_database_url, pids)
    # A write is not retried; it succeeds because the checkout saw the closed socket.
    for _ in range(3):
        with db.write() as conn:
            assert _backend_pid(conn) not in pids


def test_bookkeeping_writes_skip_the_wait_for_the_disk_only_in_their_transaction(
    qiao_database_url: str, qiao_backend: str
) -> None:
    if qiao_backend != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    db = Database(qiao_database_url, PoolSettings(size=1, overflow=0))
    show = "SHOW synchronous_commit"
    try:
        with db.write() as conn:
            default = conn.exec_driver_sql(show).scalar()
        assert default != "off"
        with db.write(durable=False) as conn:
            assert conn.exec_driver_sql(show).scalar() == "off"
        with db.write() as conn:
            assert conn.exec_driver_sql(show).scalar() == default
    finally:
        db.dispose()


def _plans_of(conn: Connection, statement: str, runs: list[dict[str, Any]]) -> Any:
    """Each run's answer, and the statement's plan counts if PostgreSQL prepared it."""
    answers = [conn.exec_driver_sql(statement, params).scalar() for params in runs]
    if conn.dialect.name != "postgresql":
        return answers, None
    return answers, conn.exec_driver_sql(
        "SELECT generic_plans + custom_plans FROM pg_prepared_statements"
        " WHERE statement LIKE '%%FROM qiao_event WHERE entity%%'"
    ).scalar()


def test_a_statement_run_many_times_under_planned_per_run_is_planned_for_its_values(
    db: Database, qiao_backend: str
) -> None:
    """psycopg prepares a statement after five runs, and PostgreSQL may then plan it once
    for every value, which is wrong for skewed data (one large account). Under
    planned_per_run it is never prepared, so each run is planned for its values; other
    statements stay prepared. The answers are the same either way, on both databases."""
    statement = "SELECT count(*) FROM qiao_event WHERE entity = %(entity)s"
    if qiao_backend != "postgresql":
        statement = statement.replace("%(entity)s", ":entity")
    runs = [{"entity": entity} for entity in ["account", "lead"] * 6]
    with db.engine.connect() as conn:
        with planned_per_run(conn):
            unprepared, unprepared_plans = _plans_of(conn, statement, runs)
        prepared, prepared_plans = _plans_of(conn, statement, runs)
    assert unprepared == prepared and len(unprepared) == len(runs)
    if qiao_backend == "postgresql":
        assert unprepared_plans is None  # never prepared while planned per run
        assert prepared_plans  # prepared after five runs, its plans counted


def test_the_database_url_may_add_session_options(
    qiao_database_url: str, qiao_backend: str
) -> None:
    """A deployment can set PostgreSQL settings through the URL's ``options``; the UTC
    time zone every session needs is kept beside them."""
    if qiao_backend != "postgresql":
        pytest.skip("session options are PostgreSQL's")
    url = qiao_database_url + ("&" if "?" in qiao_database_url else "?")
    db = Database(url + "options=-c%20plan_cache_mode%3Dforce_custom_plan", PoolSettings())
    plain = Database(qiao_database_url, PoolSettings())
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "UTC"
        with plain.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "UTC"
    finally:
        db.dispose()
        plain.dispose()


def test_an_action_after_commit_goes_with_the_savepoint_that_registered_it(db: Database) -> None:
    """An effect outside the database never describes a write a savepoint undid."""
    ran: list[str] = []
    with db.write() as conn:
        after_commit(conn, lambda: ran.append("outer"))
        with conn.begin_nested():
            after_commit(conn, lambda: ran.append("released"))
        undone = conn.begin_nested()
        after_commit(conn, lambda: ran.append("rolled back"))
        with conn.begin_nested():
            after_commit(conn, lambda: ran.append("inside the rolled-back one"))
        undone.rollback()
        assert ran == []
    assert ran == ["outer", "released"]


def test_a_write_its_savepoint_undid_wakes_no_subscriber_and_stops_no_later_one(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    woken: list[object] = []
    monkeypatch.setattr(livewake, "_wake_local", woken.append)
    with db.write() as conn:
        undone = conn.begin_nested()
        livewake.announce(conn)  # a failed automation rule's write
        undone.rollback()
    assert woken == []
    with db.write() as conn:
        undone = conn.begin_nested()
        livewake.announce(conn)
        undone.rollback()
        livewake.announce(conn)  # the write that commits
    assert woken == [db.engine]


def test_a_read_transaction_keeps_the_prepared_statements_and_cannot_write(
    qiao_database_url: str, qiao_backend: str
) -> None:
    """A read of several statements (a records list with its count) ends without a ROLLBACK:
    psycopg answers one with DEALLOCATE ALL, so every read would prepare its statements anew.
    It is a read-only transaction, ended by COMMIT, so nothing it tried to write is kept."""
    if qiao_backend != "postgresql":
        pytest.skip("the wire protocol is PostgreSQL's")
    db = Database(qiao_database_url, PoolSettings(size=1, overflow=0))
    query = text("SELECT count(*) FROM qiao_metadata_version WHERE version >= :v")

    def reads() -> None:
        for _ in range(8):
            with db.read() as conn:
                conn.execute(query, {"v": 0}).scalar_one()
                conn.execute(query, {"v": 1}).scalar_one()

    try:
        reads()  # psycopg prepares a statement from its fifth run on
        sent = _frontend_messages(db, reads)
        with pytest.raises(DBAPIError, match="read-only transaction"), db.read() as conn:
            conn.execute(text("UPDATE qiao_metadata_version SET version = version + 1"))
    finally:
        db.dispose()
    assert not [m for m in sent if "DEALLOCATE" in m or "ROLLBACK" in m], sent
    assert not [m for m in sent if m.startswith("Parse")], sent  # prepared once, kept
