"""Fresh databases for tests, made cheaply by copying a migrated template.

Migrating every entity table for every test would dominate a test run, so each
distinct setup (backend plus enabled plugins) is migrated once into a template:
a file on SQLite, a ``CREATE DATABASE ... TEMPLATE`` source on PostgreSQL. Each
test then gets its own copy, so tests never see each other's rows or DDL. All
PostgreSQL databases of a run carry the run's prefix. ``DROP DATABASE`` waits for
a checkpoint (seconds on a busy server), so a database is dropped by a thread of
its own once its test has released it, while the next tests run; whatever that
thread has not reached is dropped at the end of the run, several at a time.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from qiao.core.storage.database import normalise_url

#: The PostgreSQL server tests use; override with QIAO_TEST_POSTGRES_URL.
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

#: Prepares a template database (migrate, seed) and returns whatever tests need from it.
Setup = Callable[[str], object]


def postgres_admin_url() -> str:
    return os.environ.get("QIAO_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def postgres_unreachable_reason(url: str) -> str | None:
    """None when the server answers, else why it does not (one line)."""
    engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return str(exc).strip().splitlines()[0]
    finally:
        engine.dispose()
    return None


def terminate_sessions(url: str, pids: set[int] | None = None) -> int:
    """End sessions on ``url``'s PostgreSQL database as a failover or an administrator would.

    Ends ``pids``, or every session but this one's, and waits until they are
    gone; returns how many were ended.
    """
    engine = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:

            def alive() -> set[int]:
                rows = conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
                return {int(pid) for (pid,) in rows}

            ended = alive() if pids is None else pids
            for pid in ended:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while alive() & ended:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sessions {sorted(alive() & ended)} did not end")
                time.sleep(0.02)
    finally:
        engine.dispose()
    return len(ended)


class SqliteDatabases:
    """Template files and their per-test copies in a temporary folder."""

    backend = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._templates: dict[str, tuple[Path, object]] = {}

    def fresh(self, key: str, setup: Setup) -> tuple[str, object]:
        if key not in self._templates:
            path = self.folder / f"template-{len(self._templates)}.db"
            seeded = setup(f"sqlite:///{path}")
            self._templates[key] = (path, seeded)
        path, seeded = self._templates[key]
        copy = self.folder / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(path, copy)
        return f"sqlite:///{copy}", seeded

    def empty(self) -> str:
        """The URL of a database nothing was written to yet (SQLite makes the file)."""
        return f"sqlite:///{self.folder / f'empty-{uuid.uuid4().hex}.db'}"

    def release(self, url: str) -> None:
        """The test of ``url`` is over; its file stays for pytest to prune."""

    def cleanup(self) -> None:
        """Files live in pytest's temporary folder, which pytest prunes itself."""


class PostgresDatabases:
    """Template databases and per-test clones on one PostgreSQL server."""

    backend = "postgresql"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = normalise_url(admin_url)
        self.prefix = f"qiao_test_{uuid.uuid4().hex[:10]}"
        self._engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        self._templates: dict[str, tuple[str, object]] = {}
        self._created: list[str] = []
        self._dropped: set[str] = set()
        self._released: queue.Queue[str | None] = queue.Queue()
        self._dropper = threading.Thread(
            target=self._drop_released, name="qiao-test-dropper", daemon=True
        )
        self._dropper.start()

    def _url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str | None = None) -> None:
        clause = f' TEMPLATE "{template}"' if template else ""
        with self._engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self._created.append(name)

    def fresh(self, key: str, setup: Setup) -> tuple[str, object]:
        if key not in self._templates:
            # A uuid, not a count: a template whose setup failed keeps its name taken.
            name = f"{self.prefix}_t{uuid.uuid4().hex[:12]}"
            self._create(name)
            seeded = setup(self._url(name))
            self._templates[key] = (name, seeded)
        template, seeded = self._templates[key]
        name = f"{self.prefix}_{uuid.uuid4().hex[:12]}"
        self._create(name, template)
        return self._url(name), seeded

    def empty(self) -> str:
        """The URL of a new, empty database of this run."""
        name = f"{self.prefix}_e{uuid.uuid4().hex[:12]}"
        self._create(name)
        return self._url(name)

    def release(self, url: str) -> None:
        """The test of ``url`` is over: drop its database in the background."""
        name = make_url(url).database
        if name in self._created:
            self._released.put(name)

    def _drop_released(self) -> None:
        """Drop released databases one by one until told to stop (None)."""
        while (name := self._released.get()) is not None:
            try:
                self._drop(name)
            except Exception:  # cleanup drops it again, and reports what fails
                continue

    def _drop(self, name: str) -> None:
        with self._engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._dropped.add(name)

    def cleanup(self) -> None:
        """Drop what is left, several at a time: concurrent drops share their checkpoints.

        The thread dropping released databases falls behind while tests run
        (each drop waits for a checkpoint); what it has not reached by the end
        is dropped here in parallel instead of one by one.
        """
        with contextlib.suppress(queue.Empty):
            while True:  # what the thread has not taken yet is dropped below
                self._released.get_nowait()
        self._released.put(None)
        self._dropper.join()
        left = [name for name in self._created if name not in self._dropped]
        try:
            with ThreadPoolExecutor(_PARALLEL_DROPS) as pool:
                for dropped in [pool.submit(self._drop, name) for name in left]:
                    dropped.result()
        finally:
            self._engine.dispose()


#: Databases dropped at once at the end of a run.
_PARALLEL_DROPS = 6
