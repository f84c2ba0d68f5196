"""How long a field rep's offline pull takes after a day away: 1,000 changed records.

A mobile rep (S5) comes back online and pulls what changed. This seeds, on
PostgreSQL with an audit key, ``--base`` accounts (default 100,000) over 100
owners with one audit entry each, gives the rep a role reading only their own
accounts with the phone masked and the annual revenue hidden, has the rep
finish an initial sync, then changes ``--changes`` (default 1,000) of the
rep's accounts and as many of other owners' through the records service. It
then times ``syncPull(first: 1000)`` from the rep's cursor through the GraphQL
service in this process, checks the page holds the rep's 1,000 changed
records before printing, times the next page too (the other owner's 1,000
changes, of which the rep must get nothing, not even tombstones), and times a
lean SQL baseline doing the first page's reads by hand: the feed's entries
after the cursor, then the rep's rows among them. Prints medians and p99 (aim: under 200 ms).
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

OWNERS = 100
PULL = """query Pull($cursor: String) {
  syncPull(entities: ["Account"], cursor: $cursor, first: 1000) {
    upserts { id version fields } tombstones { id } cursor hasMore resetRequired
  }
}"""
RIGHTS = {
    "entities": {"account": {"read": "own", "update": "own"}},
    "fields": {"account": {"phone": "masked", "annual_revenue": "none"}},
}
BASELINE = text(
    "SELECT a.id, a.version, a.name, a.city, a.phone, a.owner_id, a.updated_at "
    "FROM account a WHERE a.owner_id = :rep AND a.id IN ("
    "  SELECT e.record_id::uuid FROM qiao_audit_entry e"
    "  WHERE e.entity = 'account' AND e.sequence > :after"
    "  ORDER BY e.sequence LIMIT 1000)"
)


def seed(runtime: Runtime, base: int) -> tuple[Actor, list[str]]:
    """Owners, the rep's role, and ``base`` accounts with their audit entries, in SQL."""
    records = runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        role = records.create(ctx, "role", {"name": "field_rep", "rights": RIGHTS})
        users = [
            records.create(ctx, "user", {"username": f"rep{i}", "display_name": f"代表{i}"})["id"]
            for i in range(OWNERS)
        ]
        records.create(ctx, "role_assignment", {"user": users[0], "role": role["id"]})
    owners = "ARRAY[" + ",".join(f"'{u}'::uuid" for u in users) + "]"
    with runtime.db.write() as conn:
        head = conn.execute(text("SELECT sequence FROM qiao_audit_head WHERE id = 1")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO account (id, created_at, updated_at, version, name, city, phone, "
                "annual_revenue, owner_id) SELECT gen_random_uuid(), now(), now(), 1, "
                "'客户' || lpad(g::text, 7, '0'), '苏州', '+8613812345678', 1000000, "
                f"({owners})[1 + g % {OWNERS}] FROM generate_series(1, :n) AS g"
            ),
            {"n": base},
        )
        conn.execute(
            text(
                "INSERT INTO qiao_audit_entry (sequence, at, key_id, actor_id, actor, source, "
                "request_id, operation, entity, record_id, changes, mac) "
                "SELECT :head + row_number() OVER (ORDER BY id), now(), 'audit-1', NULL, "
                "'system', 'import', 'seed', 'create', 'account', id::text, '{}', "
                "repeat('0', 64) FROM account"
            ),
            {"head": head},
        )
        conn.execute(
            text("UPDATE qiao_audit_head SET sequence = :s, mac = repeat('0', 64) WHERE id = 1"),
            {"s": head + base},
        )
        conn.execute(text("ANALYZE account"))
        conn.execute(text("ANALYZE qiao_audit_entry"))
    return Actor(user_id=users[0], username="rep0"), users


def change(runtime: Runtime, owner: str, count: int, city: str) -> list[str]:
    """Update ``count`` of ``owner``'s accounts through the records service."""
    records = runtime.records
    with runtime.db.read() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                text("SELECT id::text FROM account WHERE owner_id = :o ORDER BY id LIMIT :n"),
                {"o": owner, "n": count},
            )
        ]
    for start in range(0, len(ids), 100):
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            for record_id in ids[start : start + 100]:
                records.update(ctx, "account", record_id, {"city": city})
    return ids


def percentile(times: list[float], fraction: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "QIAO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    with deployment(args.postgres_url) as runtime:
        started = time.perf_counter()
        rep, users = seed(runtime, args.base)
        print(f"seeded {args.base:,} accounts in {time.perf_counter() - started:.0f} s")
        service = GraphQLService(runtime)

        def pull(cursor: str | None) -> dict:
            result = service.execute(rep, {"query": PULL, "variables": {"cursor": cursor}})
            assert isinstance(result, dict) and not result.get("errors"), result
            page: dict = result["data"]["syncPull"]
            return page

        cursor, initial = None, 0
        while True:
            page = pull(cursor)
            initial += len(page["upserts"])
            cursor = page["cursor"]
            if not page["hasMore"]:
                break
        print(f"initial sync: {initial:,} accounts")
        started = time.perf_counter()
        changed = change(runtime, rep.user_id or "", args.changes, "宁波")
        assert len(changed) == args.changes, f"the rep owns only {len(changed)} accounts"
        change(runtime, users[1], args.changes, "杭州")  # others' changes in the same window
        print(f"changed {2 * args.changes:,} accounts in {time.perf_counter() - started:.0f} s")
        after = int(
            runtime.db.run_read(
                lambda c: c.execute(
                    text(
                        "SELECT min(sequence) - 1 FROM qiao_audit_entry WHERE source = 'system'"
                        " AND operation = 'update'"
                    )
                ).scalar_one()
            )
        )

        page = pull(cursor)
        got = {u["id"] for u in page["upserts"]}
        assert got == set(changed), (len(got), len(changed))
        assert all(u["fields"]["city"] == "宁波" for u in page["upserts"])
        assert all(u["fields"]["phone"] == "138****5678" for u in page["upserts"])
        assert all("annualRevenue" not in u["fields"] for u in page["upserts"])
        assert not page["resetRequired"] and page["hasMore"]  # the others' changes follow

        others = pull(page["cursor"])  # the other owner's changes: nothing for the rep
        assert (others["upserts"], others["tombstones"]) == ([], []), others

        def timed(position: str | None) -> list[float]:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                pull(position)
                times.append(time.perf_counter() - start)
            return times

        times = timed(cursor)
        skipped = timed(page["cursor"])

        def lean() -> int:
            with runtime.db.engine.connect() as conn:
                return len(conn.execute(BASELINE, {"rep": rep.user_id, "after": after}).all())

        assert lean() == args.changes
        baseline = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            lean()
            baseline.append(time.perf_counter() - start)
        load = os.getloadavg()[0]
        print(f"load average {load:.1f}; {args.repeats} runs each")
        print(f"{'what':34} {'median ms':>10} {'p99 ms':>8}")
        for label, series in (
            (f"syncPull of {args.changes:,} changed records", times),
            (f"syncPull past {args.changes:,} others' changes", skipped),
            ("lean SQL (feed + rows, no JSON)", baseline),
        ):
            median = statistics.median(series) * 1000
            print(f"{label:34} {median:10.1f} {percentile(series, 0.99) * 1000:8.1f}")
        ratio = statistics.median(times) / statistics.median(baseline)
        print(f"syncPull / lean SQL: {ratio:.1f}x (aim: syncPull under 200 ms)")


if __name__ == "__main__":
    sys.exit(main())
