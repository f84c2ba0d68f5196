"""A mixed load for minutes: no errors, and memory that stops growing after warm-up.

A deployment as ``qiao init`` makes it (key file, audit key) on a fresh
PostgreSQL database, with the ``crm`` and ``leads`` plugins, served by
``qiao serve --no-worker`` while ``--workers`` ``qiao worker`` processes run
beside it. Seeded through the records service: an administrator, a team of
sales reps (the CRM's ``sales_rep`` role), accounts, a webhook lead channel
with a round-robin assignment rule, and an automation rule that turns each new
lead into a follow-up activity for its owner and a notification, so the
workers have work for every lead.

For ``--seconds`` (300; ``--quick``: 60) a client process sends, each kind
at its own steady rate over keep-alive connections:

- **read**: GraphQL pages as the reps (their accounts with owners, an
  account's activity timeline) and as the administrator (opportunities);
- **write**: ``createActivity`` and ``updateAccount`` as the reps;
- **webhook**: signed Standard Webhooks lead deliveries (``POST
  /leads/webhooks/{key}``), each a new lead.

Any answer that is not 200/201 or that carries GraphQL errors, and any
failed request, is an error. Every ``--sample`` seconds the resident memory
(VmRSS from /proc) of the server and of each worker is read. When the load
stops, the script waits for the outbox to drain, then checks the work was
done: every accepted lead stored and assigned, an activity made by the rule
for each, no delivery dead or pending, every write stored. Only then does it
print throughput, p50/p99 per kind, errors, and the memory after warm-up
(the first ``--warmup`` fraction of the run) against the end (aim: under
10 % growth).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from procstat import descendants, rss_bytes
from serving import (
    DEFAULT_POSTGRES_ADMIN_URL,
    configure,
    database,
    free_port,
    percentile,
    qiao,
    stop,
    wait_answering,
)

PLUGINS = ("crm", "leads")
REPS = 8
ACCOUNTS = 400
AIM_GROWTH = 0.10

READS = [
    """query Mine { accounts(first: 20, orderBy: [{field: NAME}]) {
         edges { node { id name city owner { displayName } } } pageInfo { endCursor } } }""",
    """query Timeline($account: ID!) {
         activities(filter: {accountId: {eq: $account}},
                    orderBy: [{field: OCCURRED_AT, direction: DESC}], first: 50) {
           edges { node { id kind subject occurredAt } } pageInfo { hasNextPage } } }""",
]
ADMIN_READ = """query Pipeline {
  opportunities(first: 50, orderBy: [{field: AMOUNT, direction: DESC}]) {
  edges { node { id name amount stage account { name } owner { displayName } } } totalCount } }"""
CREATE_ACTIVITY = """mutation Log($account: ID!, $at: DateTime!, $subject: String!) {
  createActivity(input: {kind: CALL, channel: PHONE, accountId: $account, occurredAt: $at,
                         subject: $subject}) { id } }"""
UPDATE_ACCOUNT = """mutation Move($id: ID!, $city: String!) {
  updateAccount(id: $id, input: {city: $city}) { id version } }"""
TEXTS = ("急需液压阀样品", "想了解五轴加工中心报价", "只是看看", "液压站改造，预算20万")


@dataclass(frozen=True)
class Seeded:
    admin: str
    reps: list[tuple[str, list[str]]]  # each rep's token and account ids
    channel_key: str
    channel_secret: str


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    leads: int = 0
    activities: int = 0
    updates: int = 0


# -- Deployment -------------------------------------------------------------------------------


def seed(config: Any) -> Seeded:
    from qiao.core import audit
    from qiao.core.auth.tokens import create_token
    from qiao.core.records.context import Actor, Source
    from qiao.core.runtime import Runtime

    runtime = Runtime(config)
    try:
        runtime.migrate()
        audit.initialize(runtime, existing_ok=True)
        runtime.plugins.startup(runtime)
        records = runtime.records
        system = Actor.system()
        with records.transaction(system, Source.SYSTEM) as ctx:
            records.create(
                ctx, "user", {"username": "admin", "display_name": "管理员", "is_admin": True}
            )
            team = records.create(ctx, "team", {"name": "华东", "region": "华东"})
            role = records.list(
                ctx.connection, "role", filter={"name": {"eq": "sales_rep"}}, actor=system
            ).records[0]
            reps = []
            for i in range(REPS):
                user = records.create(
                    ctx,
                    "user",
                    {"username": f"rep{i}", "display_name": f"销售{i}", "team": team["id"]},
                )
                records.create(ctx, "role_assignment", {"user": user["id"], "role": role["id"]})
                accounts = [
                    records.create(
                        ctx,
                        "account",
                        {"name": f"客户{i}-{n:03d}", "city": "苏州", "owner": user["id"]},
                    )["id"]
                    for n in range(ACCOUNTS // REPS)
                ]
                for n, account in enumerate(accounts[:10]):
                    records.create(
                        ctx,
                        "opportunity",
                        {
                            "name": f"商机{i}-{n}",
                            "account": account,
                            "owner": user["id"],
                            "amount": "120000.00",
                        },
                    )
                reps.append((create_token(ctx.connection, runtime.current(), f"rep{i}"), accounts))
            records.create(
                ctx,
                "lead_assignment_rule",
                {"name": "轮流", "strategy": "ROUND_ROBIN", "team": team["id"]},
            )
            channel = records.create(ctx, "lead_channel", {"name": "官网", "kind": "WEBHOOK"})
            records.create(
                ctx,
                "automation_rule",
                {
                    "name": "新线索跟进",
                    "entity": "lead",
                    "trigger": {"created": {}},
                    "actions": [
                        {
                            "create": {
                                "entity": "activity",
                                "link": "lead",
                                "values": {
                                    "kind": "CALL",
                                    "subject": '="跟进 " & name',
                                    "occurred_at": "=NOW()",
                                    "owner": "@owner",
                                },
                            }
                        },
                        {"notify": {"fields": ["owner"], "title": "新线索 {name}"}},
                    ],
                },
            )
            admin = create_token(ctx.connection, runtime.current(), "admin")
        return Seeded(admin, reps, str(channel["key"]), str(channel["secret"]))
    finally:
        runtime.close()


# -- The client (its own process) -------------------------------------------------------------


async def paced(rate: float, deadline: float, send: Any) -> None:
    """Call ``send(i)`` ``rate`` times a second until the deadline (skipping, not bunching,
    when an answer comes late)."""
    start = time.monotonic()
    i = 0
    while (now := time.monotonic()) < deadline:
        due = start + i / rate
        if due > now:
            await asyncio.sleep(due - now)
        await send(i)
        i = max(i + 1, int((time.monotonic() - start) * rate))


async def drive(base: str, seeded: Seeded, seconds: float, rates: dict[str, float]) -> Tally:
    from qiao.plugins.leads.inbound.signatures import sign

    tally = Tally()
    deadline = time.monotonic() + seconds
    started = time.time()

    async def call(kind: str, client: httpx.AsyncClient, *args: Any, **kwargs: Any) -> Any:
        begin = time.perf_counter()
        try:
            answer = await client.post(*args, **kwargs)
        except httpx.HTTPError as error:
            tally.errors[kind] += 1
            tally.examples.append(f"{kind}: {error!r}")
            return None
        tally.latencies.setdefault(kind, []).append((time.perf_counter() - begin) * 1000)
        body = (
            answer.json()
            if answer.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if answer.status_code not in (200, 201) or (isinstance(body, dict) and body.get("errors")):
            tally.errors[kind] += 1
            if len(tally.examples) < 10:
                tally.examples.append(f"{kind}: HTTP {answer.status_code} {answer.text[:300]}")
            return None
        return body

    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def graphql(kind: str, token: str, query: str, variables: dict[str, Any]) -> Any:
            body = {"query": query, "variables": variables}
            headers = {"Authorization": f"Bearer {token}"}
            return await call(kind, client, "/graphql", json=body, headers=headers)

        async def read(i: int) -> None:
            if i % 5 == 4:
                await graphql("read", seeded.admin, ADMIN_READ, {})
                return
            token, accounts = seeded.reps[i % REPS]
            variables = {"account": accounts[i % len(accounts)]} if i % 2 else {}
            await graphql("read", token, READS[i % 2], variables)

        async def write(i: int) -> None:
            token, accounts = seeded.reps[i % REPS]
            account = accounts[(i // REPS) % len(accounts)]
            if i % 2:
                city = ("苏州", "无锡", "常州")[i % 3]
                if await graphql("write", token, UPDATE_ACCOUNT, {"id": account, "city": city}):
                    tally.updates += 1
                return
            at = dt.datetime.now(dt.UTC).isoformat()
            variables = {"account": account, "at": at, "subject": f"回访 {i}"}
            if await graphql("write", token, CREATE_ACTIVITY, variables):
                tally.activities += 1

        async def webhook(i: int) -> None:
            body = json.dumps(
                {
                    "姓名": f"客户{i}",
                    "手机": f"139{int(started) % 10000:04d}{i:04d}",
                    "留言": TEXTS[i % 4],
                },
                ensure_ascii=False,
            ).encode()
            stamp = str(int(time.time()))
            message = f"msg_{int(started)}_{i}"
            headers = {
                "webhook-id": message,
                "webhook-timestamp": stamp,
                "webhook-signature": sign(seeded.channel_secret, message, stamp, body),
                "content-type": "application/json",
            }
            if await call(
                "webhook",
                client,
                f"/leads/webhooks/{seeded.channel_key}",
                content=body,
                headers=headers,
            ):
                tally.leads += 1

        async def several(kind: Any, rate: float, lanes: int) -> None:
            await asyncio.gather(
                *(
                    paced(rate / lanes, deadline, lambda i, n=n: kind(i * lanes + n))
                    for n in range(lanes)
                )
            )

        await asyncio.gather(
            several(read, rates["read"], 4),
            several(write, rates["write"], 2),
            several(webhook, rates["webhook"], 1),
        )
    return tally


def client_process(
    base: str, seeded: Seeded, seconds: float, rates: dict[str, float], out: Any
) -> None:
    out.put(asyncio.run(drive(base, seeded, seconds, rates)))


# -- Driver -----------------------------------------------------------------------------------


def drained(url: str, timeout: float) -> dict[str, int]:
    """Wait until no event waits to be fanned out and no delivery is pending; the counts."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            counts = dict(
                zip(
                    ("undispatched", "pending", "dead", "done"),
                    conn.execute(
                        "SELECT (SELECT count(*) FROM qiao_event WHERE dispatched_at IS NULL),"
                        " (SELECT count(*) FROM qiao_delivery WHERE status = 'pending'),"
                        " (SELECT count(*) FROM qiao_delivery WHERE status = 'dead'),"
                        " (SELECT count(*) FROM qiao_delivery WHERE status = 'done')"
                    ).fetchone()
                    or (),
                    strict=True,
                )
            )
            if (counts["undispatched"], counts["pending"]) == (0, 0) or time.monotonic() > deadline:
                return counts
            time.sleep(1)


def check_work(url: str, tally: Tally, outbox: dict[str, int]) -> list[str]:
    """What the load should have left in the database, compared with what it did."""
    problems = []
    with psycopg.connect(url) as conn:
        leads, assigned, followed, notified, logged = conn.execute(
            "SELECT (SELECT count(*) FROM lead),"
            " (SELECT count(*) FROM lead WHERE owner_id IS NOT NULL),"
            " (SELECT count(DISTINCT lead_id) FROM activity WHERE lead_id IS NOT NULL),"
            " (SELECT count(*) FROM notification),"
            " (SELECT count(*) FROM activity WHERE lead_id IS NULL)"
        ).fetchone()  # type: ignore[misc]
    if not tally.leads or leads != tally.leads or assigned != leads:
        problems.append(
            f"{tally.leads} webhooks accepted, {leads} leads stored, {assigned} assigned"
        )
    if followed != leads:
        problems.append(f"{leads} leads but {followed} follow-up activities made by the rule")
    if notified < leads:
        problems.append(f"{leads} leads but {notified} notifications")
    if not tally.activities or logged != tally.activities or not tally.updates:
        problems.append(
            f"{tally.activities} activities written, {logged} stored; {tally.updates} updates"
        )
    if outbox["undispatched"] or outbox["pending"] or outbox["dead"]:
        problems.append(f"outbox not drained: {outbox}")
    return problems


def run(args: argparse.Namespace) -> int:
    with (
        tempfile.TemporaryDirectory(prefix="qiao-soak-") as tmp,
        database("postgresql", Path(tmp), args.postgres_admin_url) as url,
    ):
        folder = Path(tmp)
        port = free_port()
        config = configure(folder, url, PLUGINS, port=port)
        seeded = seed(config)
        log_path = folder / "qiao.log"
        with log_path.open("ab") as log:
            server = qiao(folder / "qiao.toml", ["serve", "--no-worker"], log)
            workers = [qiao(folder / "qiao.toml", ["worker"], log) for _ in range(args.workers)]
            try:
                base = f"http://127.0.0.1:{port}"
                wait_answering(server, base, log_path)
                ctx = multiprocessing.get_context("spawn")
                queue = ctx.Queue()
                rates = {"read": args.reads, "write": args.writes, "webhook": args.webhooks}
                client = ctx.Process(
                    target=client_process, args=(base, seeded, args.seconds, rates, queue)
                )
                began = time.monotonic()

                def sample() -> tuple[float, int, list[int]]:
                    """Seconds since the start, the server's RSS, each worker's."""
                    return (
                        time.monotonic() - began,
                        rss_bytes(descendants(server.pid)),
                        [rss_bytes(descendants(w.pid)) for w in workers],
                    )

                client.start()
                samples: list[tuple[float, int, list[int]]] = []
                while client.is_alive() and time.monotonic() - began < args.seconds + 60:
                    samples.append(sample())
                    time.sleep(args.sample)
                    if time.monotonic() - began > args.seconds:
                        break
                tally: Tally = queue.get(timeout=120)
                client.join(30)
                outbox = drained(url, 180)
                samples.append(sample())
                alive = server.poll() is None and all(w.poll() is None for w in workers)
            finally:
                stop([server, *workers])
        assert alive, f"a qiao process stopped during the run:\n{log_path.read_text()[-3000:]}"
        problems = check_work(url, tally, outbox)
        if problems:
            print("the load did not do its work:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
    return report(args, tally, samples, outbox)


def report(
    args: argparse.Namespace,
    tally: Tally,
    samples: list[tuple[float, int, list[int]]],
    outbox: dict[str, int],
) -> int:
    warm = next(s for s in samples if s[0] >= args.seconds * args.warmup)
    end = samples[-1]
    mib = 1024 * 1024
    print(
        f"\n{dt.date.today()}  Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; {args.seconds:.0f} s, 1 server, "
        f"{args.workers} workers"
    )
    print(f"{'kind':8} {'requests':>9} {'per s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for kind in ("read", "write", "webhook"):
        times = tally.latencies.get(kind, [])
        print(
            f"{kind:8} {len(times):9d} {len(times) / args.seconds:7.1f} "
            f"{percentile(times, 50):8.1f} {percentile(times, 99):8.1f} {tally.errors[kind]:7d}"
        )
    print(
        f"work: {tally.leads} leads (each assigned, followed up by the rule, notified), "
        f"{tally.activities} activities and {tally.updates} account updates written; "
        f"outbox drained, {outbox['done']} deliveries done, {outbox['dead']} dead"
    )
    growths = []
    names = ["server"] + [f"worker {i + 1}" for i in range(args.workers)]
    for i, name in enumerate(names):
        before = warm[1] if i == 0 else warm[2][i - 1]
        after = end[1] if i == 0 else end[2][i - 1]
        peak = max(s[1] if i == 0 else s[2][i - 1] for s in samples)
        growth = (after - before) / before
        growths.append(growth)
        print(
            f"RSS {name:9}: {before / mib:6.1f} MiB at {warm[0]:.0f} s (after warm-up), "
            f"{after / mib:6.1f} MiB at the end, peak {peak / mib:6.1f} MiB: {growth:+.1%}"
        )
    errors = sum(tally.errors.values())
    for example in tally.examples[:10]:
        print(f"  error: {example}")
    ok = errors == 0 and max(growths) < AIM_GROWTH
    print(
        f"errors: {errors} (aim 0); largest growth after warm-up {max(growths):+.1%} "
        f"(aim under {AIM_GROWTH:.0%}): {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--workers", type=int, default=2, help="qiao worker processes")
    parser.add_argument("--reads", type=float, default=40.0, help="GraphQL reads a second")
    parser.add_argument("--writes", type=float, default=10.0, help="GraphQL writes a second")
    parser.add_argument("--webhooks", type=float, default=4.0, help="lead webhooks a second")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the run")
    parser.add_argument("--postgres-admin-url", default=DEFAULT_POSTGRES_ADMIN_URL)
    parser.add_argument("--quick", action="store_true", help="60 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.sample = 60.0, 3.0
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
