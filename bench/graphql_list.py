"""Requests per second of a compiled GraphQL list query against a hand-written route.

Qiao answers ``opportunities(first: 50)`` with each opportunity's account and
owner by compiling the query into one SQL statement whose JSON the database
builds. The claim worth checking is that this costs little next to what a
developer would write by hand for the same page: one SQL statement producing
the same JSON, returned as bytes from a Starlette route. Both are served by the
same uvicorn process, from the same application and the same engine, so the
only difference between the two targets is the request path through Qiao.

The server runs in its own process (one uvicorn worker, as deployed), and the
load comes from this process through a minimal HTTP/1.1 keep-alive client on
raw asyncio sockets: a heavier client (httpx) would compete with the server for
the machine's cores and flatten the difference being measured. Rounds
alternate the two targets so that drift on the machine affects both alike.

Run ``python bench/graphql_list.py --help`` for the options; ``--quick`` is a
smoke test that finishes in well under half a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from serving import DEFAULT_POSTGRES_ADMIN_URL, database, server_process

PAGE = 50

QUERY = (
    f"query OpportunityList {{ opportunities(first: {PAGE}) {{ edges {{ node {{"
    " id name amount stage account { id name } owner { id displayName } } } } }"
)

# The hand-written statements: what a developer would write for this one page,
# with the same fields, order and formatting as the GraphQL answer (amounts are
# strings with two decimals; SQLite stores them as integers scaled by 100).
RAW_SQL = {
    "sqlite": f"""
SELECT json_object('data', json_object('opportunities', json_object('edges',
  json_group_array(json_object('node', json_object(
    'id', p.id,
    'name', p.name,
    'amount', CASE WHEN p.amount IS NULL THEN NULL ELSE printf('%s%d.%02d',
      CASE WHEN p.amount < 0 THEN '-' ELSE '' END, abs(p.amount) / 100, abs(p.amount) % 100) END,
    'stage', p.stage,
    'account', CASE WHEN p.account_id IS NULL THEN NULL
      ELSE json_object('id', p.account_id, 'name', p.account_name) END,
    'owner', CASE WHEN p.owner_id IS NULL THEN NULL
      ELSE json_object('id', p.owner_id, 'displayName', p.owner_name) END
  )))
)))
FROM (
  SELECT o.id, o.name, o.amount, o.stage,
         a.id AS account_id, a.name AS account_name,
         u.id AS owner_id, u.display_name AS owner_name
  FROM opportunity AS o
  LEFT JOIN account AS a ON a.id = o.account_id
  LEFT JOIN "user" AS u ON u.id = o.owner_id
  ORDER BY o.id
  LIMIT {PAGE}
) AS p
""",
    "postgresql": f"""
SELECT json_build_object('data', json_build_object('opportunities', json_build_object('edges',
  coalesce(json_agg(json_build_object('node', json_build_object(
    'id', p.id,
    'name', p.name,
    'amount', p.amount::text,
    'stage', p.stage,
    'account', CASE WHEN p.account_id IS NULL THEN NULL
      ELSE json_build_object('id', p.account_id, 'name', p.account_name) END,
    'owner', CASE WHEN p.owner_id IS NULL THEN NULL
      ELSE json_build_object('id', p.owner_id, 'displayName', p.owner_name) END
  )) ORDER BY p.id), '[]'::json)
)))::text
FROM (
  SELECT o.id, o.name, o.amount, o.stage,
         a.id AS account_id, a.name AS account_name,
         u.id AS owner_id, u.display_name AS owner_name
  FROM opportunity AS o
  LEFT JOIN account AS a ON a.id = o.account_id
  LEFT JOIN "user" AS u ON u.id = o.owner_id
  ORDER BY o.id
  LIMIT {PAGE}
) AS p
""",
}

STAGES = ("QUALIFICATION", "NEEDS_ANALYSIS", "PROPOSAL", "NEGOTIATION", "CLOSED_WON", "CLOSED_LOST")


# -- Database set-up --------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    """What the server and the load generator need from a seeded database."""

    url: str
    token: str


def seed(url: str, rows: int) -> Seeded:
    """Migrate a fresh database and fill it with ``rows`` opportunities.

    Rows go through the records service, as an application's would, so the
    tables hold exactly what Qiao itself writes (scaled decimals, ids, defaults).
    """
    from qiao.core.auth.tokens import create_token
    from qiao.core.config import Config
    from qiao.core.records.context import Actor, Source
    from qiao.core.runtime import Runtime

    rt = Runtime(Config(database_url=url, plugins=("crm",)))
    try:
        rt.migrate()
        rng = random.Random(20261126)
        records = rt.records
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            records.create(
                ctx, "user", {"username": "admin", "display_name": "Admin", "is_admin": True}
            )
            owners = [
                records.create(
                    ctx, "user", {"username": f"rep{i:03d}", "display_name": f"Sales rep {i}"}
                )["id"]
                for i in range(max(2, rows // 100))
            ]
            accounts = [
                records.create(ctx, "account", {"name": f"Account {i:05d}"})["id"]
                for i in range(max(2, rows // 10))
            ]
            for i in range(rows):
                records.create(
                    ctx,
                    "opportunity",
                    {
                        "name": f"Opportunity {i:06d}",
                        "account": rng.choice(accounts),
                        "owner": rng.choice(owners),
                        "stage": rng.choice(STAGES),
                        "amount": f"{rng.randint(0, 5_000_000)}.{rng.randint(0, 99):02d}",
                    },
                )
            token = create_token(ctx.connection, rt.current(), "admin")
    finally:
        rt.close()
    return Seeded(url=url, token=token)


# -- The server process -----------------------------------------------------------------------


def build_app(url: str, token: str) -> Any:
    """Qiao's own application plus the hand-written route, sharing one runtime and engine."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from qiao.core.app import create_app
    from qiao.core.config import Config
    from qiao.core.runtime import Runtime

    runtime = Runtime(Config(database_url=url, plugins=("crm",)))
    app = create_app(runtime)
    db = runtime.db
    sql = RAW_SQL[db.dialect]
    expected = f"Bearer {token}"

    # A plain function endpoint: Starlette runs it in its thread pool, which is how a
    # hand-written route over synchronous database access would be served.
    def raw_opportunities(request: Request) -> Response:
        if not hmac.compare_digest(request.headers.get("authorization", ""), expected):
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        with db.read() as conn:
            body = conn.exec_driver_sql(sql).scalar_one()
        return Response(body.encode(), media_type="application/json")

    # Appended last, so Qiao's /graphql is matched first and pays no extra routing.
    app.router.routes.append(Route("/raw/opportunities", raw_opportunities, methods=["GET"]))
    return app


# -- Load generation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One endpoint under load, as the exact request bytes sent on every iteration."""

    name: str
    request: bytes


def targets(port: int, token: str) -> list[Target]:
    host = f"127.0.0.1:{port}"
    body = json.dumps({"query": QUERY}).encode()
    graphql = (
        f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    raw = (
        f"GET /raw/opportunities HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    return [Target("qiao", graphql), Target("raw", raw)]


def check_same_answer(port: int, token: str) -> int:
    """Both targets must return the same JSON; returns the response size in bytes."""
    headers = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(headers=headers, timeout=30) as client:
        qiao = client.post(f"{base}/graphql", json={"query": QUERY})
        raw = client.get(f"{base}/raw/opportunities")
    qiao.raise_for_status()
    raw.raise_for_status()
    qiao_json, raw_json = qiao.json(), raw.json()
    edges = qiao_json["data"]["opportunities"]["edges"]
    assert len(edges) == PAGE, f"expected {PAGE} opportunities, got {len(edges)}"
    assert qiao_json == raw_json, "the GraphQL answer and the hand-written route differ"
    return len(qiao.content)


async def _connection(port: int, request: bytes, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done = 0
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            await reader.readexactly(length)
            if status != b"200":
                raise RuntimeError(f"the server answered {status.decode()}")
            done += 1
    finally:
        counts.append(done)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _load(port: int, target: Target, seconds: float, concurrency: int) -> float:
    counts: list[int] = []
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(_connection(port, target.request, deadline, counts) for _ in range(concurrency))
    )
    return sum(counts) / (time.perf_counter() - start)


def load(port: int, target: Target, seconds: float, concurrency: int) -> float:
    """Requests per second of ``target`` with ``concurrency`` keep-alive connections."""
    return asyncio.run(_load(port, target, seconds, concurrency))


# -- Driver -----------------------------------------------------------------------------------


@dataclass
class Result:
    """Per-round rates of each target on one backend."""

    backend: str
    response_bytes: int
    rounds: dict[str, list[float]] = field(default_factory=dict)

    def median(self, target: str) -> float:
        return statistics.median(self.rounds[target])

    @property
    def ratio(self) -> float:
        return self.median("qiao") / self.median("raw")


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> Result:
    with database(backend, workdir, args.postgres_url) as url:
        started = time.perf_counter()
        seeded = seed(url, args.rows)
        print(
            f"[{backend}] seeded {args.rows} opportunities in {time.perf_counter() - started:.1f} s"
        )
        with server_process(build_app, seeded.url, seeded.token) as port:
            size = check_same_answer(port, seeded.token)
            print(f"[{backend}] both targets return the same JSON ({size} bytes)")
            result = Result(backend, size, {"qiao": [], "raw": []})
            pair = targets(port, seeded.token)
            for target in pair:
                load(port, target, args.warmup, args.concurrency)
            for i in range(args.rounds):
                # Alternate which target goes first, so neither always follows the other.
                for target in pair if i % 2 == 0 else pair[::-1]:
                    rate = load(port, target, args.seconds, args.concurrency)
                    result.rounds[target.name].append(rate)
                print(
                    f"[{backend}] round {i + 1}/{args.rounds}: "
                    f"qiao {result.rounds['qiao'][-1]:8.0f} req/s   "
                    f"raw {result.rounds['raw'][-1]:8.0f} req/s"
                )
    return result


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(
        f"opportunities(first: {PAGE}) with account and owner; {args.rows} rows; "
        f"{args.rounds} rounds x {args.seconds:g} s; concurrency {args.concurrency}; "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}"
    )
    header = f"{'backend':<11} {'target':<6} {'median req/s':>12}   per-round req/s"
    print(header)
    print("-" * max(len(header), 60))
    for r in results:
        for name in ("qiao", "raw"):
            rounds = " ".join(f"{x:6.0f}" for x in r.rounds[name])
            print(f"{r.backend:<11} {name:<6} {r.median(name):12.0f}   {rounds}")
        print(f"{r.backend:<11} {'ratio':<6} {r.ratio:12.2f}   qiao / raw (aim: >= 0.80)")
    print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rows", type=int, default=5000, help="opportunities to seed")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per target")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per target")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("QIAO_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL),
        help="server URL whose user may create and drop databases",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run: few rows, three 1 s rounds"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.seconds, args.rounds, args.warmup = 300, 1.0, 3, 0.3
    if args.rows < PAGE:
        parser.error(f"--rows must be at least {PAGE}, the page size")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    with tempfile.TemporaryDirectory(prefix="qiao-bench-") as tmp:
        for backend in backends:
            results.append(run_backend(backend, args, Path(tmp)))
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
