"""The test databases of a run are all dropped at its end, however far the dropper got."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from qiao.core.testing.databases import PostgresDatabases

pytestmark = pytest.mark.usefixtures("_qiao_postgresql")  # skipped, or failed in CI, without it


def _databases_named(admin_url: str, prefix: str) -> list[str]:
    engine = create_engine(admin_url)
    try:
        with engine.connect() as conn:
            query = text("SELECT datname FROM pg_database WHERE datname LIKE :p ORDER BY datname")
            return list(conn.execute(query, {"p": f"{prefix}%"}).scalars())
    finally:
        engine.dispose()


def test_cleanup_drops_templates_copies_and_empty_databases_released_or_not(
    _qiao_postgresql: PostgresDatabases,
) -> None:
    databases = PostgresDatabases(_qiao_postgresql.admin_url)
    seeded: list[str] = []

    def seed(url: str) -> str:
        seeded.append(url)
        return "seed"

    copies = [databases.fresh("one", seed) for _ in range(3)]
    empty = databases.empty()
    assert len(seeded) == 1, "one template for the key"
    assert {seed for _, seed in copies} == {"seed"}
    for url, _ in copies[:2]:
        databases.release(url)
    databases.release(empty)
    # The template, three copies and the empty one; one copy never released.
    assert len(_databases_named(databases.admin_url, databases.prefix)) >= 1 + 1
    databases.cleanup()
    assert _databases_named(databases.admin_url, databases.prefix) == []
