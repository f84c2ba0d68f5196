"""Lead capture speed on PostgreSQL: a 100,000-row .xlsx import, and the signed webhook.

1. Import: a generated .xlsx (every tenth row repeats an earlier row's phone)
   imported through the records service in 500-row batches (``create_many``),
   audited, tagged, de-duplicated and routed. Before printing, it checks that
   the import created one lead per distinct phone and reported every repeat as
   a duplicate, and that the database holds exactly those leads. Compared with
   the bare read of the same file by python-calamine (what the importer reads
   with) and by openpyxl, each timed in a process of its own. Aim: the import
   within 2x the bare read.
2. Webhook: signed Standard Webhooks requests to ``qiao serve`` (a subprocess on
   the deployment's configuration file, its event worker included; ``--workers``
   passes on) on 127.0.0.1 from 8 concurrent clients (threads of another process); each
   answer comes after the lead is committed, tagged (jieba + dictionary),
   checked for duplicates and assigned by a round-robin rule. Every fifth
   request repeats the phone of the request 201 before it. Before printing, it
   checks that every request stored one lead and that every repeat, and
   nothing else, was marked as a duplicate. Prints leads/s, p50 and p99.
   Aim: 500 leads/s at p99 under 100 ms.

    .venv/bin/python bench/leads.py [--quick] [--rows 100000] [--requests 4000] [--repeat 3]
                                    [--only webhook|import] [--workers N] [--worker-process]

``--requests 0`` leaves the webhook out (the import alone).

Each run uses a new PostgreSQL database (``--postgres-url``, default the local
server), dropped afterwards; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import openpyxl
import tomli_w
from serving import free_port, qiao, stop, wait_answering
from sqlalchemy import create_engine, func, select, text

from qiao.core import audit
from qiao.core.collector import tune_for_service
from qiao.core.config import CONFIG_FILE, Config
from qiao.core.crypto import generate_key_file
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage.database import normalise_url
from qiao.plugins.leads.importing.runner import Importer
from qiao.plugins.leads.inbound.signatures import sign

TEXTS = ("急需液压阀样品", "想了解五轴加工中心报价", "只是看看", "液压站改造，预算20万")
CLIENTS = 8
#: A repeated phone is that of the request this many before, committed well before it
#: (and not a repeat itself: the gap is no multiple of 5).
GAP = 201
#: Calls sent before the timed ones, so that the server's first-use loading (the intent
#: dictionary, prepared statements, schema) is not counted as the webhook's cost.
WARM_UP = 2 * CLIENTS
#: The bare reads, each run in a process of its own: (label, script reading argv[1]).
BARE_READS = {
    "calamine": (
        "import sys, time; from python_calamine import CalamineWorkbook\n"
        "t = time.perf_counter(); book = CalamineWorkbook.from_path(sys.argv[1])\n"
        "rows = book.get_sheet_by_index(0).to_python()\n"
        "assert len(rows) > 1; print(time.perf_counter() - t)"
    ),
    "openpyxl": (
        "import sys, time, openpyxl\n"
        "t = time.perf_counter(); book = openpyxl.load_workbook(sys.argv[1], read_only=True)\n"
        "rows = list(book.worksheets[0].iter_rows(values_only=True))\n"
        "assert len(rows) > 1; print(time.perf_counter() - t)"
    ),
}


@contextmanager
def deployment(admin_url: str, folder: Path) -> Iterator[Runtime]:
    """A migrated, audit-keyed deployment of crm and leads on a new PostgreSQL database."""
    name = f"qiao_bench_leads_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "qiao-kek.json"
    generate_key_file(key_file)
    settings = {
        "database": {"url": admin_url.rsplit("/", 1)[0] + "/" + name},
        "plugins": {"enabled": ["crm", "leads"]},
        "keys": {"provider": "file", "file": str(key_file)},
        "audit": {"key_file": str(key_file)},
    }
    path = folder / CONFIG_FILE
    path.write_text(tomli_w.dumps(settings), encoding="utf-8")
    runtime = Runtime(Config.load(path, env={}))
    try:
        runtime.migrate()
        audit.initialize(runtime, existing_ok=True)
        runtime.plugins.startup(runtime)
        yield runtime
    finally:
        runtime.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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


def lead_counts(runtime: Runtime) -> tuple[int, int, int]:
    """(leads, leads marked as duplicates, leads with an owner) in the database."""
    leads = runtime.current().table("lead")
    with runtime.db.read() as conn:
        return (
            conn.execute(select(func.count()).select_from(leads)).scalar_one(),
            conn.execute(
                select(func.count()).where(leads.c.duplicate_matches.is_not(None))
            ).scalar_one(),
            conn.execute(select(func.count()).where(leads.c.owner_id.is_not(None))).scalar_one(),
        )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


# -- The webhook ----------------------------------------------------------------------------


def repeats(i: int) -> bool:
    """Whether webhook request ``i`` repeats an earlier request's phone (every fifth)."""
    return i > GAP and i % 5 == 4


def send_webhooks(
    base_url: str, path: str, secret: str, requests: int, warm_up: bool = False
) -> tuple[list[float], list[str], float]:
    """``requests`` signed calls from :data:`CLIENTS` concurrent clients, as a sender's
    machine makes them: (latencies, failures, seconds from first call to last answer).
    Warm-up calls have phones and webhook-ids of their own.

    Run in a process of its own, so that the clients do not share the server's
    interpreter (and its GIL) as no real sender does.
    """
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    prefix = "1380574" if warm_up else "1390574"

    def client(number: int) -> None:
        mine = []
        with httpx.Client(base_url=base_url, timeout=30) as http:
            for i in range(number, requests, CLIENTS):
                phone = i - GAP if repeats(i) else i  # i - GAP repeats no one itself
                body = json.dumps(
                    {"姓名": f"客户{i}", "手机": f"{prefix}{phone:04d}", "留言": TEXTS[i % 4]},
                    ensure_ascii=False,
                ).encode()
                stamp = str(int(time.time()))
                message = f"{'warm' if warm_up else 'msg'}_{i}"
                headers = {
                    "webhook-id": message,
                    "webhook-timestamp": stamp,
                    "webhook-signature": sign(secret, message, stamp, body),
                }
                t0 = time.perf_counter()
                answer = http.post(path, content=body, headers=headers)
                mine.append(time.perf_counter() - t0)
                if answer.status_code != 201:
                    failures.append(f"{answer.status_code} {answer.text}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures, time.perf_counter() - started


def bench_webhook(
    runtime: Runtime, folder: Path, requests: int, workers: int, worker_process: bool
) -> tuple[float, float, float]:
    """(leads/s, p50 s, p99 s) of ``requests`` webhook calls from 8 concurrent clients in
    another process, answered by ``qiao serve`` on the deployment's own configuration
    file, as a user runs it: with its event worker in a thread, or, with
    ``worker_process``, ``serve --no-worker`` beside a ``qiao worker`` process (the Helm
    chart's shape)."""
    channel = seed_rules(runtime)
    path = f"/leads/webhooks/{channel['key']}"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = folder / "serve.log"
    spawn = multiprocessing.get_context("spawn")
    serve = ["serve", "--port", str(port), "--workers", str(workers)]
    with log_path.open("wb") as log:
        config = folder / CONFIG_FILE
        server = qiao(config, [*serve, "--no-worker"] if worker_process else serve, log)
        processes = [server, *([qiao(config, ["worker"], log)] if worker_process else [])]
        try:
            wait_answering(server, base_url, log_path)
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as senders:
                warm = senders.submit(
                    send_webhooks, base_url, path, str(channel["secret"]), WARM_UP, True
                )
                warm_failures = warm.result()[1]
                assert not warm_failures, warm_failures[:3]
                sent = senders.submit(
                    send_webhooks, base_url, path, str(channel["secret"]), requests
                )
                latencies, failures, elapsed = sent.result()
        finally:
            stop(processes)
    assert not failures, failures[:3]
    stored, duplicates, owned = lead_counts(runtime)
    expected = sum(1 for i in range(requests) if repeats(i))
    calls = requests + WARM_UP
    assert stored == calls, f"{stored} leads stored for {calls} requests"
    assert duplicates == expected, f"{duplicates} leads marked as duplicates, not {expected}"
    assert owned == calls, f"{owned} of {calls} leads were assigned"
    return requests / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99)


# -- The import -----------------------------------------------------------------------------


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


def expected_import(rows: int) -> tuple[int, int]:
    """(leads created, duplicates reported) for :func:`make_xlsx`'s rows."""
    phones = [i if i % 10 else i // 2 for i in range(rows)]
    distinct = len(set(phones))
    return distinct, rows - distinct


def bare_read(kind: str, path: Path) -> float:
    """Seconds ``kind`` takes to read every row of ``path``, timed in its own process."""
    done = subprocess.run(
        [sys.executable, "-c", BARE_READS[kind], str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.strip())


def bench_import(admin_url: str, folder: Path, rows: int, repeat: int) -> dict[str, float]:
    data = make_xlsx(rows)
    sheet = folder / "show.xlsx"
    sheet.write_bytes(data)
    created, duplicates = expected_import(rows)
    reads: dict[str, list[float]] = {kind: [] for kind in BARE_READS}
    imports: list[float] = []
    for attempt in range(repeat):
        for kind in BARE_READS:
            reads[kind].append(bare_read(kind, sheet))
        with deployment(admin_url, folder / f"import{attempt}") as runtime:
            seed_rules(runtime)
            t0 = time.perf_counter()
            outcome = Importer(runtime, Actor.system()).run(data, "show.xlsx", "lead")
            imports.append(time.perf_counter() - t0)
            assert (outcome.created, outcome.duplicates, outcome.errors) == (
                created,
                duplicates,
                0,
            ), outcome
            stored, _, owned = lead_counts(runtime)
            assert stored == created and owned == created, (stored, owned)
    return {
        "import": statistics.median(imports),
        **{kind: statistics.median(times) for kind, times in reads.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 800 requests, once")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=4000, help="webhook calls; 0: no webhook")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("webhook", "import"), help="run this part alone")
    parser.add_argument(
        "--workers", type=int, default=1, help="qiao serve --workers for the webhook"
    )
    parser.add_argument(
        "--worker-process",
        action="store_true",
        help="serve --no-worker beside a qiao worker process, as the Helm chart runs them",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "QIAO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    tune_for_service()  # the import runs in this process, set as 'qiao import' runs it
    if args.quick:
        args.rows, args.requests, args.repeat = 10_000, 800, 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"load average {os.getloadavg()[0]:.1f}; PostgreSQL; {args.repeat} run(s) each")
        if args.only != "import" and args.requests:
            webhook(args, folder)
        if args.only != "webhook":
            imports(args, folder)


def webhook(args: argparse.Namespace, folder: Path) -> None:
    """The webhook part, ``args.repeat`` times: medians, and the load average after it."""
    speeds, p50s, p99s = [], [], []
    for attempt in range(args.repeat):
        with deployment(args.postgres_url, folder / f"hook{attempt}") as runtime:
            speed, p50, p99 = bench_webhook(
                runtime, folder / f"hook{attempt}", args.requests, args.workers, args.worker_process
            )
        speeds.append(speed)
        p50s.append(p50)
        p99s.append(p99)
    print(
        f"webhook, qiao serve --workers {args.workers}"
        f"{' --no-worker and qiao worker' if args.worker_process else ''}, "
        f"{CLIENTS} concurrent clients, "
        f"{args.requests} requests (stored, tagged, de-duplicated, assigned; checked): median "
        f"{statistics.median(speeds):.0f} leads/s, "
        f"p50 {statistics.median(p50s) * 1000:.1f} ms, "
        f"p99 {statistics.median(p99s) * 1000:.1f} ms (aim: 500 leads/s, p99 < 100 ms); "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def imports(args: argparse.Namespace, folder: Path) -> None:
    """The import part, ``args.repeat`` times: medians, against the bare reads."""
    created, duplicates = expected_import(args.rows)
    times = bench_import(args.postgres_url, folder, args.rows, args.repeat)
    print(
        f"import {args.rows} rows ({created} created, {duplicates} duplicates reported; "
        f"checked): median {times['import']:.1f} s ({args.rows / times['import']:.0f} rows/s)"
    )
    for kind in BARE_READS:
        print(
            f"  bare {kind} read {times[kind]:.2f} s; import / read "
            f"{times['import'] / times[kind]:.1f}x (aim: 2x)"
        )


if __name__ == "__main__":
    main()
