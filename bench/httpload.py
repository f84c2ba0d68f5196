"""HTTP load from a separate client process: wrk where installed, else Python processes.

Both keep every connection alive and send the next request as soon as the
answer is read (a closed loop), and both report requests per second, the 50th
and 99th latency percentiles, and the client's own CPU time, so a benchmark
can say whether the client, rather than the server, set the pace.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Request:
    """One request, sent again and again: method, URL, headers and body."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def find_wrk(install: bool) -> str | None:
    """wrk's path; with ``install``, as root, Debian's package is installed first."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    install_wrk = ["apt-get", "install", "-y", "-q", "wrk"]
    for step in (install_wrk, ["apt-get", "update", "-q"], install_wrk):
        subprocess.run(step, capture_output=True, check=False, timeout=600)
        if shutil.which("wrk"):
            break
    return shutil.which("wrk")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(path: str, request: Request, connections: int, seconds: float) -> LoadResult:
    """Run wrk with one thread (enough for these rates, and one core left to the server)."""
    lua = (
        f"wrk.method = {json.dumps(request.method)}\n"
        f"wrk.body = {json.dumps(request.body.decode())}\n"
        + "".join(
            f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in request.headers.items()
        )
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        before = _children_cpu()
        out = subprocess.run(
            [
                path,
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                script.name,
                request.url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
        cpu = _children_cpu() - before
    finally:
        Path(script.name).unlink()
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise RuntimeError(f"wrk saw failures:\n{out}")
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    elapsed = re.search(r"requests in ([\d.]+)(\w+),", out)
    assert elapsed is not None
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[elapsed.group(2)]
    return LoadResult(
        total,
        float(elapsed.group(1)) * scale,
        _wrk_ms(out, "50%"),
        _wrk_ms(out, "99%"),
        cpu,
    )


def _wrk_ms(out: str, label: str) -> float:
    found = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if found is None:
        raise RuntimeError(f"no {label} latency in wrk's output:\n{out}")
    return float(found.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[found.group(2)]


# -- The Python fallback ----------------------------------------------------------------------


def _client_process(
    request: Request, threads: int, seconds: float, out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures: list[str] = []
    deadline = time.perf_counter() + seconds

    def loop(mine: list[float]) -> None:
        with httpx.Client(headers=request.headers, timeout=30) as client:
            while (start := time.perf_counter()) < deadline:
                answer = client.request(request.method, request.url, content=request.body or None)
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text[:200]}")
                    return
                mine.append(time.perf_counter() - start)

    workers = [threading.Thread(target=loop, args=(mine,)) for mine in latencies]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    cpu = time.process_time()
    out.put(([x for mine in latencies for x in mine], failures, cpu))


def python_load(request: Request, connections: int, seconds: float) -> LoadResult:
    """``connections`` keep-alive httpx clients in threads, spread over up to two processes."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    processes = min(2, connections)
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    started = time.perf_counter()
    procs = [ctx.Process(target=_client_process, args=(request, n, seconds, queue)) for n in shares]
    for p in procs:
        p.start()
    latencies: list[float] = []
    cpu = 0.0
    for _ in procs:
        lat, failures, used = queue.get(timeout=seconds + 60)
        if failures:
            raise RuntimeError(f"the server answered {failures[0]}")
        latencies += lat
        cpu += used
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return LoadResult(len(latencies), min(elapsed, seconds), q[49] * 1e3, q[98] * 1e3, cpu)


def load(wrk_path: str | None, request: Request, connections: int, seconds: float) -> LoadResult:
    if wrk_path is not None:
        return wrk(wrk_path, request, connections, seconds)
    return python_load(request, connections, seconds)
