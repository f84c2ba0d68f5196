"""ERP customer pulls on PostgreSQL: a pull's rows written into accounts by their ERP code.

Every ERP connector (Kingdee, Yonyou, SAP) writes a pull the same way
(``plugins/connectors/sync/writing.upsert_all``, what ``qiao worker`` runs for a
sync): one transaction, each record checked, audited and evented as any write
is. Here it writes N customers three times, as three pulls would bring them:

1. the first pull: every customer is new;
2. every customer renamed in the ERP;
3. nothing changed since (a full pull again).

Compared with a lean baseline in a process of its own: psycopg 3 ``executemany``
of ``INSERT ... ON CONFLICT (erp_code) DO UPDATE ... WHERE name changed`` into a
bare table of the same columns, in one transaction per pull. Before printing,
it checks that the database holds N accounts with the last pull's names and the
audit log one entry per record created or renamed, and that the baseline's
table holds N rows with those names.

    .venv/bin/python bench/erp_sync.py [--quick] [--rows 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
from serving import DEFAULT_POSTGRES_ADMIN_URL, database, deployment
from sqlalchemy import func, select

from qiao.core.collector import tune_for_service
from qiao.core.runtime import Runtime
from qiao.core.storage import system
from qiao.plugins.connectors.sync.writing import upsert_all

PULLS = ("new", "renamed", "unchanged")


def customers(rows: int, pull: str) -> list[dict[str, Any]]:
    """The rows an ERP pull brings: code and name, renamed from the second pull on."""
    suffix = "" if pull == "new" else "（更名）"
    return [
        {"erp_code": f"C{i:06d}", "name": f"宁波第{i}机械有限公司{suffix}"} for i in range(rows)
    ]


def qiao_pulls(admin_url: str, rows: int) -> list[float]:
    """Seconds of each pull written by the connectors' writer, after checking what it wrote."""
    seconds = []
    with deployment(admin_url, ("crm", "connectors")) as runtime:
        runtime.start()
        for pull in PULLS:
            values = customers(rows, pull)
            t0 = time.perf_counter()
            written = upsert_all(runtime, "bench", "kingdee", "account", "erp_code", values)
            seconds.append(time.perf_counter() - t0)
            assert written == rows, f"{pull}: {written} of {rows} rows written"
        check_qiao(runtime, rows)
    return seconds


def check_qiao(runtime: Runtime, rows: int) -> None:
    accounts = runtime.current().table("account")
    entries = system.audit_entry
    with runtime.db.read() as conn:
        names = dict(conn.execute(select(accounts.c.erp_code, accounts.c.name)).all())
        audited = conn.execute(
            select(func.count()).where(entries.c.entity == "account")
        ).scalar_one()
    expected = {r["erp_code"]: r["name"] for r in customers(rows, PULLS[-1])}
    assert names == expected, "the accounts do not hold the last pull's names"
    assert audited == 2 * rows, f"{audited} audit entries for {2 * rows} writes"


LEAN_TABLE = """
CREATE TABLE lean_account (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    erp_code text NOT NULL UNIQUE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    version integer NOT NULL DEFAULT 1
)
"""
LEAN_UPSERT = """
INSERT INTO lean_account (erp_code, name) VALUES (%s, %s)
ON CONFLICT (erp_code) DO UPDATE
SET name = excluded.name, updated_at = now(), version = lean_account.version + 1
WHERE lean_account.name IS DISTINCT FROM excluded.name
"""


def lean_pulls(url: str, rows: int) -> list[float]:
    """Seconds of each pull as one executemany upsert; run in a process of its own."""
    seconds = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LEAN_TABLE)
        for pull in PULLS:
            values = [(r["erp_code"], r["name"]) for r in customers(rows, pull)]
            t0 = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(LEAN_UPSERT, values)
            seconds.append(time.perf_counter() - t0)
        found = dict(conn.execute("SELECT erp_code, name FROM lean_account").fetchall())
    expected = {r["erp_code"]: r["name"] for r in customers(rows, PULLS[-1])}
    assert found == expected, "the lean table does not hold the last pull's names"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 rows, once")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("QIAO_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL),
    )
    args = parser.parse_args()
    tune_for_service()  # as 'qiao worker', which runs the pulls, sets it
    if args.quick:
        args.rows, args.repeat = 1000, 1
    print(f"load average {os.getloadavg()[0]:.1f}; PostgreSQL; {args.rows} customers a pull")
    qiao: list[list[float]] = []
    lean: list[list[float]] = []
    spawn = multiprocessing.get_context("spawn")
    for _ in range(args.repeat):  # alternating, so a slow moment of the machine hits both
        qiao.append(qiao_pulls(args.postgres_url, args.rows))
        with (
            database("postgresql", Path(), args.postgres_url) as url,
            ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool,
        ):
            lean.append(pool.submit(lean_pulls, url, args.rows).result())
    for n, pull in enumerate(PULLS):
        ours = statistics.median(run[n] for run in qiao)
        bare = statistics.median(run[n] for run in lean)
        print(
            f"{pull:>9} pull: qiao {ours:.2f} s ({args.rows / ours:.0f} rows/s), "
            f"lean {bare:.3f} s ({args.rows / bare:.0f} rows/s); qiao / lean {ours / bare:.1f}x"
        )


if __name__ == "__main__":
    main()
