"""``qiao serve`` against a lean hand-written route, both on PostgreSQL, side by side.

The page is "50 opportunities ordered by creation, each with its account and
owner", over 100,000 opportunities, 200 accounts and 201 users.

- **Qiao**: ``qiao serve`` as a real subprocess (its own configuration file,
  its default serving stack), answering ``POST /graphql`` with a bearer token.
- **Lean route**: this script in another process, Starlette plus a psycopg 3
  connection pool (plus uvloop and httptools where installed), answering
  ``GET /lean/opportunities`` with one hand-written statement whose JSON
  PostgreSQL builds (joins to account and user, ``ORDER BY id LIMIT 50``).

Before any figure, both answers must be the same JSON with 50 opportunities.
Then, for each connection count (1 and 8), rounds alternate the two targets;
a separate client process (wrk, or Python processes when wrk is missing) sends
the requests over keep-alive connections. Per target the script prints the
medians of the rounds: requests per second, p50 and p99 latency, CPU per
request of the server process and of its PostgreSQL backends (from /proc),
and the client's CPU per request (to show the client was not the limit).
SQL statements and round trips per request are counted on the wire by a
proxy (bench/pgwire.py), in a separate phase with fresh server processes, so
the proxy costs the timed rounds nothing. Finally the plan of Qiao's
statement is checked under default planner settings and with
``random_page_cost = 1.1``: no table may be scanned once per row.

``--custom-plans`` adds a third target, ``qiao-custom``: the same ``qiao serve``
with ``plan_cache_mode = force_custom_plan`` on every connection (its database
URL's ``options``), so every statement is planned on every run. Its rounds
alternate with the other two, and the summary gives its ratios to ``qiao``.

``--quick`` is a short smoke run; ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hmac
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from httpload import LoadResult, Request, find_wrk, load
from pgwire import CountingProxy
from procstat import descendants, total_cpu
from serving import captured_statement, free_port, qiao_command

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PAGE = 50
TARGETS = ("qiao", "lean")
CUSTOM = "qiao-custom"
#: What ``qiao-custom`` adds to its connections: a plan for every run of every statement.
CUSTOM_OPTIONS = "-c plan_cache_mode=force_custom_plan"

QUERY = (
    f"query OpportunityList {{ opportunities(first: {PAGE}) {{ edges {{ node {{"
    " id name amount stage account { id name } owner { id displayName } } } } }"
)

# What a developer would write by hand for this page: the same fields, order and
# wire forms (amounts as strings) as the GraphQL answer.
LEAN_SQL = f"""
SELECT json_build_object('data', json_build_object('opportunities', json_build_object('edges',
  coalesce(json_agg(json_build_object('node', json_build_object(
    'id', p.id, 'name', p.name, 'amount', p.amount::text, 'stage', p.stage,
    'account', CASE WHEN a.id IS NULL THEN NULL
      ELSE json_build_object('id', a.id, 'name', a.name) END,
    'owner', CASE WHEN u.id IS NULL THEN NULL
      ELSE json_build_object('id', u.id, 'displayName', u.display_name) END
  )) ORDER BY p.id), '[]'::json))))::text
FROM (SELECT id, name, amount, stage, account_id, owner_id FROM opportunity
      ORDER BY id LIMIT {PAGE}) AS p
LEFT JOIN account AS a ON a.id = p.account_id
LEFT JOIN "user" AS u ON u.id = p.owner_id
"""

STAGES = ("QUALIFICATION", "NEEDS_ANALYSIS", "PROPOSAL", "NEGOTIATION", "CLOSED_WON", "CLOSED_LOST")


# -- Database ---------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; yields its URL."""
    name = f"qiao_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(url: str, opportunities: int, accounts: int, reps: int) -> str:
    """Migrate, add the admin through the records service, COPY the rest; returns a token.

    Rows are written as Qiao writes them (UUIDv7 ids in creation order, UTC
    instants, two-decimal amounts); the counts are checked afterwards.
    """
    from qiao.core.auth.tokens import create_token
    from qiao.core.config import Config
    from qiao.core.ids import new_id
    from qiao.core.records.context import Actor, Source
    from qiao.core.runtime import Runtime

    runtime = Runtime(Config(database_url=url, plugins=("crm",)))
    try:
        runtime.migrate()
        records = runtime.records
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            records.create(
                ctx, "user", {"username": "admin", "display_name": "Admin", "is_admin": True}
            )
            token = create_token(ctx.connection, runtime.current(), "admin")
    finally:
        runtime.close()

    rng = random.Random(20261126)
    now = dt.datetime.now(dt.UTC)
    user_ids = [new_id() for _ in range(reps)]
    account_ids = [new_id() for _ in range(accounts)]
    with psycopg.connect(url) as conn:
        with conn.cursor().copy(
            'COPY "user" (id, created_at, updated_at, username, display_name, is_active, is_admin)'
            " FROM STDIN"
        ) as copy:
            for i, uid in enumerate(user_ids):
                copy.write_row((uid, now, now, f"rep{i:03d}", f"Sales rep {i}", True, False))
        with conn.cursor().copy(
            "COPY account (id, created_at, updated_at, name) FROM STDIN"
        ) as copy:
            for i, aid in enumerate(account_ids):
                copy.write_row((aid, now, now, f"Account {i:05d}"))
        with conn.cursor().copy(
            "COPY opportunity (id, created_at, updated_at, name, account_id, owner_id, stage,"
            " amount) FROM STDIN"
        ) as copy:
            for i in range(opportunities):
                at = now + dt.timedelta(microseconds=i)
                amount = f"{rng.randint(0, 5_000_000)}.{rng.randint(0, 99):02d}"
                copy.write_row(
                    (
                        new_id(),
                        at,
                        at,
                        f"Opportunity {i:06d}",
                        rng.choice(account_ids),
                        rng.choice(user_ids),
                        rng.choice(STAGES),
                        amount,
                    )
                )
        conn.commit()
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM opportunity), (SELECT count(*) FROM account),"
            ' (SELECT count(*) FROM "user")'
        ).fetchone()
        assert counts == (opportunities, accounts, reps + 1), f"seeded rows: {counts}"
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return token


# -- The lean server (this script, in its own process) ----------------------------------------


def serve_lean(url: str, port: int, token: str, pool_size: int) -> None:
    """Starlette + psycopg_pool's async pool, one autocommit statement per request."""
    import uvicorn
    from psycopg_pool import AsyncConnectionPool
    from starlette.applications import Starlette
    from starlette.requests import Request as HttpRequest
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    pool = AsyncConnectionPool(
        url, min_size=pool_size, max_size=pool_size, open=False, kwargs={"autocommit": True}
    )
    expected = f"Bearer {token}"

    async def opportunities(request: HttpRequest) -> Response:
        if not hmac.compare_digest(request.headers.get("authorization", ""), expected):
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        async with pool.connection() as conn:
            cursor = await conn.execute(LEAN_SQL)
            row = await cursor.fetchone()
        assert row is not None
        return Response(row[0].encode(), media_type="application/json")

    async def healthz(_: HttpRequest) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        await pool.open(wait=True)
        yield
        await pool.close()

    app = Starlette(
        routes=[
            Route("/lean/opportunities", opportunities, methods=["GET"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


# -- Servers as subprocesses ------------------------------------------------------------------


def with_params(url: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


@dataclass
class Server:
    """A target's server process and what its load generator needs."""

    name: str
    process: subprocess.Popen[bytes]
    application_name: str
    request: Request


def start_qiao(
    url: str,
    folder: Path,
    tag: str,
    pool_size: int,
    serve_options: list[str],
    log: Any,
    read_pool_size: int | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """``qiao serve`` on ``url`` with its own configuration file; the process and its port.

    ``read_pool_size`` (Qiao's default if None) is the pool of the reads awaited in the
    server's event loop; 0 sends every read through a worker thread.
    """
    port = free_port()
    config = folder / f"qiao-{tag}.toml"
    reads = "" if read_pool_size is None else f"read_pool_size = {read_pool_size}\n"
    config.write_text(
        f'[database]\nurl = "{url}"\npool_size = {pool_size}\n{reads}\n'
        f'[plugins]\nenabled = ["crm"]\n\n[server]\nhost = "127.0.0.1"\nport = {port}\n',
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [*qiao_command(), "--config", str(config), "serve", "--no-worker", *serve_options],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, port


@contextlib.contextmanager
def servers(
    url: str,
    token: str,
    folder: Path,
    tag: str,
    pool_size: int,
    serve_options: list[str],
    custom: bool = False,
    read_pool_size: int | None = None,
) -> Iterator[list[Server]]:
    """Start ``qiao serve`` and the lean route on ``url`` (and, with ``custom``,
    ``qiao serve`` planning every run); stop them afterwards."""
    names = (*TARGETS, CUSTOM) if custom else TARGETS
    apps = {name: f"qiao_bench_{name.replace('-', '_')}_{tag}" for name in names}
    lean_port = free_port()
    log = (folder / f"server-{tag}.log").open("wb")
    qiao, qiao_port = start_qiao(
        with_params(url, application_name=apps["qiao"]),
        folder,
        tag,
        pool_size,
        serve_options,
        log,
        read_pool_size,
    )
    lean = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve-lean",
            with_params(url, application_name=apps["lean"]),
            str(lean_port),
            token,
            str(pool_size),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    auth = {"Authorization": f"Bearer {token}"}

    def graphql(port: int) -> Request:
        return Request(
            "POST",
            f"http://127.0.0.1:{port}/graphql",
            {**auth, "Content-Type": "application/json"},
            json.dumps({"query": QUERY}).encode(),
        )

    started = [
        Server("qiao", qiao, apps["qiao"], graphql(qiao_port)),
        Server(
            "lean",
            lean,
            apps["lean"],
            Request("GET", f"http://127.0.0.1:{lean_port}/lean/opportunities", auth),
        ),
    ]
    if custom:
        options = urllib.parse.quote(CUSTOM_OPTIONS)
        process, port = start_qiao(
            with_params(url, application_name=apps[CUSTOM], options=options),
            folder,
            f"{tag}-custom",
            pool_size,
            serve_options,
            log,
            read_pool_size,
        )
        started.append(Server(CUSTOM, process, apps[CUSTOM], graphql(port)))
    try:
        for server in started:
            wait_healthy(server, folder / f"server-{tag}.log")
        yield started
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            try:
                server.process.wait(15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
        log.close()


def wait_healthy(server: Server, log: Path) -> None:
    base = server.request.url.rsplit("/", 1)[0].removesuffix("/lean")
    deadline = time.monotonic() + 600  # a loaded machine starts it slowly
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"the {server.name} server stopped:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {server.name} server did not answer within 600 s")
        time.sleep(0.1)


def send(server: Server, client: httpx.Client) -> httpx.Response:
    r = server.request
    answer = client.request(r.method, r.url, headers=r.headers, content=r.body or None)
    answer.raise_for_status()
    return answer


def check_same_answer(started: list[Server]) -> int:
    """Every target must return the same JSON and 50 opportunities; returns the size."""
    with httpx.Client(timeout=30) as client:
        qiao, *others = (send(server, client) for server in started)
    edges = qiao.json()["data"]["opportunities"]["edges"]
    assert len(edges) == PAGE, f"expected {PAGE} opportunities, got {len(edges)}"
    assert all(e["node"]["account"] and e["node"]["owner"] for e in edges), "missing relations"
    for server, other in zip(started[1:], others, strict=True):
        assert qiao.json() == other.json(), f"the GraphQL answer and {server.name}'s differ"
    return len(qiao.content)


# -- Per-request costs ------------------------------------------------------------------------


def backends(admin: psycopg.Connection[Any], application_name: str) -> set[int]:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
    ).fetchall()
    return {int(pid) for (pid,) in rows}


@dataclass
class Round:
    load: LoadResult
    server_cpu: float
    database_cpu: float

    def per_request_us(self, seconds: float) -> float:
        return seconds / self.load.requests * 1e6


def measured(
    server: Server, admin: psycopg.Connection[Any], wrk: str | None, conns: int, secs: float
) -> Round:
    """One round of load on ``server``, with the CPU its processes (with ``--workers``, the
    supervisor and its workers) and its backends used."""
    pids = backends(admin, server.application_name)
    processes = descendants(server.process.pid)
    server_before = total_cpu(processes)
    db_before = total_cpu(pids)
    result = load(wrk, server.request, conns, secs)
    pids |= backends(admin, server.application_name)
    server_after = total_cpu(processes)
    db_after = total_cpu(pids)
    return Round(
        result,
        sum(server_after.values()) - sum(server_before.values()),
        sum(db_after[p] - db_before.get(p, 0.0) for p in pids),
    )


@dataclass
class Wire:
    statements: float
    round_trips: float
    texts: dict[str, int]


def count_wire(
    url: str,
    token: str,
    folder: Path,
    requests: int,
    serve_options: list[str],
    custom: bool,
    read_pool_size: int | None,
) -> dict[str, Wire]:
    """Statements and round trips per request, counted through the proxy."""
    host, port = "127.0.0.1", 5432
    proxy = CountingProxy(host, port)
    result: dict[str, Wire] = {}
    with proxy.running():
        proxied = url.replace(f"{host}:{port}", f"{host}:{proxy.port}")
        proxied = with_params(proxied, sslmode="disable", gssencmode="disable")
        started = servers(proxied, token, folder, "wire", 10, serve_options, custom, read_pool_size)
        with started as targets, httpx.Client() as client:
            for server in targets:
                for _ in range(20):  # warm: token cache, schema, prepared statements
                    send(server, client)
                proxy.reset()
                for _ in range(requests):
                    send(server, client)
                counts = proxy.counts()
                result[server.name] = Wire(
                    counts.statements / requests,
                    counts.round_trips / requests,
                    dict(counts.texts.most_common(6)),
                )
    return result


# -- Plans ------------------------------------------------------------------------------------


def qiao_statement(url: str, token: str) -> tuple[str, Any]:
    """The SQL and parameters Qiao runs for the query (captured in-process)."""
    from qiao.core.config import Config

    config = Config(database_url=url, plugins=("crm",))
    return captured_statement(config, token, {"query": QUERY}, "opportunity")


@dataclass
class Plan:
    setting: str
    milliseconds: float
    scans_per_row: list[str] = field(default_factory=list)


def plans(url: str, token: str) -> list[Plan]:
    """Qiao's statement under default settings and with index scans made cheap."""
    sql, params = qiao_statement(url, token)
    found = []
    with psycopg.connect(url) as conn:
        for setting in ("default", "random_page_cost = 1.1"):
            if setting != "default":
                conn.execute(f"SET {setting}")
            best = None
            for _ in range(5):
                (plan,) = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()  # type: ignore[misc]
                elapsed = plan[0]["Execution Time"]
                best = elapsed if best is None else min(best, elapsed)
            found.append(Plan(setting, best or 0.0, per_row_scans(plan[0]["Plan"])))
            conn.rollback()
    return found


def per_row_scans(node: dict[str, Any]) -> list[str]:
    """Sequential scans run more than once (a table read again for every outer row)."""
    found = []
    if node.get("Node Type") == "Seq Scan" and node.get("Actual Loops", 1) > 1:
        found.append(f"{node['Relation Name']} x{node['Actual Loops']}")
    for child in node.get("Plans", ()):
        found += per_row_scans(child)
    return found


# -- Driver -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    wrk = None if args.python_client else find_wrk(install=not args.no_install)
    client = "wrk 1 thread" if wrk else "Python (httpx, 2 processes)"
    print(f"client: {client}")
    with (
        tempfile.TemporaryDirectory(prefix="qiao-bench-") as tmp,
        fresh_database(args.postgres_url) as url,
    ):
        folder = Path(tmp)
        began = time.perf_counter()
        token = seed(url, args.rows, args.accounts, args.users - 1)
        print(
            f"seeded {args.rows} opportunities, {args.accounts} accounts, {args.users} users "
            f"in {time.perf_counter() - began:.1f} s (counts checked)"
        )
        rounds: dict[tuple[int, str], list[Round]] = {}
        with (
            servers(
                url,
                token,
                folder,
                "load",
                args.pool_size,
                args.serve_options,
                args.custom_plans,
                args.read_pool_size,
            ) as started,
            psycopg.connect(args.postgres_url, autocommit=True) as admin,
        ):
            size = check_same_answer(started)
            print(f"all targets return the same {PAGE} opportunities ({size} bytes of JSON)")
            for conns in args.connections:
                for server in started:
                    load(wrk, server.request, conns, args.warmup)
                for i in range(args.rounds):
                    # Each round starts with another target, so none always runs first.
                    turn = i % len(started)
                    for server in started[turn:] + started[:turn]:
                        r = measured(server, admin, wrk, conns, args.seconds)
                        rounds.setdefault((conns, server.name), []).append(r)
                    rates = ", ".join(
                        f"{s.name} {rounds[conns, s.name][-1].load.rate:6.0f}" for s in started
                    )
                    print(f"  {conns} conn round {i + 1}/{args.rounds} req/s: {rates}")
        wire = count_wire(
            url,
            token,
            folder,
            args.wire_requests,
            args.serve_options,
            args.custom_plans,
            args.read_pool_size,
        )
        found = plans(url, token)
    report(args, client, rounds, wire, found)
    return 0


def median(rounds: list[Round], value: Any) -> float:
    return statistics.median(value(r) for r in rounds)


def report(
    args: argparse.Namespace,
    client: str,
    rounds: dict[tuple[int, str], list[Round]],
    wire: dict[str, Wire],
    found: list[Plan],
) -> None:
    print()
    print(
        f"{PAGE} opportunities with account and owner; {args.rows} opportunities, "
        f"{args.accounts} accounts, {args.users} users; medians of {args.rounds} alternating "
        f"rounds x {args.seconds:g} s; client {client}; {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}; {dt.date.today()}"
    )
    header = (
        f"{'conns':>5} {'target':<11} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'server us/req':>13} {'pg us/req':>9} {'client us/req':>13} {'stmts':>5} {'trips':>5}"
    )
    print(header)
    print("-" * len(header))
    names = (*TARGETS, CUSTOM) if args.custom_plans else TARGETS
    for conns in args.connections:
        for name in names:
            rs = rounds[conns, name]
            print(
                f"{conns:>5} {name:<11} {median(rs, lambda r: r.load.rate):7.0f} "
                f"{median(rs, lambda r: r.load.p50_ms):7.2f} "
                f"{median(rs, lambda r: r.load.p99_ms):7.2f} "
                f"{median(rs, lambda r: r.per_request_us(r.server_cpu)):13.0f} "
                f"{median(rs, lambda r: r.per_request_us(r.database_cpu)):9.0f} "
                f"{median(rs, lambda r: r.per_request_us(r.load.client_cpu)):13.0f} "
                f"{wire[name].statements:5.2f} {wire[name].round_trips:5.2f}"
            )
        q, lean = rounds[conns, "qiao"], rounds[conns, "lean"]
        ratio = median(q, lambda r: r.load.rate) / median(lean, lambda r: r.load.rate)
        pg = median(q, lambda r: r.per_request_us(r.database_cpu)) / median(
            lean, lambda r: r.per_request_us(r.database_cpu)
        )
        print(
            f"{conns:>5} qiao/lean: req/s {ratio:.2f} (aim >= 0.6), "
            f"PostgreSQL CPU per request {pg:.2f}x (aim <= 1.3)"
        )
        if args.custom_plans:
            custom = rounds[conns, CUSTOM]
            rate = median(custom, lambda r: r.load.rate) / median(q, lambda r: r.load.rate)
            pg = median(custom, lambda r: r.per_request_us(r.database_cpu)) / median(
                q, lambda r: r.per_request_us(r.database_cpu)
            )
            print(
                f"{conns:>5} {CUSTOM}/qiao: req/s {rate:.2f}, PostgreSQL CPU per request {pg:.2f}x"
            )
    for name in names:
        texts = ", ".join(f"{t!r} x{n}" for t, n in wire[name].texts.items())
        print(f"wire, {name} ({args.wire_requests} requests): {texts}")
    for plan in found:
        scans = ", ".join(plan.scans_per_row) or "none"
        print(
            f"plan of qiao's statement, {plan.setting}: {plan.milliseconds:.2f} ms; "
            f"tables scanned per row: {scans}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="opportunities")
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--users", type=int, default=201, help="users, the admin included")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per target")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--pool-size", type=int, default=10, help="each server's pool")
    parser.add_argument(
        "--read-pool-size",
        type=int,
        default=None,
        help="qiao's [database] read_pool_size (its default if not given; 0: reads in threads)",
    )
    parser.add_argument("--wire-requests", type=int, default=200)
    parser.add_argument(
        "--serve-options",
        type=str.split,
        default=[],
        help="more options for qiao serve, e.g. '--loop asyncio --http h11'",
    )
    parser.add_argument("--python-client", action="store_true", help="do not use wrk")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get wrk")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("QIAO_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="server URL whose user may create and drop databases",
    )
    parser.add_argument(
        "--custom-plans",
        action="store_true",
        help=f"also run qiao with '{CUSTOM_OPTIONS}' on every connection, as {CUSTOM}",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.rounds, args.seconds, args.warmup, args.wire_requests = (
            20_000,
            2,
            2.0,
            1.0,
            50,
        )
    if args.rows < PAGE:
        parser.error(f"--rows must be at least {PAGE}, the page size")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-lean"]:
        url, port, token, pool_size = argv[1:5]
        serve_lean(url, int(port), token, int(pool_size))
        return 0
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
