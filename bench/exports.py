"""Export speed and memory: the same list at two sizes, as CSV and as xlsx.

Opportunities are seeded through the records service on SQLite in a temporary
folder, then exported as an administrator through ``qiao.core.exports`` (the
code behind ``POST /export/{entity}`` and ``qiao export``), written to a file.
Each export is timed, and run again under tracemalloc for its peak of Python
memory: streaming means the peak stays flat while the rows grow. Every file is
read back and its rows counted before any figure is printed.

    .venv/bin/python bench/exports.py [--small 5000] [--large 20000]
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
import tracemalloc
from pathlib import Path

from openpyxl import load_workbook

from qiao.core.config import Config
from qiao.core.exports.export import Export, ExportRequest
from qiao.core.graphql.service import GraphQLService
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

ADMIN = Actor.system()


def seed(runtime: Runtime, account: str, start: int, stop: int) -> None:
    records = runtime.records
    with records.transaction(ADMIN, Source.SYSTEM) as ctx:
        for i in range(start, stop):
            records.create(
                ctx,
                "opportunity",
                {
                    "name": f"五轴加工中心 {i:06d}",
                    "account": account,
                    "stage": "PROPOSAL",
                    "amount": f"{1000 + i}.50",
                    "probability": i % 100,
                },
            )


def export_once(runtime: Runtime, service: GraphQLService, format: str, out: Path) -> float:
    started = time.perf_counter()
    export = Export(
        runtime, service.schema(), ADMIN, ExportRequest("opportunity", format), Source.CLI
    )
    with out.open("wb") as file:
        for chunk in export.chunks():
            file.write(chunk)
    return time.perf_counter() - started


def peak_bytes(runtime: Runtime, service: GraphQLService, format: str, out: Path) -> int:
    tracemalloc.start()
    try:
        export_once(runtime, service, format, out)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def rows_in(path: Path, format: str) -> int:
    if format == "csv":
        return len(list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))) - 1
    book = load_workbook(path, read_only=True)
    try:
        return sum(1 for _ in book.active.iter_rows(values_only=True)) - 1
    finally:
        book.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=5000)
    parser.add_argument("--large", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = Config(database_url=f"sqlite:///{Path(folder) / 'bench.db'}", plugins=("crm",))
        runtime = Runtime(config)
        runtime.migrate()
        runtime.start()
        service = GraphQLService(runtime)
        service.schema()  # built once, as a running server has it, outside the timings
        with runtime.records.transaction(ADMIN, Source.SYSTEM) as ctx:
            account = runtime.records.create(ctx, "account", {"name": "苏州精密机床"})["id"]
        results = []
        seeded = 0
        for size in (args.small, args.large):
            seed(runtime, account, seeded, size)
            seeded = size
            for format in ("csv", "xlsx"):
                out = Path(folder) / f"export-{size}.{format}"
                seconds = export_once(runtime, service, format, out)
                peak = peak_bytes(runtime, service, format, out)
                found = rows_in(out, format)
                if found != size:
                    raise SystemExit(f"{format} export of {size} rows holds {found}")
                results.append((size, format, seconds, peak, out.stat().st_size))
        runtime.close()
    print(f"{'rows':>8} {'format':>6} {'seconds':>8} {'rows/s':>8} {'peak MiB':>9} {'file KiB':>9}")
    for size, format, seconds, peak, file_size in results:
        print(
            f"{size:>8} {format:>6} {seconds:>8.2f} {size / seconds:>8.0f} "
            f"{peak / 2**20:>9.1f} {file_size / 1024:>9.0f}"
        )


if __name__ == "__main__":
    main()
