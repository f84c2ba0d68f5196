"""Pipeline by owner and month: ``opportunityAggregate`` against a lean hand-written query.

Seeds ``--rows`` opportunities (default 1,000,000; ``--quick``: 50,000) over 100 owners
and two years of close dates on PostgreSQL, with bulk ``INSERT ... SELECT`` (the
users and the rep's role go through the records service). Then, in this process:

- **Qiao**: the GraphQL service answering ``opportunityAggregate(groupBy: [owner,
  closeDate by MONTH])`` with count and sum of amounts, as a sales rep whose rule reads
  only their own opportunities (and, for context, as an administrator, who reads all);
- **Lean**: the statement a developer would write for the same groups
  (``GROUP BY owner_id, date_trunc('month', close_date)``, the rep's ``owner_id = ...``),
  on a connection of the same engine.

Before any timing, Qiao's groups must equal the lean query's: the same owners, months,
counts and sums to the fen. It then prints median and p99 of each (aim for the rep:
under 200 ms) and their ratio, with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from decimal import Decimal
from typing import Any

from serving import deployment
from sqlalchemy import text

from qiao.core.graphql.service import GraphQLService
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

OWNERS = 100
MONTHS = 24
QUERY = """{ opportunityAggregate(first: 1000,
    groupBy: [{field: OWNER_ID}, {field: CLOSE_DATE, bucket: MONTH}]) {
  key { ownerId closeDate } count sum { amount } } }"""
LEAN = """SELECT owner_id::text, to_char(date_trunc('month', close_date), 'YYYY-MM-DD'),
       count(*), sum(amount)::text
FROM opportunity {where}
GROUP BY owner_id, date_trunc('month', close_date)
ORDER BY owner_id, date_trunc('month', close_date) NULLS LAST
LIMIT 1000"""


def seed(runtime: Runtime, rows: int) -> tuple[Actor, Actor]:
    """100 owners (the first a sales rep), an account, and ``rows`` opportunities."""
    records = runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        role = records.list(
            ctx.connection, "role", filter={"name": {"eq": "sales_rep"}}, actor=Actor.system()
        ).records[0]
        team = records.create(ctx, "team", {"name": "销售一组", "code": "T1"})
        users = [
            records.create(
                ctx,
                "user",
                {"username": f"rep{u:03d}", "display_name": f"代表{u}", "team": team["id"]},
            )["id"]
            for u in range(OWNERS)
        ]
        records.create(ctx, "role_assignment", {"user": users[0], "role": role["id"]})
        admin = records.create(
            ctx, "user", {"username": "boss", "display_name": "总经理", "is_admin": True}
        )
        account = records.create(ctx, "account", {"name": "常州天工", "owner": users[0]})
    owners = "ARRAY[" + ",".join(f"'{u}'::uuid" for u in users) + "]"
    with runtime.db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO opportunity (id, created_at, updated_at, version, name, account_id,"
                " stage, amount, close_date, owner_id) "
                "SELECT gen_random_uuid(), now(), now(), 1, '商机' || g, :account, 'PROPOSAL', "
                "round((random() * 5000000)::numeric, 2), "
                f"date '2025-01-01' + (g::bigint * 7919 % ({MONTHS} * 30))::int, "
                f"({owners})[1 + g % {OWNERS}] FROM generate_series(1, :n) AS g"
            ),
            {"n": rows, "account": account["id"]},
        )
        conn.execute(text("ANALYZE opportunity"))
    rep = Actor(user_id=users[0], username="rep000")
    return Actor(user_id=admin["id"], username="boss", is_admin=True), rep


def qiao_groups(service: GraphQLService, actor: Actor) -> list[tuple[Any, ...]]:
    result = service.execute(actor, {"query": QUERY})
    assert isinstance(result, bytes), result  # the compiled path, no errors
    groups = json.loads(result)["data"]["opportunityAggregate"]
    return [
        (g["key"]["ownerId"], g["key"]["closeDate"], g["count"], Decimal(g["sum"]["amount"]))
        for g in groups
    ]


def lean_groups(runtime: Runtime, owner: str | None) -> list[tuple[Any, ...]]:
    where = "" if owner is None else f"WHERE owner_id = '{owner}'"
    with runtime.db.engine.connect() as conn:
        rows = conn.exec_driver_sql(LEAN.format(where=where)).all()
    return [(r[0], r[1], r[2], Decimal(r[3])) for r in rows]


def timed(run: Any, repeats: int) -> list[float]:
    run()  # warm caches and the plan
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=101)
    parser.add_argument("--quick", action="store_true", help="50,000 rows and 21 repeats")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "QIAO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats = 50_000, 21
    with deployment(args.postgres_url) as runtime:
        started = time.perf_counter()
        admin, rep = seed(runtime, args.rows)
        print(f"seeded {args.rows:,} opportunities in {time.perf_counter() - started:.0f} s")
        service = GraphQLService(runtime)
        print(f"load average before timing: {os.getloadavg()[0]:.2f} (1 min)")
        print(
            f"{'caller':7} {'groups':>6} {'qiao p50':>9} {'p99':>7} {'lean p50':>9} {'p99':>7} "
            f"{'qiao/lean':>9}"
        )
        for label, actor, owner in (("rep", rep, rep.user_id), ("admin", admin, None)):
            got, expected = qiao_groups(service, actor), lean_groups(runtime, owner)
            assert got == expected, f"{label}: Qiao's groups differ from the lean query's"
            assert got and sum(g[2] for g in got) > 0, "no groups: the seed did not work"
            if owner is not None:
                assert len({g[0] for g in got}) == 1, "the rep's rule let other owners in"
            q = timed(lambda actor=actor: qiao_groups(service, actor), args.repeats)
            lean = timed(lambda owner=owner: lean_groups(runtime, owner), args.repeats)
            qm, lm = statistics.median(q), statistics.median(lean)
            print(
                f"{label:7} {len(got):6} {qm:9.1f} {p99(q):7.1f} {lm:9.1f} {p99(lean):7.1f} "
                f"{qm / lm:9.2f}"
            )
        print(
            f"ms over {args.repeats} runs; aim: the rep under 200 ms; load average now "
            f"{os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
