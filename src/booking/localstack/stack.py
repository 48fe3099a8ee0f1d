"""Both servers together: start (or reuse), stop, what runs, status lines, env ports."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from booking.localstack.base import (
    HOST,
    PG_SUPERUSER,
    LocalStack,
    LocalStackError,
    locked,
    resolve_root,
)
from booking.localstack.postgres import (
    ensure_postgres,
    existing_layout,
    pg_candidates,
    pg_running,
    stop_postgres,
)
from booking.localstack.redis import ensure_redis, redis_pid, stop_redis
from booking.settings import DEFAULT_PG_PORT, DEFAULT_REDIS_PORT

# --------------------------------------------------------------------------- public API


def ensure_stack(
    root: Path | None = None,
    pg_port: int = DEFAULT_PG_PORT,
    redis_port: int = DEFAULT_REDIS_PORT,
) -> LocalStack:
    """Start PostgreSQL and Redis on 127.0.0.1 unless they are already running."""
    if pg_port == redis_port:
        raise LocalStackError(f"PostgreSQL and Redis cannot share port {pg_port}")
    state = resolve_root(root)
    if not state.exists():
        state.mkdir(parents=True)
        os.chmod(state, 0o755)  # noqa: S103  (the PostgreSQL user must traverse it)
    with locked(state):
        ensure_postgres(state, pg_port)
        ensure_redis(state, redis_port)
    return LocalStack(root=state, pg_port=pg_port, redis_port=redis_port)


def stop_stack(root: Path | None = None, *, postgres: bool = True, redis: bool = True) -> None:
    """Stop the PostgreSQL cluster and/or Redis started for this state directory."""
    state = resolve_root(root)
    if not state.is_dir():
        return
    with locked(state):
        if postgres:
            stop_postgres(state)
        if redis:
            stop_redis(state)


def running_servers(root: Path | None = None) -> list[str]:
    """Which of "postgres", "redis" run for this state directory (e.g. before CI starts)."""
    state = resolve_root(root)
    if not state.is_dir():
        return []
    found: list[str] = []
    for base in pg_candidates(state):
        layout = existing_layout(base)
        if layout.initialized and pg_running(layout) is not None:
            found.append("postgres")
            break
    if redis_pid(state) is not None:
        found.append("redis")
    return found


def status_lines(root: Path) -> list[str]:
    lines = [f"state dir: {root}"]
    pg_found = False
    for base in pg_candidates(root):
        layout = existing_layout(base)
        if not layout.initialized:
            continue
        pg_found = True
        running = pg_running(layout)
        if running is None:
            lines.append(f"postgres: stopped (data {layout.data})")
        else:
            pid, port = running
            url = f"postgresql://{PG_SUPERUSER}@{HOST}:{port}/postgres"
            lines.append(f"postgres: running pid {pid} {url} (data {layout.data})")
    if not pg_found:
        lines.append("postgres: not initialised")
    pid_of_redis = redis_pid(root)
    if pid_of_redis is None:
        lines.append("redis: stopped")
    else:
        port_text = "?"
        with contextlib.suppress(OSError, ValueError, IndexError):
            cmdline = Path(f"/proc/{pid_of_redis}/cmdline").read_bytes().decode(errors="replace")
            match = re.search(r":(\d+)", cmdline)
            if match:
                port_text = match.group(1)
        lines.append(f"redis: running pid {pid_of_redis} redis://{HOST}:{port_text}/0")
    return lines


def env_ports() -> tuple[int, int]:
    """The local stack's ports: BOOKING_LOCAL_PG_PORT / BOOKING_LOCAL_REDIS_PORT or defaults."""
    return (
        env_port("BOOKING_LOCAL_PG_PORT", DEFAULT_PG_PORT),
        env_port("BOOKING_LOCAL_REDIS_PORT", DEFAULT_REDIS_PORT),
    )


def env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise SystemExit(f"{name} must be a port number, got {raw!r}")
    return int(raw)
