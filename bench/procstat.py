"""CPU time of processes, read from /proc (Linux), for per-request cost in benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

_TICK = 1.0 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of ``pid`` (all its threads); 0 once it has gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * _TICK


def total_cpu(pids: set[int]) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in pids}
