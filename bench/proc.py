"""CPU seconds of processes, read from /proc: what one call or one message costs the
server, apart from the load generator (the machine's other load stretches latency far
more than it stretches CPU)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a process (all its threads) and of its children it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:  # exited meanwhile
        return 0.0
    return sum(int(value) for value in fields[11:15]) / CLOCK  # utime stime cutime cstime


def tree_cpu(pid: int) -> float:
    """cpu_seconds of a process and of its children alive now."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return cpu_seconds(pid) + sum(cpu_seconds(int(child)) for child in children)


async def postmaster_pid(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:  # the backend's parent, read while the backend lives
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        stat = Path(f"/proc/{backend}/stat").read_text()  # noqa: ASYNC240 - procfs, instant
    finally:
        await conn.close()
    return int(stat.rpartition(")")[2].split()[1])


class CpuMeter:
    """Server CPU per call, API process and PostgreSQL apart: load from others on the
    machine stretches latency far more than it stretches the CPU each call costs."""

    def __init__(self, api: int | None, postmaster: int) -> None:
        self.api, self.postmaster = api, postmaster

    def now(self) -> tuple[float, float]:
        return (tree_cpu(self.api) if self.api else 0.0, tree_cpu(self.postmaster))

    def per_call(self, before: tuple[float, float], calls: int) -> str:
        api, pg = (1000 * (b - a) / calls for a, b in zip(before, self.now(), strict=True))
        return f"server CPU per call: API {api:.2f} ms + PostgreSQL {pg:.2f} ms"
