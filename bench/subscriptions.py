"""Delay from a write to its delivery to GraphQL subscribers, by number of subscribers.

A deployment made by ``qiao init`` on a fresh PostgreSQL database is served by
two ``qiao serve`` processes (no event worker). ``--subscribers`` WebSocket
connections, split between the two, each subscribe to ``contactChanged`` with
a filter; then this process creates ``--writes`` matching contacts through
the first server's ``POST /graphql``, one at a time, ``--pause`` seconds
apart. The delay of a delivery is its arrival time minus the time the write's
request was sent (one clock: this process's ``time.monotonic``), so it holds
the mutation itself, the NOTIFY, the subscription's feed read and its read of
the record as the subscriber. The subscribers and the writer share this
process's event loop.

Before any figure, every subscriber must have received every write exactly
once, as CREATED with the record. Prints, per subscriber count, the median and
p99 delay, and the mutation's own median for comparison. ``--quick`` is a
smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from serving import database
from websockets.asyncio.client import connect

from qiao.core.testing.deployment import Deployment, init

SUBSCRIBE = """subscription($filter: ContactFilter) {
  contactChanged(filter: $filter) { operation id record { name mobile } }
}"""
CREATE = "mutation($input: ContactCreateInput!) { createContact(input: $input) { id } }"


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def subscriber(
    url: str, token: str, ready: asyncio.Event, arrivals: dict[str, float], expected: int
) -> None:
    """One connection: subscribe, then note when each change arrives until ``expected``."""
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": SUBSCRIBE, "variables": {"filter": {"name": {"startsWith": "压测"}}}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        await ws.send(json.dumps({"type": "ping"}))  # answered once the subscription is live
        assert json.loads(await ws.recv())["type"] == "pong"
        ready.set()
        while len(arrivals) < expected:
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert message["type"] == "next", message
            change = message["payload"]["data"]["contactChanged"]
            assert change["operation"] == "CREATED" and change["record"]["mobile"], change
            assert change["id"] not in arrivals, f"{change['id']} delivered twice"
            arrivals[change["id"]] = time.monotonic()


async def run(bases: list[str], token: str, subscribers: int, writes: int, pause: float) -> None:
    arrivals: list[dict[str, float]] = [{} for _ in range(subscribers)]
    readies = [asyncio.Event() for _ in range(subscribers)]
    tasks = [
        asyncio.create_task(
            subscriber(
                bases[i % len(bases)].replace("http://", "ws://") + "/graphql",
                token,
                readies[i],
                arrivals[i],
                writes,
            )
        )
        for i in range(subscribers)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    sent: dict[str, float] = {}
    mutation: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=bases[0], headers=headers, timeout=30) as http:
        for n in range(writes):
            began = time.monotonic()
            variables = {"input": {"name": f"压测{n}", "mobile": "13812345678"}}
            answer = await http.post("/graphql", json={"query": CREATE, "variables": variables})
            mutation.append(time.monotonic() - began)
            sent[answer.json()["data"]["createContact"]["id"]] = began
            await asyncio.sleep(pause)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    delays = []
    for got in arrivals:
        assert set(got) == set(sent), "a subscriber missed a write"
        delays += [(got[i] - sent[i]) * 1000 for i in sent]
    print(
        f"{subscribers:>11} {len(delays):>10} {statistics.median(delays):>10.1f} "
        f"{p99(delays):>8.1f} {statistics.median(mutation) * 1000:>12.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 10, 50, 200])
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--pause", type=float, default=0.05)
    parser.add_argument("--quick", action="store_true", help="1 and 5 subscribers, 10 writes")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "QIAO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    if args.quick:
        args.subscribers, args.writes = [1, 5], 10
    with (
        tempfile.TemporaryDirectory() as tmp,
        database("postgresql", Path(tmp), args.postgres_url) as url,
    ):
        site: Deployment = init(Path(tmp) / "site", url)
        token = site.run("token", "create", "--user", "admin", "--name", "bench").stdout.strip()
        with site.serve("--no-worker") as first, site.serve("--no-worker") as second:
            print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; two server processes")
            print(
                f"{'subscribers':>11} {'deliveries':>10} {'median ms':>10} {'p99 ms':>8} "
                f"{'mutation ms':>12}"
            )
            for count in args.subscribers:
                asyncio.run(run([first.url, second.url], token, count, args.writes, args.pause))


if __name__ == "__main__":
    sys.exit(main())
