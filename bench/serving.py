"""What the benchmarks share: a fresh database per backend, a deployment's configuration
and runtime on it, and Qiao served in its own process.

The server runs in a separate process (one uvicorn worker, as deployed), so the
load a benchmark generates does not share the server's interpreter.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from sqlalchemy import create_engine, text

from qiao.core import audit
from qiao.core.config import CONFIG_FILE, Config
from qiao.core.crypto import generate_key_file
from qiao.core.runtime import Runtime
from qiao.core.storage.database import normalise_url

DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def database(backend: str, workdir: Path, admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one backend, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    name = f"qiao_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        base, _, _ = admin_url.rpartition("/")
        try:
            yield f"{base}/{name}"
        finally:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def configure(folder: Path, url: str) -> Config:
    """A qiao.toml in ``folder`` for ``url`` with the crm plugin and, as ``qiao init``
    writes one, a key file that is also the audit key, so writes are audited as deployed."""
    key_file = folder / "qiao-kek.json"
    generate_key_file(key_file)
    settings = {
        "database": {"url": url},
        "plugins": {"enabled": ["crm"]},
        "keys": {"provider": "file", "file": str(key_file)},
        "audit": {"key_file": str(key_file)},
    }
    path = folder / CONFIG_FILE
    path.write_text(tomli_w.dumps(settings), encoding="utf-8")
    return Config.load(path, env={})


@contextlib.contextmanager
def deployment(admin_url: str) -> Iterator[Runtime]:
    """A runtime on a fresh PostgreSQL database configured by :func:`configure`, its tables
    and audit key made; closed, and the database dropped, when the block ends."""
    with (
        tempfile.TemporaryDirectory() as folder,
        database("postgresql", Path(folder), admin_url) as url,
    ):
        runtime = Runtime(configure(Path(folder), url))
        try:
            runtime.migrate()
            audit.initialize(runtime, existing_ok=True)
            yield runtime
        finally:
            runtime.close()


def serve(build: Callable[..., Any], args: tuple[Any, ...], pipe: Pipe) -> None:
    """Entry point of the server process: bind a free loopback port, report it, serve."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    app = build(*args)
    config = uvicorn.Config(
        app, log_config=None, access_log=False, ws="none", lifespan="on", log_level="critical"
    )
    server = uvicorn.Server(config)
    pipe.send(sock.getsockname()[1])
    pipe.close()
    server.run(sockets=[sock])


@contextlib.contextmanager
def server_process(build: Callable[..., Any], *args: Any) -> Iterator[int]:
    """Serves ``build(*args)`` in a separate process; yields its port once it answers."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=serve, args=(build, args, child), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(60):
            raise RuntimeError("the benchmark server did not start within 60 s")
        port: int = parent.recv()
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            if not proc.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the benchmark server stopped or never answered")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
