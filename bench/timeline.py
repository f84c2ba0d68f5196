"""An account's activity timeline, newest first, 50 a page, at 1M and 10M activities.

The page a frontend asks for on an account's screen:
``activities(filter: {accountId: {eq: $account}}, orderBy: [{field: OCCURRED_AT,
direction: DESC}], first: 50, after: $after)``, then the next page by the first
page's ``endCursor``. The aim: p95 under 20 ms, and about the same at 10M as at
1M.

- **Deployment**: a fresh PostgreSQL database configured as ``qiao init`` does
  (key file, audit key), migrated with the ``crm`` plugin; an administrator,
  ``--reps`` sales reps in teams of 10 and their tokens through the records
  service; ``rep000`` holds the CRM's ``sales_rep`` role, which reads only its
  own activities and its team's accounts.
- **Data**: ``--accounts`` accounts, then activities bulk-loaded by PostgreSQL
  itself (``INSERT ... SELECT generate_series``, the table's secondary indexes
  dropped for the load and rebuilt after it exactly as the migration declared
  them, foreign keys not re-checked row by row) in time order as a deployment
  writes them: UUIDv7 ids, ``occurred_at`` spread evenly over the history (a
  steady stream of about 5,500 a day), ``created_at`` a few minutes later. Six
  large accounts take 2 % of the rows each (three owned by ``rep000``, three
  by a team-mate), the rest are spread evenly; an activity belongs to its
  account's owner four times in five, otherwise to any rep. The row count is
  checked, then ``VACUUM ANALYZE``. The larger size adds rows to the smaller
  one (the history goes on), so both sizes are one growing deployment.
- **Measured**: ``qiao serve --no-worker`` over HTTP with a keep-alive client,
  one request at a time, for five cases: the administrator on a large account
  and on ordinary ones, ``rep000`` on its own large and ordinary accounts, and
  ``rep000`` on a team-mate's large account (where its rules leave it a few
  of many rows). Each case alternates its accounts; page 2 is fetched with the
  cursor of page 1. Before any figure, every page must hold as many items as
  SQL counts for that caller (50 on large accounts).
- **Plans**: the compiled SQL of each case (captured in-process) is run with
  ``EXPLAIN (ANALYZE, BUFFERS)`` at each size: a sequential scan of activity
  fails the run, and a sort fed more than a page of rows (the account's rows
  read whole and sorted) is flagged in the summary, beside the index each
  page walks and the most rows any scan examined.

``--quick`` loads 100,000 then 1,000,000 rows. ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from serving import (
    DEFAULT_POSTGRES_ADMIN_URL,
    captured_statement,
    configure,
    database,
    free_port,
    percentile,
    qiao,
    stop,
    wait_answering,
)

PAGE = 50
AIM_P95_MS = 20.0
LARGE = 6  # accounts taking 2 % of the rows each
LARGE_SHARE = 0.02
TEAM = 10
HISTORY_PER_ROW = dt.timedelta(days=1) / 5_500  # a steady stream of activities

QUERY = """query Timeline($account: ID!, $after: String) {
  activities(filter: {accountId: {eq: $account}},
             orderBy: [{field: OCCURRED_AT, direction: DESC}], first: 50, after: $after) {
    edges { node { id kind channel subject occurredAt owner { id displayName } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

# A UUIDv7 for instant ``ts``: 48 bits of milliseconds, version 7, 12 bits from ``h``
# (an md5 in hex), the RFC 4122 variant, 60 more bits from ``h``.
UUID7 = (
    "(lpad(to_hex((extract(epoch FROM {ts}) * 1000)::bigint), 12, '0') || '7' || "
    "substr({h}, 1, 3) || '8' || substr({h}, 4, 15))::uuid"
)

ACTIVITIES = f"""
INSERT INTO activity (id, created_at, updated_at, version, kind, channel, subject,
                      occurred_at, account_id, owner_id)
SELECT {UUID7.format(ts="p.ts + interval '3 minutes'", h="p.h")},
       p.ts + interval '3 minutes', p.ts + interval '3 minutes', 1,
       (ARRAY['CALL','VISIT','MESSAGE','EMAIL','MEETING'])[1 + p.g %% 5],
       (ARRAY['PHONE','WECOM','WECHAT','DINGTALK','EMAIL','IN_PERSON'])[1 + p.g %% 6],
       '跟进 #' || p.g, p.ts, a.id,
       CASE WHEN p.r_owner < 0.8 THEN a.owner_id ELSE reps.ids[1 + p.g %% %(reps)s] END
FROM (
  SELECT g, md5(g::text) AS h, random() AS r_owner,
         %(start)s::timestamptz + g * %(step)s::interval AS ts,
         CASE WHEN random() < %(large_share)s
              THEN floor(random() * %(large)s::int)::int
              ELSE %(large)s + floor(random() * (%(accounts)s - %(large)s))::int END AS n
  FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
) AS p
JOIN bench_account AS a ON a.n = p.n
CROSS JOIN (SELECT array_agg(id ORDER BY username) AS ids FROM "user"
            WHERE username LIKE 'rep%%') AS reps
ORDER BY p.g
"""


@dataclass(frozen=True)
class Case:
    """Who asks, for which accounts."""

    name: str
    caller: str
    accounts: tuple[str, ...]


@dataclass
class Figures:
    rows: int
    page1: dict[str, list[float]]
    page2: dict[str, list[float]]
    plans: dict[str, tuple[str, str]]


# -- Deployment and data ----------------------------------------------------------------------


def seed_people(config: Any, reps: int) -> dict[str, str]:
    """Migrate; the administrator, teams, reps (``rep000`` a sales rep); their tokens."""
    from qiao.core import audit
    from qiao.core.auth.tokens import create_token
    from qiao.core.records.context import Actor, Source
    from qiao.core.runtime import Runtime

    runtime = Runtime(config)
    try:
        runtime.migrate()
        audit.initialize(runtime, existing_ok=True)
        records = runtime.records
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            records.create(
                ctx, "user", {"username": "admin", "display_name": "管理员", "is_admin": True}
            )
            teams = [
                records.create(ctx, "team", {"name": f"销售{t}组"})["id"]
                for t in range((reps + TEAM - 1) // TEAM)
            ]
            for i in range(reps):
                records.create(
                    ctx,
                    "user",
                    {
                        "username": f"rep{i:03d}",
                        "display_name": f"销售{i}",
                        "team": teams[i // TEAM],
                    },
                )
            system = Actor.system()
            role = records.list(
                ctx.connection, "role", filter={"name": {"eq": "sales_rep"}}, actor=system
            ).records[0]
            rep = records.list(
                ctx.connection, "user", filter={"username": {"eq": "rep000"}}, actor=system
            ).records[0]
            records.create(ctx, "role_assignment", {"user": rep["id"], "role": role["id"]})
            return {
                "admin": create_token(ctx.connection, runtime.current(), "admin"),
                "rep000": create_token(ctx.connection, runtime.current(), "rep000"),
            }
    finally:
        runtime.close()


def seed_accounts(url: str, accounts: int, start: dt.datetime) -> None:
    """``accounts`` accounts with UUIDv7 ids, owned round the reps; the first LARGE are
    the large ones, half ``rep000``'s and half its team-mate ``rep001``'s. A numbered
    copy of their ids and owners (``bench_account``) lets the load pick them by number."""
    with psycopg.connect(url) as conn:
        conn.execute(
            f"""
            CREATE TABLE bench_account AS
            SELECT g - 1 AS n, {UUID7.format(ts="%(start)s::timestamptz", h="md5('a' || g)")}
                       AS id,
                   CASE WHEN g <= %(large)s
                        THEN (SELECT id FROM "user" WHERE username =
                              CASE WHEN g <= %(large)s / 2 THEN 'rep000' ELSE 'rep001' END)
                        ELSE reps.ids[1 + g %% array_length(reps.ids, 1)] END AS owner_id
            FROM generate_series(1, %(accounts)s::int) AS g
            CROSS JOIN (SELECT array_agg(id ORDER BY username) AS ids FROM "user"
                        WHERE username LIKE 'rep%%') AS reps
            """,
            {"start": start, "accounts": accounts, "large": LARGE},
        )
        conn.execute("CREATE UNIQUE INDEX ON bench_account (n)")
        conn.execute(
            "INSERT INTO account (id, created_at, updated_at, version, name, kind, owner_id) "
            "SELECT id, %(start)s, %(start)s, 1, '客户' || lpad(n::text, 6, '0'), 'CUSTOMER', "
            "owner_id FROM bench_account",
            {"start": start},
        )


def load_activities(url: str, first: int, last: int, reps: int, start: dt.datetime) -> float:
    """Activities number ``first`` to ``last`` (1-based), in time order; seconds taken."""
    began = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'activity' "
            "AND indexname <> 'activity_pkey' ORDER BY indexname"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("SET session_replication_role = replica")  # the loader's ids are valid
        accounts = conn.execute("SELECT count(*) FROM bench_account").fetchone()[0]  # type: ignore[index]
        chunk = 1_000_000
        for low in range(first, last + 1, chunk):
            conn.execute(
                ACTIVITIES,
                {
                    "first": low,
                    "last": min(last, low + chunk - 1),
                    "start": start,
                    "step": HISTORY_PER_ROW,
                    "large": LARGE,
                    "large_share": LARGE * LARGE_SHARE,
                    "accounts": accounts,
                    "reps": reps,
                },
            )
            conn.commit()
            print(f"  loaded {min(last, low + chunk - 1):,} activities", flush=True)
        conn.execute("SET session_replication_role = DEFAULT")
        for _, definition in indexes:
            conn.execute(definition)
        conn.commit()
        count = conn.execute("SELECT count(*) FROM activity").fetchone()[0]  # type: ignore[index]
        assert count == last, f"expected {last:,} activities, the table holds {count:,}"
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE activity")
        conn.execute("VACUUM ANALYZE account")
    return time.perf_counter() - began


def cases(url: str, sample: int) -> list[Case]:
    with psycopg.connect(url) as conn:

        def ids(sql: str) -> tuple[str, ...]:
            return tuple(str(r[0]) for r in conn.execute(sql, {"large": LARGE, "n": sample}))

        rep_large = ids(
            'SELECT b.id FROM bench_account b JOIN "user" u ON u.id = b.owner_id '
            "WHERE b.n < %(large)s AND u.username = 'rep000' ORDER BY b.n"
        )
        mate_large = ids(
            'SELECT b.id FROM bench_account b JOIN "user" u ON u.id = b.owner_id '
            "WHERE b.n < %(large)s AND u.username = 'rep001' ORDER BY b.n"
        )
        ordinary = ids(
            "SELECT id FROM bench_account WHERE n >= %(large)s ORDER BY md5(id::text) LIMIT %(n)s"
        )
        rep_ordinary = ids(
            'SELECT b.id FROM bench_account b JOIN "user" u ON u.id = b.owner_id '
            "WHERE b.n >= %(large)s AND u.username = 'rep000' ORDER BY md5(b.id::text) LIMIT %(n)s"
        )
    return [
        Case("admin, large account", "admin", rep_large + mate_large),
        Case("admin, ordinary accounts", "admin", ordinary),
        Case("rep, own large account", "rep000", rep_large),
        Case("rep, own ordinary accounts", "rep000", rep_ordinary),
        Case("rep, team-mate's large account", "rep000", mate_large),
    ]


def expected_sizes(url: str, case: Case) -> dict[str, int]:
    """Per account, how many activities the caller may read there (SQL's count)."""
    own = case.caller != "admin"
    with psycopg.connect(url) as conn:
        found = {}
        for account in case.accounts:
            row = conn.execute(
                "SELECT count(*) FROM activity a WHERE a.account_id = %s AND (NOT %s OR "
                "a.owner_id = (SELECT id FROM \"user\" WHERE username = 'rep000'))",
                (account, own),
            ).fetchone()
            found[account] = int(row[0])  # type: ignore[index]
        return found


# -- Measuring --------------------------------------------------------------------------------


def timed_pages(
    client: httpx.Client, url: str, token: str, case: Case, requests: int, expected: dict[str, int]
) -> tuple[list[float], list[float]]:
    """``requests`` first pages and as many second pages, alternating the case's accounts."""
    headers = {"Authorization": f"Bearer {token}"}
    first, second = [], []
    for i in range(requests):
        account = case.accounts[i % len(case.accounts)]
        cursor = None
        for page, times in ((1, first), (2, second)):
            body = {"query": QUERY, "variables": {"account": account, "after": cursor}}
            start = time.perf_counter()
            answer = client.post(url, json=body, headers=headers)
            times.append((time.perf_counter() - start) * 1000)
            data = answer.json()
            assert answer.status_code == 200 and "errors" not in data, answer.text[:500]
            edges = data["data"]["activities"]["edges"]
            want = min(PAGE, max(0, expected[account] - PAGE * (page - 1)))
            assert len(edges) == want, f"{case.name} page {page}: {len(edges)} items, not {want}"
            cursor = data["data"]["activities"]["pageInfo"]["endCursor"]
    return first, second


def measure(
    folder: Path, url: str, tokens: dict[str, str], all_cases: list[Case], requests: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    port = free_port()
    config = folder / "qiao.toml"
    configure(folder, url, port=port)
    log_path = folder / "serve.log"
    with log_path.open("ab") as log:
        server = qiao(config, ["serve", "--no-worker"], log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_answering(server, base, log_path)
            page1, page2 = {}, {}
            with httpx.Client(timeout=60) as client:
                for case in all_cases:
                    expected = expected_sizes(url, case)
                    token = tokens[case.caller]
                    timed_pages(client, f"{base}/graphql", token, case, 20, expected)  # warm-up
                    page1[case.name], page2[case.name] = timed_pages(
                        client, f"{base}/graphql", token, case, requests, expected
                    )
            return page1, page2
        finally:
            stop([server])


# -- Plans ------------------------------------------------------------------------------------


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from walk(child)


def explain(
    url: str, config: Any, tokens: dict[str, str], case: Case, cursor: str | None
) -> tuple[str, str]:
    """EXPLAIN ANALYZE of the case's statement, in brief and in full. Flags a sort of
    more than a page of rows (the account's rows sorted); fails on a sequential scan."""
    variables = {"account": case.accounts[0], "after": cursor}
    body = {"query": QUERY, "variables": variables}
    sql, params = captured_statement(config, tokens[case.caller], body, "FROM activity")
    with psycopg.connect(url) as conn:
        conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)  # warm
        (plan,) = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()  # type: ignore[misc]
        text = "\n".join(
            r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
        )
    nodes = list(walk(plan[0]["Plan"]))
    scans = [n for n in nodes if n.get("Relation Name") == "activity"]
    assert scans, "no scan of activity in the plan"
    for scan in scans:
        assert scan["Node Type"] != "Seq Scan", f"{case.name}: activity read whole\n{text}"
    page = scans[-1]
    sorted_rows = max(  # what each full sort takes in: its input's rows
        (n["Plans"][0]["Actual Rows"] for n in nodes if n["Node Type"] == "Sort"), default=0
    )
    verdict = "ok" if sorted_rows <= 2 * PAGE + 1 else f"SORTS {sorted_rows} ROWS"
    examined = max(n["Actual Rows"] + n.get("Rows Removed by Filter", 0) for n in scans)
    return (
        f"{verdict}: {page['Node Type']} {page.get('Index Name', '')}, "
        f"at most {examined} rows examined by a scan, {plan[0]['Execution Time']:.1f} ms",
        text,
    )


def plans(
    folder: Path, url: str, tokens: dict[str, str], all_cases: list[Case]
) -> dict[str, tuple[str, str]]:
    """Each case's plans for pages 1 and 2 (the cursor from a first page read in-process)."""
    from qiao.core.auth.tokens import Authenticator
    from qiao.core.graphql.service import GraphQLService
    from qiao.core.runtime import Runtime

    config = configure(folder, url)
    found = {}
    for case in all_cases:
        runtime = Runtime(config)
        try:
            runtime.start()
            actor = Authenticator(runtime.db, runtime.current).actor_for(
                f"Bearer {tokens[case.caller]}"
            )
            body = GraphQLService(runtime).execute(
                actor, {"query": QUERY, "variables": {"account": case.accounts[0]}}
            )
        finally:
            runtime.close()
        assert isinstance(body, bytes), body
        cursor = json.loads(body)["data"]["activities"]["pageInfo"]["endCursor"]
        for page, after in ((1, None), (2, cursor)):
            found[f"{case.name}, page {page}"] = explain(url, config, tokens, case, after)
    return found


# -- Driver -----------------------------------------------------------------------------------


def report(args: argparse.Namespace, results: list[Figures]) -> None:
    load = os.getloadavg()
    print(
        f"\n{dt.date.today()}  Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f}; {args.requests} requests per case and page, one at a time"
    )
    header = f"{'case':34} {'page':>4}" + "".join(
        f" {f'{r.rows:,} p50/p95/p99 ms':>26}" for r in results
    )
    print(header)
    print("-" * (len(header) + 24))
    small, big = results[0], results[-1]
    worst = 0.0
    for name in small.page1:
        for page in (1, 2):
            cells = ""
            for r in results:
                times = (r.page1 if page == 1 else r.page2)[name]
                cells += (
                    f" {percentile(times, 50):8.1f} {percentile(times, 95):8.1f} "
                    f"{percentile(times, 99):8.1f}"
                )
            a = percentile((small.page1 if page == 1 else small.page2)[name], 95)
            b = percentile((big.page1 if page == 1 else big.page2)[name], 95)
            worst = max(worst, b)
            print(f"{name:34} {page:>4}{cells}   p95 ratio {b / a:4.2f}")
    for r in results:
        print(f"plans at {r.rows:,} (the page's scan of activity):")
        for name, (brief, _) in r.plans.items():
            print(f"  {name:42} {brief}")
    verdict = "met" if worst < AIM_P95_MS else "MISSED"
    print(f"worst p95 at {big.rows:,}: {worst:.1f} ms (aim < {AIM_P95_MS:.0f} ms: {verdict})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--requests", type=int, default=200, help="per case and page")
    parser.add_argument("--sample", type=int, default=50, help="ordinary accounts per case")
    parser.add_argument("--plans", choices=["all", "last"], default="last", help="which to print")
    parser.add_argument("--postgres-admin-url", default=DEFAULT_POSTGRES_ADMIN_URL)
    parser.add_argument("--quick", action="store_true", help="100,000 and 1,000,000 rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.requests = [100_000, 1_000_000], 100
    args.sizes.sort()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: list[Figures] = []
    start = dt.datetime.now(dt.UTC) - HISTORY_PER_ROW * args.sizes[-1]
    with (
        tempfile.TemporaryDirectory(prefix="qiao-timeline-") as tmp,
        database("postgresql", Path(tmp), args.postgres_admin_url) as url,
    ):
        folder = Path(tmp)
        tokens = seed_people(configure(folder, url), args.reps)
        seed_accounts(url, args.accounts, start)
        loaded = 0
        for size in args.sizes:
            took = load_activities(url, loaded + 1, size, args.reps, start)
            loaded = size
            print(f"{size:,} activities in the table (this step {took:.0f} s, counted)", flush=True)
            all_cases = cases(url, args.sample)
            found = plans(folder, url, tokens, all_cases)
            page1, page2 = measure(folder, url, tokens, all_cases, args.requests)
            results.append(Figures(size, page1, page2, found))
            if args.plans == "all" or size == args.sizes[-1]:
                for name, (_, text) in found.items():
                    print(f"\nEXPLAIN ANALYZE at {size:,}, {name}:\n{text}")
    report(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
