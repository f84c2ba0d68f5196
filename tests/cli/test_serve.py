"""A real ``qiao serve`` process, reached over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

QIAO = [sys.executable, "-c", "from qiao.cli.main import main; main()"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_answers_health_checks(
    tmp_path: Path, qiao_database_url: str, make_config: Callable[..., Path]
) -> None:
    port = _free_port()
    config = make_config(tmp_path / "qiao.toml", qiao_database_url, host="127.0.0.1", port=port)
    with subprocess.Popen(
        [*QIAO, "--config", str(config), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 15
            while True:
                assert server.poll() is None, server.communicate()
                try:
                    health = httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "qiao serve did not answer in time"
                    time.sleep(0.05)
            assert health.json() == {"status": "ok"}
            assert httpx.get(f"{base}/readyz", timeout=5).json() == {"status": "ready"}
        finally:
            server.terminate()
            out, _ = server.communicate(timeout=10)
    assert f"GraphiQL at {base}/graphql" in out
