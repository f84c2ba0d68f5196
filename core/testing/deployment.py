"""A deployment made by ``qiao init`` and driven through ``qiao`` processes, as a user does.

In-process fixtures are fast, but a user runs commands in processes of their
own, on a folder ``qiao init`` wrote (its key file, its audit key, the worker
inside ``qiao serve``). :class:`Deployment` is that: ``run`` starts ``qiao`` as
a subprocess in the folder, ``serve`` starts ``qiao serve`` on a free port and
stops it after, keeping its log for the test to read.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from qiao.core import outbound

#: ``qiao`` run by this interpreter, so a test uses the installation under test.
QIAO = (sys.executable, "-c", "from qiao.cli.main import main; main()")
#: Variables that would make a command use another deployment than the folder's.
OVERRIDES = ("QIAO_CONFIG", "QIAO_DATABASE_URL", "QIAO_PLUGINS", "QIAO_HOST", "QIAO_PORT")


class CommandFailed(AssertionError):
    """A ``qiao`` command ended with another exit code than the test expected."""


@dataclass
class Served:
    """A running ``qiao serve``: its base URL, and its log once it stopped."""

    url: str
    process: subprocess.Popen[str]
    log: str = ""


@dataclass
class Deployment:
    """A deployment folder and the environment its commands run in."""

    folder: Path
    env: dict[str, str] = field(default_factory=lambda: _clean_env())

    @property
    def config(self) -> Path:
        return self.folder / "qiao.toml"

    def run(
        self, *args: str, expect: int = 0, input: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """``qiao ARGS`` in the folder; its exit code must be ``expect``."""
        done = subprocess.run(
            [*QIAO, *args],
            cwd=self.folder,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != expect:
            raise CommandFailed(
                f"qiao {' '.join(args)} exited {done.returncode}, expected {expect}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    @contextmanager
    def serve(self, *args: str, startup_timeout: float = 60) -> Iterator[Served]:
        """``qiao serve`` on a free loopback port until the block ends (SIGTERM then)."""
        port = free_port()
        process = subprocess.Popen(
            [*QIAO, "serve", "--port", str(port), *args],
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        served = Served(f"http://127.0.0.1:{port}", process)
        try:
            _wait_healthy(served, startup_timeout)
            yield served
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                served.log, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                served.log, _ = process.communicate()


def init(
    folder: Path, database_url: str, *args: str, env: dict[str, str] | None = None
) -> Deployment:
    """``qiao init FOLDER --database URL ARGS`` as a subprocess; the deployment it made."""
    deployment = Deployment(folder, env or _clean_env())
    folder.mkdir(parents=True, exist_ok=True)
    deployment.run("init", str(folder), "--database", database_url, *args)
    return deployment


#: Where the kernel takes ports for a bind to port 0 and for outgoing connections,
#: when /proc does not say (Linux's default).
EPHEMERAL_LOW = 32768
#: How many ports below the ephemeral range :func:`free_port` chooses from.
SPAN = 16384


def free_port() -> int:
    """A free loopback port for a server another process starts and binds later.

    Chosen at random below the kernel's ephemeral range: a port there is never
    taken meanwhile by another test's in-process server binding port 0, nor by an
    outgoing connection, as a port the kernel handed out and that was closed again
    can be. Such a theft sent a test's requests to another test's server. Checked
    free by binding it; random from the system's source, as pytest-randomly seeds
    ``random`` alike in every worker.
    """
    low = _ephemeral_low()
    choose = random.SystemRandom()
    for _ in range(200):
        port = choose.randrange(max(1024, low - SPAN), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="ascii")
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return EPHEMERAL_LOW


def _clean_env(extra: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OVERRIDES}
    env.update(extra)
    return env


def _wait_healthy(served: Served, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with outbound.client(timeout=2) as http:
        while not _healthy(served, http):
            if time.monotonic() > deadline:
                raise CommandFailed("qiao serve did not answer /healthz in time")
            time.sleep(0.1)


def _healthy(served: Served, http: httpx.Client) -> bool:
    """Whether the server answers /healthz yet; CommandFailed with its log if it stopped."""
    if served.process.poll() is not None:
        log, _ = served.process.communicate()
        raise CommandFailed(f"qiao serve stopped during start-up:\n{log}")
    try:
        return http.get(f"{served.url}/healthz").status_code == 200
    except httpx.TransportError:
        return False
