"""The local Redis server: no persistence, a pid file under the state directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path

from booking.localstack.base import (
    HOST,
    WAIT_TIMEOUT,
    LocalStackError,
    apt_install,
    log_tail,
    proc_comm,
    read_pid,
    run,
    say,
)

# --------------------------------------------------------------------------- Redis


def _redis_server() -> str:
    for candidate in (shutil.which("redis-server"), "/usr/bin/redis-server"):
        if candidate and Path(candidate).is_file():
            return candidate
    apt_install("redis-server")
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).is_file():
        raise LocalStackError("redis-server still not found after apt-get install")
    return found


def _redis_probe(port: int, timeout: float = 1.0) -> str:
    """'closed', 'redis' (answers PING) or 'other'."""
    try:
        sock = socket.create_connection((HOST, port), timeout=timeout)
    except OSError:
        return "closed"
    with sock:
        try:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
        except OSError:
            return "other"
    if reply.startswith((b"+PONG", b"-NOAUTH")):
        return "redis"
    return "other"


def _redis_dir(root: Path) -> Path:
    return root / "redis"


def redis_pid(root: Path) -> int | None:
    """The pid of our redis-server (from its pid file) when it is alive."""
    pidfile = _redis_dir(root) / "redis.pid"
    pid = read_pid(pidfile)
    if pid is None:
        return None
    comm = proc_comm(pid)
    if comm is not None and (comm == "" or comm.startswith("redis")):
        return pid
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    return None


def _wait_for_redis(port: int, timeout: float = WAIT_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _redis_probe(port) == "redis":
            return True
        time.sleep(0.05)
    return False


def ensure_redis(root: Path, port: int) -> None:
    directory = _redis_dir(root)
    logfile = directory / "redis.log"
    state = _redis_probe(port)
    pid = redis_pid(root)
    if state == "redis":
        if pid is None:
            say(f"a Redis not started by localstack answers on {HOST}:{port}; reusing it")
        else:
            say(f"Redis already running on {HOST}:{port} (pid {pid})")
        return
    if state == "other":
        raise LocalStackError(
            f"port {port} on {HOST} is in use by something that is not Redis; "
            "choose another Redis port"
        )
    if pid is not None:
        if _wait_for_redis(port, timeout=5):
            return
        raise LocalStackError(
            f"redis-server (pid {pid}) is running from {directory} but does not answer on "
            f"{HOST}:{port}; run `python -m booking.localstack down`{log_tail(logfile)}"
        )
    server = _redis_server()
    directory.mkdir(parents=True, exist_ok=True)
    say(f"starting Redis on {HOST}:{port}")
    run(
        [
            server,
            "--port",
            str(port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--dir",
            str(directory),
            "--pidfile",
            str(directory / "redis.pid"),
            "--logfile",
            str(logfile),
        ],
        what="redis-server",
        cwd=directory,
        log=logfile,
        timeout=60,
    )
    if not _wait_for_redis(port):
        raise LocalStackError(
            f"redis-server started but does not answer PING on {HOST}:{port}{log_tail(logfile)}"
        )


def stop_redis(root: Path) -> None:
    pid = redis_pid(root)
    if pid is None:
        return
    say(f"stopping Redis (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + WAIT_TIMEOUT
    while proc_comm(pid) is not None:
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    with contextlib.suppress(FileNotFoundError):
        (_redis_dir(root) / "redis.pid").unlink()
