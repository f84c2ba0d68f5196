"""How much record rules cost: a rule-bound sales rep against an administrator.

CRMs are known to crawl once rules apply (an admin's list in 4 s against 51 s
for a rule-bound user in one; 39 s to count 658k leads in another). Qiao
compiles rules into the query as ``owner_id IN (...)``, so a rep's page and
count should cost about what an administrator's do. This seeds ``--rows``
accounts (default 1,000,000) over 100 owners in 10 teams on PostgreSQL, then
times, through the GraphQL service in this process, one page of 50 accounts by
name and the total count, for an administrator and for a rep whose role reads
their team's accounts. It prints medians and the rep/admin ratios (aim: at
most 1.5, and a page under 50 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from serving import deployment
from sqlalchemy import text

from qiao.core.graphql.service import GraphQLService
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

TEAMS = 10
USERS_PER_TEAM = 10
PAGE = "{ accounts(first: 50, orderBy: [{field: NAME}]) { edges { node { id name city } } } }"
COUNT = "{ accounts { totalCount } }"


def seed(runtime: Runtime, rows: int) -> tuple[Actor, Actor]:
    """Teams, users, the rep's role, and ``rows`` accounts spread evenly over the users."""
    records = runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        roles = records.list(
            ctx.connection, "role", filter={"name": {"eq": "sales_rep"}}, actor=Actor.system()
        )
        users = []
        for t in range(TEAMS):
            team = records.create(ctx, "team", {"name": f"销售{t}组", "code": f"T{t}"})
            for u in range(USERS_PER_TEAM):
                user = records.create(
                    ctx,
                    "user",
                    {"username": f"rep{t}_{u}", "display_name": f"代表{t}-{u}", "team": team["id"]},
                )
                users.append(user["id"])
        records.create(ctx, "role_assignment", {"user": users[0], "role": roles.records[0]["id"]})
        admin = records.create(
            ctx, "user", {"username": "boss", "display_name": "总经理", "is_admin": True}
        )
    owners = "ARRAY[" + ",".join(f"'{u}'::uuid" for u in users) + "]"
    with runtime.db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO account (id, created_at, updated_at, version, name, city, owner_id) "
                "SELECT gen_random_uuid(), now(), now(), 1, '客户' || lpad(g::text, 7, '0'), "
                f"'苏州', ({owners})[1 + g % {len(users)}] FROM generate_series(1, :n) AS g"
            ),
            {"n": rows},
        )
        conn.execute(text("ANALYZE account"))
    rep = Actor(user_id=users[0], username="rep0_0")
    return Actor(user_id=admin["id"], username="boss", is_admin=True), rep


def timed(service: GraphQLService, actor: Actor, query: str, repeats: int) -> list[float]:
    service.execute(actor, {"query": query})  # warm caches and the plan
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = service.execute(actor, {"query": query})
        times.append(time.perf_counter() - start)
        assert isinstance(result, bytes), result
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "QIAO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    with deployment(args.postgres_url) as runtime:
        started = time.perf_counter()
        admin, rep = seed(runtime, args.rows)
        print(f"seeded {args.rows:,} accounts in {time.perf_counter() - started:.0f} s")
        service = GraphQLService(runtime)
        print(f"{'query':8} {'admin ms':>9} {'rep ms':>9} {'rep/admin':>10}")
        for label, query in (("page", PAGE), ("count", COUNT)):
            a = statistics.median(timed(service, admin, query, args.repeats)) * 1000
            r = statistics.median(timed(service, rep, query, args.repeats)) * 1000
            print(f"{label:8} {a:9.1f} {r:9.1f} {r / a:10.2f}")
        print("aim: rep/admin <= 1.5 and a page under 50 ms (medians of", args.repeats, "runs)")


if __name__ == "__main__":
    sys.exit(main())
