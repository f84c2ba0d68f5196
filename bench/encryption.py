"""Cost of encrypted fields, and backup throughput.

1. Writes and reads: records with five encrypted fields (three searchable)
   against the same entity with the five fields in plain text (the three
   searchable ones indexed, so both variants can look them up by equality), in
   one run, on one SQLite database: creates through the records service (one transaction per
   100 records), then list pages of 100 read back through the service.
   Prints the medians and the ratio encrypted/plain (the aim is <= 1.3x for writes,
   <= 2x for reads), and the median and p99 of one page of 100. Before timing, it
   checks that the sealed entity stores sealed values and reads them back opened.
2. Backup: ``backup.create`` of the whole database (SQLite online backup API,
   SM4-GCM stream), in MB of plaintext per second.

    .venv/bin/python bench/encryption.py [--rows 5000] [--repeat 3]

SQLite in a temporary folder; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import tomli_w
import yaml

from qiao.core import audit
from qiao.core.config import CONFIG_FILE, Config
from qiao.core.crypto import generate_key_file, is_sealed
from qiao.core.encryption import backup
from qiao.core.hookmarkers import hookimpl
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

FIELDS = [
    ("phone", "phone", True),
    ("email", "email", True),
    ("id_number", "string", True),
    ("diagnosis", "string", False),
    ("notes", "text", False),
]


def manifest(folder: Path) -> Path:
    def entity(name: str, encrypted: bool) -> dict[str, Any]:
        fields = [{"name": "name", "type": "string", "label": {"en": "Name"}}]
        for field, kind, searchable in FIELDS:
            spec: dict[str, Any] = {"name": field, "type": kind, "label": {"en": field}}
            if encrypted:
                spec["encrypted"] = True
                if searchable:
                    spec["searchable"] = "exact"
            elif searchable:
                spec["indexed"] = True  # looked up by equality in both variants
            fields.append(spec)
        return {"name": name, "plural": name + "s", "label": {"en": name}, "fields": fields}

    path = folder / "bench.yaml"
    data = {"entities": [entity("sealed_patient", True), entity("plain_patient", False)]}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


class Entities:
    def __init__(self, path: Path) -> None:
        self.path = path

    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [self.path]


def runtime_at(folder: Path) -> Runtime:
    """A deployment as ``qiao init`` makes one: its key file wraps the data keys and the
    audit key, so every write is audited as on a user's deployment."""
    generate_key_file(folder / "qiao-kek.json")
    settings = {
        "database": {"url": f"sqlite:///{folder / 'bench.db'}"},
        "plugins": {"enabled": []},
        "keys": {"provider": "file", "file": "qiao-kek.json"},
        "audit": {"key_file": "qiao-kek.json"},
    }
    toml = folder / CONFIG_FILE
    toml.write_text(tomli_w.dumps(settings), encoding="utf-8")
    runtime = Runtime(Config.load(toml, env={}), extra_plugins=[Entities(manifest(folder))])
    runtime.migrate()
    audit.initialize(runtime, existing_ok=True)
    runtime.start()
    return runtime


def values(i: int) -> dict[str, Any]:
    """Record ``i``; its phone, e-mail and id number in no particular order, as real ones
    arrive (sequential values would favour the plain variant's indexes)."""
    scattered = i * 7_919_993 % 10**8  # a permutation of 0 .. 10**8 - 1
    return {
        "name": f"患者{i}",
        "phone": f"138{scattered:08d}",
        "email": f"patient{scattered}@example.cn",
        "id_number": f"110105{scattered:012d}",
        "diagnosis": "高血压，需定期复查" * 2,
        "notes": "每日早晚各测一次血压，记录后复诊时带来。" * 4,
    }


def write(runtime: Runtime, entity: str, rows: int, offset: int) -> float:
    records = runtime.records
    started = time.perf_counter()
    for start in range(0, rows, 100):
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            for i in range(start, min(start + 100, rows)):
                records.create(ctx, entity, values(offset + i))
    return time.perf_counter() - started


def read(runtime: Runtime, entity: str, pages: list[float]) -> tuple[float, int]:
    """Seconds to list every record of ``entity`` in pages of 100, and how many were read;
    each page's seconds are added to ``pages``."""
    records = runtime.records
    count = 0
    started = time.perf_counter()
    with runtime.db.read() as conn:
        after = None
        while True:
            page_started = time.perf_counter()
            page = records.list(conn, entity, first=100, after=after, actor=Actor.system())
            pages.append(time.perf_counter() - page_started)
            count += len(page.records)
            if not page.has_next_page:
                break
            after = page.cursors[-1]
    return time.perf_counter() - started, count


def check(runtime: Runtime) -> None:
    """Refuse to time anything unless the sealed entity stores sealed values and reads
    them back opened, and the plain one stores plaintext."""
    write(runtime, "plain_patient", 1, -1)
    write(runtime, "sealed_patient", 1, -1)
    read_back = {}
    with runtime.db.read() as conn:
        for entity, sealed in (("plain_patient", False), ("sealed_patient", True)):
            stored = conn.execute(runtime.current().table(entity).select()).one()._mapping
            read_back[entity] = runtime.records.list(conn, entity, actor=Actor.system()).records[0]
            for name, _, _ in FIELDS:
                assert is_sealed(stored[name]) is sealed, (entity, name)
    for name, _, _ in FIELDS:
        assert read_back["sealed_patient"][name] == read_back["plain_patient"][name], name
    assert read_back["sealed_patient"]["notes"] == values(-1)["notes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runtime = runtime_at(Path(tmp))
        check(runtime)
        times: dict[str, list[float]] = {k: [] for k in ("ws", "wp", "rs", "rp")}
        pages: dict[str, list[float]] = {"rs": [], "rp": []}
        for n in range(args.repeat):
            offset = n * args.rows
            times["wp"].append(write(runtime, "plain_patient", args.rows, offset))
            times["ws"].append(write(runtime, "sealed_patient", args.rows, offset))
            for key, entity in (("rp", "plain_patient"), ("rs", "sealed_patient")):
                seconds, count = read(runtime, entity, pages[key])
                assert count == (n + 1) * args.rows + 1, (entity, count)
                times[key].append(seconds)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"rows per round: {args.rows}, rounds: {args.repeat} (medians)")
        for label, s, p in (("write", "ws", "wp"), ("read", "rs", "rp")):
            print(
                f"{label}: plain {med[p]:.2f} s, 5 encrypted fields {med[s]:.2f} s, "
                f"ratio {med[s] / med[p]:.2f}x"
            )
        for key, label in (("rp", "plain"), ("rs", "5 encrypted fields")):
            page_ms = sorted(t * 1000 for t in pages[key])
            p99 = page_ms[min(len(page_ms) - 1, int(len(page_ms) * 0.99))]
            print(
                f"page of 100, {label}: median {statistics.median(page_ms):.1f} ms, "
                f"p99 {p99:.1f} ms ({len(page_ms)} pages)"
            )
        provider = runtime.records.encryption.keys.provider
        rates = []
        for _ in range(args.repeat):
            out = io.BytesIO()
            started = time.perf_counter()
            info = backup.create(runtime.db.engine, provider, out)
            rates.append(info.plaintext_bytes / 1e6 / (time.perf_counter() - started))
        print(
            f"backup: {info.rows} rows, {info.plaintext_bytes / 1e6:.1f} MB plaintext, "
            f"{statistics.median(rates):.1f} MB/s (median)"
        )
        runtime.close()


if __name__ == "__main__":
    main()
