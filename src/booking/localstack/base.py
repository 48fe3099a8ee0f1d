"""Shared pieces of the local stack: constants, the error, subprocess and pid helpers,
the state directory and its lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

HOST = "127.0.0.1"
PG_SUPERUSER = "postgres"
PG_SYSTEM_USER = "booking-pg"
PG_SERVER_SETTINGS: tuple[tuple[str, str], ...] = (
    ("max_connections", "300"),
    ("shared_buffers", "256MB"),
)
FALLBACK_BASE = Path("/var/tmp")  # noqa: S108  (per-project subdir, ownership checked)
PG_START_TIMEOUT = 60
WAIT_TIMEOUT = 30.0
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes; keep a margin
_LOG_TAIL_LINES = 30

_apt_updated = False


class LocalStackError(RuntimeError):
    """A local server could not be started, stopped or inspected."""


@dataclass(frozen=True)
class LocalStack:
    root: Path
    pg_port: int
    redis_port: int

    def database_url(self, dbname: str) -> str:
        return f"postgresql://{PG_SUPERUSER}@{HOST}:{self.pg_port}/{quote(dbname, safe='')}"

    def redis_url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.redis_port}/{db}"


# --------------------------------------------------------------------------- helpers


def say(message: str) -> None:
    print(f"localstack: {message}", file=sys.stderr, flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def log_tail(path: Path | None, lines: int = _LOG_TAIL_LINES) -> str:
    if path is None:
        return ""
    try:
        content = path.read_text(errors="replace")
    except OSError:
        return ""
    tail = _tail(content, lines)
    return f"\n--- last lines of {path} ---\n{tail}" if tail else ""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without libpq/server variables that could redirect us."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if extra:
        env.update(extra)
    return env


def run(
    cmd: Sequence[str],
    *,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise LocalStackError(f"{what} failed: {cmd[0]} not found ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise LocalStackError(
            f"{what} timed out after {timeout}s: {shlex.join(cmd)}{log_tail(log)}"
        ) from exc
    if check and proc.returncode != 0:
        output = _tail((proc.stdout or "") + "\n" + (proc.stderr or ""))
        raise LocalStackError(
            f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n{output}{log_tail(log)}"
        )
    return proc


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def proc_comm(pid: int) -> str | None:
    """The command name of a live process, or None when it does not exist."""
    if pid <= 0:
        return None
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return None
    except OSError:
        pass
    try:  # no /proc: fall back to a signal-0 probe
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""


def read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
        return int(first)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Serialise starts/stops of one state directory across processes."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "localstack.lock").open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another localstack process ({root / 'localstack.lock'})")
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def apt_install(package: str) -> None:
    global _apt_updated
    apt = shutil.which("apt-get")
    if apt is None or not is_root():
        raise LocalStackError(
            f"{package} is not installed; install it (Debian: apt-get install -y {package})"
        )
    env = clean_env({"DEBIAN_FRONTEND": "noninteractive"})
    if not _apt_updated:
        say("running apt-get update")
        run([apt, "update", "-qq"], what="apt-get update", env=env, timeout=900)
        _apt_updated = True
    say(f"installing {package} with apt-get")
    run(
        [apt, "install", "-y", "-qq", "--no-install-recommends", package],
        what=f"apt-get install {package}",
        env=env,
        timeout=900,
    )


# --------------------------------------------------------------------------- paths


def project_root() -> Path:
    """The repository root: the nearest directory holding ``pyproject.toml``.

    Looked up from this file first (editable install / source checkout), then from
    the current working directory.
    """
    starts = (Path(__file__).resolve().parent, Path.cwd().resolve())
    for start in starts:
        for directory in (start, *start.parents):
            if (directory / "pyproject.toml").is_file():
                return directory
    raise LocalStackError(
        "cannot find the project root (a directory with pyproject.toml) above "
        f"{starts[0]} or {starts[1]}"
    )


def resolve_root(root: Path | None) -> Path:
    return (root if root is not None else project_root() / ".local").absolute()


def fallback_dir(root: Path) -> Path:
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:10]
    return FALLBACK_BASE / f"booking-{digest}"
