"""What the benchmarks share: a fresh database per backend, a deployment's configuration
and runtime on it, and Qiao served in its own process.

The server runs in a separate process (one uvicorn worker, as deployed), so the
load a benchmark generates does not share the server's interpreter.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import IO, Any

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


def configure(
    folder: Path,
    url: str,
    plugins: Sequence[str] = ("crm",),
    port: int | None = None,
    pool_size: int | None = None,
) -> Config:
    """``qiao.toml`` in ``folder`` as ``qiao init`` writes it: a key file for field keys
    and the audit log's MAC; returns the loaded ``Config`` (its file is ``folder/qiao.toml``)."""
    key_file = folder / "qiao-kek.json"
    if not key_file.exists():
        generate_key_file(key_file)
    database: dict[str, Any] = {"url": url}
    if pool_size is not None:
        database["pool_size"] = pool_size
    settings: dict[str, Any] = {
        "database": database,
        "plugins": {"enabled": list(plugins)},
        "keys": {"provider": "file", "file": str(key_file)},
        "audit": {"key_file": str(key_file)},
    }
    if port is not None:
        settings["server"] = {"host": "127.0.0.1", "port": port}
    path = folder / CONFIG_FILE
    path.write_text(tomli_w.dumps(settings), encoding="utf-8")
    return Config.load(path, env={})


@contextlib.contextmanager
def deployment(admin_url: str, plugins: Sequence[str] = ("crm",)) -> Iterator[Runtime]:
    """A runtime on a fresh PostgreSQL database configured by :func:`configure`, its tables
    and audit key made; closed, and the database dropped, when the block ends."""
    with (
        tempfile.TemporaryDirectory() as folder,
        database("postgresql", Path(folder), admin_url) as url,
    ):
        runtime = Runtime(configure(Path(folder), url, plugins))
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


# -- `qiao` processes, percentiles, captured SQL -----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def qiao_command() -> list[str]:
    """The ``qiao`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("qiao")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from qiao.cli.main import main; main()"]


def qiao(config: Path, args: Sequence[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """``qiao --config CONFIG ARGS...`` as a child process writing to ``log``."""
    return subprocess.Popen(
        [*qiao_command(), "--config", str(config), *args], stdout=log, stderr=subprocess.STDOUT
    )


def wait_answering(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    """Wait until ``base_url/healthz`` answers 200; fail with the log's tail if it stops.
    (Ten minutes: on a busy shared machine, importing and migrating checks are slow.)"""
    deadline = time.monotonic() + 600
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base_url} did not answer within 600 s")
        time.sleep(0.1)


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Terminate, then kill what has not stopped within 15 s."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def print_medians(figures: dict[str, list[float]], unit: str, digits: int) -> None:
    """Each way's median and values, then the first way's median over the second's."""
    width = max(len(name) for name in figures)
    for name, values in figures.items():
        listed = ", ".join(f"{v:.{digits}f}" for v in values)
        print(f"{name:>{width}}: median {statistics.median(values):.{digits}f} {unit} ({listed})")
    first, second = (statistics.median(values) for values in list(figures.values())[:2])
    print(f"{' / '.join(list(figures)[:2])}: {first / second:.2f}")


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0-100) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def captured_statement(
    config: Any, token: str, body: dict[str, Any], marker: str
) -> tuple[str, Any]:
    """The SQL and parameters Qiao runs for a GraphQL ``body`` sent with ``token``: the
    first statement holding ``marker``, captured in this process (for EXPLAIN)."""
    from sqlalchemy import event

    from qiao.core.auth.tokens import Authenticator
    from qiao.core.graphql.service import GraphQLService
    from qiao.core.runtime import Runtime

    runtime = Runtime(config)
    seen: list[tuple[str, Any]] = []
    try:
        runtime.start()
        actor = Authenticator(runtime.db, runtime.current).actor_for(f"Bearer {token}")
        service = GraphQLService(runtime)
        service.schema()

        def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
            seen.append((statement, parameters))

        event.listen(runtime.db.engine, "before_cursor_execute", capture)
        answer = service.execute(actor, body)
        assert isinstance(answer, bytes), answer
    finally:
        runtime.close()
    return next((s, p) for s, p in seen if marker in s)
