"""Databases for the formula tests: one SQLite file and one PostgreSQL schema per run.

The formula package works on plain SQLAlchemy tables, so these tests need no
migrated Qiao schema; each test writes its rows inside a transaction it rolls
back. PostgreSQL follows the suite's rule: skipped when unreachable, except
under CI=true, where that fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from qiao.core.storage.database import normalise_url
from qiao.core.testing.databases import postgres_admin_url, postgres_unreachable_reason


@pytest.fixture(scope="session")
def _formula_postgres() -> Iterator[Engine]:
    url = postgres_admin_url()
    reason = postgres_unreachable_reason(url)
    if reason is not None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"PostgreSQL at {url} is unreachable ({reason}); CI=true requires it")
        pytest.skip(f"PostgreSQL at {url} is unreachable ({reason})")
    # A schema of its own rather than a database: dropping a database forces a checkpoint,
    # which takes a minute on a busy server.
    schema = f"qiao_test_formula_{uuid.uuid4().hex[:10]}"
    engine = create_engine(normalise_url(url), connect_args={"options": f"-csearch_path={schema}"})
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield engine
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """An empty database on each backend, shared by the session's formula tests."""
    if request.param == "postgresql":
        yield request.getfixturevalue("_formula_postgres")
        return
    path: Path = tmp_path_factory.mktemp("formula") / "formula.db"
    sqlite = create_engine(f"sqlite:///{path}")
    yield sqlite
    sqlite.dispose()
