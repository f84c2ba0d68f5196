"""Lead capture speed: signed webhook to stored lead, and a 100,000-row .xlsx import.

1. Webhook: signed Standard Webhooks requests to a real uvicorn server on
   127.0.0.1, one at a time; each answer comes after the lead is committed,
   tagged (jieba + dictionary), checked for duplicates and assigned by a
   round-robin rule. Prints p50/p99 latency and leads per second.
2. Import: a generated .xlsx (10 % duplicate phones) imported through the
   records service in 500-row batches, against the time merely to read the
   file with python-calamine. Prints both medians and their ratio.

    .venv/bin/python bench/leads.py [--rows 100000] [--requests 2000] [--repeat 3]

SQLite in a temporary folder; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import openpyxl

from qiao.core.app import create_app
from qiao.core.config import Config
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.server import LiveServer
from qiao.plugins.leads.importing.reader import read_table
from qiao.plugins.leads.importing.runner import Importer
from qiao.plugins.leads.inbound.signatures import sign

TEXTS = ("急需液压阀样品", "想了解五轴加工中心报价", "只是看看", "液压站改造，预算20万")


def runtime_at(folder: Path) -> Runtime:
    config = Config(database_url=f"sqlite:///{folder / 'bench.db'}", plugins=("crm", "leads"))
    runtime = Runtime(config)
    runtime.migrate()
    runtime.plugins.startup(runtime)
    return runtime


def seed_rules(runtime: Runtime) -> dict[str, object]:
    records = runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        team = records.create(ctx, "team", {"name": "华东", "region": "华东"})
        for i in range(5):
            records.create(
                ctx, "user", {"username": f"rep{i}", "display_name": f"销售{i}", "team": team["id"]}
            )
        records.create(
            ctx,
            "lead_assignment_rule",
            {"name": "轮流", "strategy": "ROUND_ROBIN", "team": team["id"]},
        )
        return records.create(ctx, "lead_channel", {"name": "hook", "kind": "WEBHOOK"})


def bench_webhook(runtime: Runtime, requests: int) -> None:
    channel = seed_rules(runtime)
    latencies = []
    with LiveServer(create_app(runtime)) as server, httpx.Client(base_url=server.url) as http:
        started = time.perf_counter()
        for i in range(requests):
            body = json.dumps(
                {"姓名": f"客户{i}", "手机": f"1390574{i % 10000:04d}", "留言": TEXTS[i % 4]},
                ensure_ascii=False,
            ).encode()
            stamp = str(int(time.time()))
            headers = {
                "webhook-id": f"msg_{i}",
                "webhook-timestamp": stamp,
                "webhook-signature": sign(str(channel["secret"]), f"msg_{i}", stamp, body),
            }
            t0 = time.perf_counter()
            answer = http.post(f"/leads/webhooks/{channel['key']}", content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            assert answer.status_code == 201, answer.text
        elapsed = time.perf_counter() - started
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(
        f"webhook -> stored, tagged, assigned: {requests} requests, p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, {requests / elapsed:.0f} leads/s (one client, sequential)"
    )


def make_xlsx(rows: int) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("签到表")
    sheet.append(["姓名", "手机", "公司", "省份", "行业", "来源", "备注"])
    for i in range(rows):
        phone = 13800000000 + (i if i % 10 else i // 2)  # every tenth row repeats a phone
        sheet.append(
            [f"客户{i}", phone, f"宁波{i}机械有限公司", "浙江", "机械", "展会", TEXTS[i % 4]]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def bench_import(folder: Path, rows: int, repeat: int) -> None:
    data = make_xlsx(rows)
    reads, imports = [], []
    for attempt in range(repeat):
        t0 = time.perf_counter()
        read_table(data, "show.xlsx", lambda h: h in {"姓名", "手机", "公司"})
        reads.append(time.perf_counter() - t0)
        runtime = runtime_at(folder / f"import{attempt}")
        t0 = time.perf_counter()
        outcome = Importer(runtime, Actor.system()).run(data, "show.xlsx", "lead")
        imports.append(time.perf_counter() - t0)
        runtime.close()
    read, imported = statistics.median(reads), statistics.median(imports)
    print(
        f"import {rows} rows ({outcome.created} created, {outcome.duplicates} duplicates "
        f"reported): median {imported:.1f} s ({rows / imported:.0f} rows/s); "
        f"reading alone {read:.2f} s; ratio {imported / read:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "hook").mkdir()
        runtime = runtime_at(folder / "hook")
        bench_webhook(runtime, args.requests)
        runtime.close()
        for attempt in range(args.repeat):
            (folder / f"import{attempt}").mkdir()
        bench_import(folder, args.rows, args.repeat)


if __name__ == "__main__":
    main()
