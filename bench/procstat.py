"""CPU time and resident memory of processes, read from /proc (Linux), for benchmarks."""

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


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (a server's workers, say)."""
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text(encoding="ascii").split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def rss_bytes(pids: set[int]) -> int:
    """Resident memory of ``pids`` together (VmRSS); a process that has gone counts 0."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total
