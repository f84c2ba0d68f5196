"""GraphQL schema builds of a template's deployment: as Qiao builds them, and with the
cyclic garbage collector left running.

A serving process builds its schema again when the metadata's entities change, and an
administrator's change builds the schema it would make before it is stored (``qiao
field add``). Qiao builds with the collector paused (``graphql/service.py``): everything
a build makes outlives it, so collections free nothing and walk the whole process.

The script makes a deployment with ``qiao init --template NAME`` (SQLite, in a temporary
folder), then, in this process, alternates two ways of building its schema:

- **qiao**: ``build_schema``, what ``shared_schema`` (the path of the server and of ``qiao
  field add``) calls when it has not built the schema yet;
- **collector on**: the same ``SchemaBuilder``, called directly, with the collector
  running as it does everywhere else.

Each build's schema is kept, four of each way at most, as a serving process keeps the
last few. Before timing, both ways must give the same SDL, naming every entity of the
template. It prints each way's median and the ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from serving import print_medians, qiao_command
from strawberry import Schema

from qiao.core.config import Config
from qiao.core.graphql import admin, resolvers, service
from qiao.core.graphql.builder import SchemaBuilder
from qiao.core.graphql.strawberry_internals import forget_type_lookups
from qiao.core.metadata.registry import type_name
from qiao.core.permissions.hiding import NOTHING_HIDDEN
from qiao.core.runtime import Runtime

#: Schemas of each way kept alive, as the server's cache keeps them.
KEPT = 4


def build_as_qiao(runtime: Runtime) -> Schema:
    schema, _ = service.build_schema(
        runtime.current(), runtime.plugins.graphql_types(), NOTHING_HIDDEN
    )
    return schema


def build_collector_on(runtime: Runtime) -> Schema:
    builder = SchemaBuilder(
        runtime.current(),
        resolvers,
        runtime.plugins.graphql_types(),
        core_types=admin.core_types(),
        schema_class=service.QiaoSchema,
        hiding=NOTHING_HIDDEN,
    )
    try:
        return builder.build().schema
    finally:
        forget_type_lookups()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="clinics", help="the market template to build")
    parser.add_argument("--rounds", type=int, default=6, help="builds of each way")
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder) / "site"
        subprocess.run(
            [*qiao_command(), "init", str(site), "--template", args.template],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        runtime = Runtime(Config.load(site / "qiao.toml", env={}))
        runtime.start()
        try:
            run(runtime, rounds, args.template)
        finally:
            runtime.close()


def run(runtime: Runtime, rounds: int, template: str) -> None:
    entities = sorted(runtime.current().registry.entities)
    ways = {"qiao": build_as_qiao, "collector on": build_collector_on}
    sdl = {name: build(runtime).as_str() for name, build in ways.items()}
    assert sdl["qiao"] == sdl["collector on"], "both ways must build the same schema"
    missing = [e for e in entities if f"type {type_name(e)}Connection" not in sdl["qiao"]]
    assert not missing, f"entities without a connection type: {missing}"
    kept: dict[str, deque[Schema]] = {name: deque(maxlen=KEPT) for name in ways}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, build in ways.items():
            started = time.perf_counter()
            kept[name].append(build(runtime))
            seconds[name].append(time.perf_counter() - started)
    print(
        f"template {template}: {len(entities)} entities, "
        f"{len(sdl['qiao'].splitlines())} SDL lines; {rounds} builds each, alternating; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print_medians(seconds, "s", 2)


if __name__ == "__main__":
    sys.exit(main())
