"""A private PostgreSQL cluster and Redis server on 127.0.0.1 for development and tests.

Everything is idempotent: :func:`ensure_stack` starts what is not running and reuses
what is, so calling it twice (or from two processes at once) just works.

State lives under ``<project>/.local`` by default:

* ``pg/data``          PostgreSQL data directory (``pg/postgres.log``, ``pg/run`` sockets)
* ``redis/``           Redis pid file and log (no persistence)

PostgreSQL refuses to run as root. As root we create an unprivileged system user
(:data:`PG_SYSTEM_USER`) once and run ``initdb``/``pg_ctl`` through ``runuser``. If
that user cannot reach the project directory (a clone under ``/root`` or a ``700``
directory), the cluster goes to ``/var/tmp/booking-<hash>/pg`` instead.

Command line (stdlib only, so it works before the virtualenv is complete)::

    python -m booking.localstack up [--db NAME ...]
    python -m booking.localstack status
    python -m booking.localstack running            (prints "postgres redis", what runs)
    python -m booking.localstack url DBNAME [--recreate]
    python -m booking.localstack redis-url [DB]
    python -m booking.localstack down [--postgres] [--redis]   (neither: both)

Every subcommand takes ``--root DIR --pg-port N --redis-port N``; the ports default to
``$BOOKING_LOCAL_PG_PORT`` / ``$BOOKING_LOCAL_REDIS_PORT``, else 54329 / 63799. Progress
goes to stderr, URLs to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from booking.settings import DEFAULT_PG_PORT, DEFAULT_REDIS_PORT

__all__ = [
    "DEFAULT_PG_PORT",
    "DEFAULT_REDIS_PORT",
    "PG_SUPERUSER",
    "PG_SYSTEM_USER",
    "LocalStack",
    "LocalStackError",
    "ensure_database",
    "ensure_stack",
    "main",
    "project_root",
    "running_servers",
    "stop_stack",
]

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
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes; keep a margin
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


def _say(message: str) -> None:
    print(f"localstack: {message}", file=sys.stderr, flush=True)


def _is_root() -> bool:
    return os.geteuid() == 0


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _log_tail(path: Path | None, lines: int = _LOG_TAIL_LINES) -> str:
    if path is None:
        return ""
    try:
        content = path.read_text(errors="replace")
    except OSError:
        return ""
    tail = _tail(content, lines)
    return f"\n--- last lines of {path} ---\n{tail}" if tail else ""


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without libpq/server variables that could redirect us."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if extra:
        env.update(extra)
    return env


def _run(
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
            f"{what} timed out after {timeout}s: {shlex.join(cmd)}{_log_tail(log)}"
        ) from exc
    if check and proc.returncode != 0:
        output = _tail((proc.stdout or "") + "\n" + (proc.stderr or ""))
        raise LocalStackError(
            f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n{output}{_log_tail(log)}"
        )
    return proc


def _port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _proc_comm(pid: int) -> str | None:
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


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
        return int(first)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise starts/stops of one state directory across processes."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "localstack.lock").open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"waiting for another localstack process ({root / 'localstack.lock'})")
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _apt_install(package: str) -> None:
    global _apt_updated
    apt = shutil.which("apt-get")
    if apt is None or not _is_root():
        raise LocalStackError(
            f"{package} is not installed; install it (Debian: apt-get install -y {package})"
        )
    env = _clean_env({"DEBIAN_FRONTEND": "noninteractive"})
    if not _apt_updated:
        _say("running apt-get update")
        _run([apt, "update", "-qq"], what="apt-get update", env=env, timeout=900)
        _apt_updated = True
    _say(f"installing {package} with apt-get")
    _run(
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


def _resolve_root(root: Path | None) -> Path:
    return (root if root is not None else project_root() / ".local").absolute()


def _fallback_dir(root: Path) -> Path:
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:10]
    return FALLBACK_BASE / f"booking-{digest}"


@dataclass(frozen=True)
class _PgLayout:
    base: Path
    run_as: str | None  # None: run as the current user

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def logfile(self) -> Path:
        return self.base / "postgres.log"

    @property
    def sockets(self) -> Path:
        return self.base / "run"

    def command(self, cmd: Sequence[str]) -> list[str]:
        if self.run_as is None:
            return list(cmd)
        return ["runuser", "-u", self.run_as, "--", *cmd]

    @property
    def initialized(self) -> bool:
        try:
            return (self.data / "PG_VERSION").is_file()
        except OSError:  # a private directory of another user
            return False


def _pg_candidates(root: Path) -> list[Path]:
    if not _is_root():
        return [root / "pg"]
    return [root / "pg", _fallback_dir(root) / "pg"]


def _owner_name(path: Path) -> str | None:
    try:
        return pwd.getpwuid(path.stat().st_uid).pw_name
    except (OSError, KeyError):
        return None


def _existing_layout(base: Path) -> _PgLayout:
    """The layout of an already initialised cluster, run as the data directory's owner."""
    run_as: str | None = None
    if _is_root():
        owner = _owner_name(base / "data")
        run_as = owner if owner not in (None, "root") else PG_SYSTEM_USER
    return _PgLayout(base=base, run_as=run_as)


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        pass
    shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    _say(f"creating system user {PG_SYSTEM_USER} to run PostgreSQL (it refuses to run as root)")
    _run(
        [
            "useradd",
            "--system",
            "--create-home",
            "--home-dir",
            f"/var/lib/{PG_SYSTEM_USER}",
            "--shell",
            shell,
            "--comment",
            "booking local PostgreSQL",
            PG_SYSTEM_USER,
        ],
        what=f"useradd {PG_SYSTEM_USER}",
    )
    return pwd.getpwnam(PG_SYSTEM_USER)


def _own_dir(path: Path, user: pwd.struct_passwd) -> None:
    """Create ``path`` (mode 700) owned by ``user``."""
    path.mkdir(parents=True, exist_ok=True)
    st = path.lstat()
    if st.st_uid != user.pw_uid or st.st_gid != user.pw_gid:
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(path, 0o700)


def _user_can_write(user: str, path: Path) -> bool:
    proc = _run(
        ["runuser", "-u", user, "--", "test", "-w", str(path)],
        what=f"access check for {user}",
        check=False,
        cwd=Path("/"),
    )
    return proc.returncode == 0


def _prepare_fallback_parent(root: Path) -> Path:
    parent = _fallback_dir(root)
    parent.mkdir(mode=0o755, exist_ok=True)
    st = parent.lstat()
    if not parent.is_dir() or parent.is_symlink() or st.st_uid != os.geteuid():
        raise LocalStackError(f"{parent} exists but is not a directory owned by us; remove it")
    os.chmod(parent, 0o755)  # noqa: S103  (the PostgreSQL user must traverse it)
    marker = parent / "PROJECT"
    if not marker.exists():
        marker.write_text(f"{root}\n")
    return parent


def _pg_layout(root: Path) -> _PgLayout:
    """Decide (and create) where the cluster lives and which user runs it."""
    primary = root / "pg"
    if not _is_root():
        primary.mkdir(parents=True, exist_ok=True)
        os.chmod(primary, 0o700)
        return _PgLayout(base=primary, run_as=None)

    user = _ensure_system_user()
    if (primary / "data" / "PG_VERSION").is_file():
        layout = _existing_layout(primary)
        if layout.run_as is None or _user_can_write(layout.run_as, primary):
            return layout
    created = not primary.exists()
    reason = ""
    try:
        _own_dir(primary, user)
    except OSError as exc:
        reason = f"cannot give {primary} to {PG_SYSTEM_USER}: {exc}"
    else:
        if _user_can_write(PG_SYSTEM_USER, primary):
            return _PgLayout(base=primary, run_as=PG_SYSTEM_USER)
        reason = f"user {PG_SYSTEM_USER} cannot reach {primary} (a parent directory is private)"
    if created:
        with contextlib.suppress(OSError):
            primary.rmdir()

    fallback = _prepare_fallback_parent(root) / "pg"
    _say(f"{reason}; using {fallback} for the PostgreSQL cluster")
    if (fallback / "data" / "PG_VERSION").is_file():
        return _existing_layout(fallback)
    _own_dir(fallback, user)
    if not _user_can_write(PG_SYSTEM_USER, fallback):
        raise LocalStackError(f"user {PG_SYSTEM_USER} cannot write to {fallback} either")
    return _PgLayout(base=fallback, run_as=PG_SYSTEM_USER)


# --------------------------------------------------------------------------- PostgreSQL


def _major(version_dir: Path) -> int:
    try:
        return int(version_dir.name)
    except ValueError:
        return -1


def _pg_bindir(data: Path | None = None) -> Path:
    """The PostgreSQL bin directory, matching the data directory's version if any."""
    override = os.environ.get("BOOKING_PG_BINDIR")
    if override:
        return Path(override)
    wanted: str | None = None
    if data is not None:
        with contextlib.suppress(OSError):
            wanted = (data / "PG_VERSION").read_text().strip()
    found = sorted(
        (
            d / "bin"
            for d in Path("/usr/lib/postgresql").glob("*")
            if (d / "bin" / "pg_ctl").is_file()
        ),
        key=lambda b: _major(b.parent),
        reverse=True,
    )
    if wanted is not None:
        for bindir in found:
            if bindir.parent.name == wanted:
                return bindir
    elif found:
        return found[0]
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        return Path(on_path).resolve().parent
    if wanted is not None:
        raise LocalStackError(
            f"the cluster in {data} needs PostgreSQL {wanted} binaries "
            f"(Debian: apt-get install -y postgresql-{wanted}), or remove that directory"
        )
    raise LocalStackError(
        "PostgreSQL server binaries not found (Debian: apt-get install -y postgresql-15), "
        "or set BOOKING_PG_BINDIR"
    )


def _initdb_locale() -> str:
    proc = _run(["locale", "-a"], what="locale -a", check=False)
    names = {line.strip().lower() for line in proc.stdout.splitlines()}
    return "--locale=C.UTF-8" if names & {"c.utf8", "c.utf-8"} else "--no-locale"


def _pg_running(layout: _PgLayout) -> tuple[int, int | None] | None:
    """(pid, port) of the postmaster using this data directory, or None.

    A ``postmaster.pid`` whose process is gone, or was reused by a process that is
    not PostgreSQL (common after a container restart), is removed.
    """
    pidfile = layout.data / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LocalStackError(f"cannot read {pidfile}: {exc}") from exc
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        pid = -1
    comm = _proc_comm(pid)
    if comm is not None and comm in ("postgres", "postmaster", ""):
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        return pid, port
    _say(f"removing stale {pidfile} (pid {pid} is not a running PostgreSQL)")
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    return None


def _wait_for_port(port: int, timeout: float = WAIT_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_open(port):
            return True
        time.sleep(0.1)
    return False


def _ensure_postgres(root: Path, port: int) -> None:
    layout = _pg_layout(root)
    running = _pg_running(layout)
    if running is not None:
        pid, running_port = running
        if running_port is not None and running_port != port:
            raise LocalStackError(
                f"the PostgreSQL cluster in {layout.data} is already running on port "
                f"{running_port} (pid {pid}), not {port}; stop it first with "
                "`python -m booking.localstack down`"
            )
        if not _wait_for_port(port):
            raise LocalStackError(
                f"PostgreSQL (pid {pid}) is running from {layout.data} but does not accept "
                f"connections on {HOST}:{port}{_log_tail(layout.logfile)}"
            )
        _say(f"PostgreSQL already running on {HOST}:{port} (data {layout.data})")
        return
    if _port_open(port):
        raise LocalStackError(
            f"port {port} on {HOST} is in use by another process; choose another PostgreSQL port"
        )

    bindir = _pg_bindir(layout.data if layout.initialized else None)
    if not layout.initialized:
        if layout.data.exists():
            _say(f"removing incomplete data directory {layout.data} (no PG_VERSION)")
            shutil.rmtree(layout.data)
        _say(f"initialising PostgreSQL cluster in {layout.data}")
        _run(
            layout.command(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(layout.data),
                    "-A",
                    "trust",
                    "-U",
                    PG_SUPERUSER,
                    "-E",
                    "UTF8",
                    _initdb_locale(),
                ]
            ),
            what="initdb",
            cwd=layout.base,
            env=_clean_env(),
            timeout=300,
        )

    if layout.run_as is None:
        layout.sockets.mkdir(mode=0o700, exist_ok=True)
    else:
        _own_dir(layout.sockets, pwd.getpwnam(layout.run_as))
    socket_dir = str(layout.sockets)
    if len(f"{socket_dir}/.s.PGSQL.{port}") > _MAX_SOCKET_PATH:
        socket_dir = ""  # path too long for a Unix socket: TCP only
    options = [f"-p {port}", f"-h {HOST}", f"-k {shlex.quote(socket_dir)}"]
    options += [f"-c {name}={value}" for name, value in PG_SERVER_SETTINGS]
    _say(f"starting PostgreSQL on {HOST}:{port} (data {layout.data})")
    _run(
        layout.command(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                str(PG_START_TIMEOUT),
                "-D",
                str(layout.data),
                "-l",
                str(layout.logfile),
                "-o",
                " ".join(options),
            ]
        ),
        what="pg_ctl start",
        cwd=layout.base,
        env=_clean_env(),
        log=layout.logfile,
        timeout=PG_START_TIMEOUT + 30,
    )
    if not _wait_for_port(port):
        raise LocalStackError(
            f"PostgreSQL started but {HOST}:{port} does not accept connections"
            f"{_log_tail(layout.logfile)}"
        )


def _stop_postgres(root: Path) -> None:
    for base in _pg_candidates(root):
        layout = _existing_layout(base)
        if not layout.initialized:
            continue
        running = _pg_running(layout)
        if running is None:
            continue
        _say(f"stopping PostgreSQL (pid {running[0]}, data {layout.data})")
        _run(
            layout.command(
                [
                    str(_pg_bindir(layout.data) / "pg_ctl"),
                    "stop",
                    "-w",
                    "-t",
                    str(PG_START_TIMEOUT),
                    "-m",
                    "fast",
                    "-D",
                    str(layout.data),
                ]
            ),
            what="pg_ctl stop",
            cwd=base,
            env=_clean_env(),
            log=layout.logfile,
            timeout=PG_START_TIMEOUT + 30,
        )


def _psql(stack: LocalStack, sql: str, *, what: str) -> str:
    bindir = _pg_bindir()
    psql = bindir / "psql"
    exe = str(psql) if psql.is_file() else (shutil.which("psql") or "psql")
    proc = _run(
        [
            exe,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            HOST,
            "-p",
            str(stack.pg_port),
            "-U",
            PG_SUPERUSER,
            "-d",
            "postgres",
            "-c",
            sql,
        ],
        what=what,
        env=_clean_env({"PGCONNECT_TIMEOUT": "10"}),
        timeout=120,
    )
    return proc.stdout.strip()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ensure_database(stack: LocalStack, dbname: str, *, recreate: bool = False) -> str:
    """Create ``dbname`` if it does not exist (drop it first when ``recreate``).

    Returns its URL. ``recreate`` terminates open connections to the database.
    """
    if not dbname or "\x00" in dbname or len(dbname.encode()) > 63:
        raise LocalStackError(f"invalid database name {dbname!r}")
    if dbname in ("postgres", "template0", "template1") and recreate:
        raise LocalStackError(f"refusing to recreate the system database {dbname!r}")
    with _locked(stack.root):
        exists = _psql(
            stack,
            f"SELECT 1 FROM pg_database WHERE datname = {_quote_literal(dbname)}",
            what=f"look up database {dbname}",
        )
        if exists and recreate:
            _say(f"dropping database {dbname}")
            _psql(
                stack,
                f"DROP DATABASE IF EXISTS {_quote_ident(dbname)} WITH (FORCE)",
                what=f"drop database {dbname}",
            )
        if recreate or not exists:
            _say(f"creating database {dbname}")
            _psql(
                stack,
                f"CREATE DATABASE {_quote_ident(dbname)}",
                what=f"create database {dbname}",
            )
    return stack.database_url(dbname)


# --------------------------------------------------------------------------- Redis


def _redis_server() -> str:
    for candidate in (shutil.which("redis-server"), "/usr/bin/redis-server"):
        if candidate and Path(candidate).is_file():
            return candidate
    _apt_install("redis-server")
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


def _redis_pid(root: Path) -> int | None:
    """The pid of our redis-server (from its pid file) when it is alive."""
    pidfile = _redis_dir(root) / "redis.pid"
    pid = _read_pid(pidfile)
    if pid is None:
        return None
    comm = _proc_comm(pid)
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


def _ensure_redis(root: Path, port: int) -> None:
    directory = _redis_dir(root)
    logfile = directory / "redis.log"
    state = _redis_probe(port)
    pid = _redis_pid(root)
    if state == "redis":
        if pid is None:
            _say(f"a Redis not started by localstack answers on {HOST}:{port}; reusing it")
        else:
            _say(f"Redis already running on {HOST}:{port} (pid {pid})")
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
            f"{HOST}:{port}; run `python -m booking.localstack down`{_log_tail(logfile)}"
        )
    server = _redis_server()
    directory.mkdir(parents=True, exist_ok=True)
    _say(f"starting Redis on {HOST}:{port}")
    _run(
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
            f"redis-server started but does not answer PING on {HOST}:{port}{_log_tail(logfile)}"
        )


def _stop_redis(root: Path) -> None:
    pid = _redis_pid(root)
    if pid is None:
        return
    _say(f"stopping Redis (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + WAIT_TIMEOUT
    while _proc_comm(pid) is not None:
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    with contextlib.suppress(FileNotFoundError):
        (_redis_dir(root) / "redis.pid").unlink()


# --------------------------------------------------------------------------- public API


def ensure_stack(
    root: Path | None = None,
    pg_port: int = DEFAULT_PG_PORT,
    redis_port: int = DEFAULT_REDIS_PORT,
) -> LocalStack:
    """Start PostgreSQL and Redis on 127.0.0.1 unless they are already running."""
    if pg_port == redis_port:
        raise LocalStackError(f"PostgreSQL and Redis cannot share port {pg_port}")
    state = _resolve_root(root)
    if not state.exists():
        state.mkdir(parents=True)
        os.chmod(state, 0o755)  # noqa: S103  (the PostgreSQL user must traverse it)
    with _locked(state):
        _ensure_postgres(state, pg_port)
        _ensure_redis(state, redis_port)
    return LocalStack(root=state, pg_port=pg_port, redis_port=redis_port)


def stop_stack(root: Path | None = None, *, postgres: bool = True, redis: bool = True) -> None:
    """Stop the PostgreSQL cluster and/or Redis started for this state directory."""
    state = _resolve_root(root)
    if not state.is_dir():
        return
    with _locked(state):
        if postgres:
            _stop_postgres(state)
        if redis:
            _stop_redis(state)


def running_servers(root: Path | None = None) -> list[str]:
    """Which of "postgres", "redis" run for this state directory (e.g. before CI starts)."""
    state = _resolve_root(root)
    if not state.is_dir():
        return []
    found: list[str] = []
    for base in _pg_candidates(state):
        layout = _existing_layout(base)
        if layout.initialized and _pg_running(layout) is not None:
            found.append("postgres")
            break
    if _redis_pid(state) is not None:
        found.append("redis")
    return found


def _status_lines(root: Path) -> list[str]:
    lines = [f"state dir: {root}"]
    pg_found = False
    for base in _pg_candidates(root):
        layout = _existing_layout(base)
        if not layout.initialized:
            continue
        pg_found = True
        running = _pg_running(layout)
        if running is None:
            lines.append(f"postgres: stopped (data {layout.data})")
        else:
            pid, port = running
            url = f"postgresql://{PG_SUPERUSER}@{HOST}:{port}/postgres"
            lines.append(f"postgres: running pid {pid} {url} (data {layout.data})")
    if not pg_found:
        lines.append("postgres: not initialised")
    redis_pid = _redis_pid(root)
    if redis_pid is None:
        lines.append("redis: stopped")
    else:
        port_text = "?"
        with contextlib.suppress(OSError, ValueError, IndexError):
            cmdline = Path(f"/proc/{redis_pid}/cmdline").read_bytes().decode(errors="replace")
            match = re.search(r":(\d+)", cmdline)
            if match:
                port_text = match.group(1)
        lines.append(f"redis: running pid {redis_pid} redis://{HOST}:{port_text}/0")
    return lines


def env_ports() -> tuple[int, int]:
    """The local stack's ports: BOOKING_LOCAL_PG_PORT / BOOKING_LOCAL_REDIS_PORT or defaults."""
    return (
        _env_port("BOOKING_LOCAL_PG_PORT", DEFAULT_PG_PORT),
        _env_port("BOOKING_LOCAL_REDIS_PORT", DEFAULT_REDIS_PORT),
    )


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise SystemExit(f"{name} must be a port number, got {raw!r}")
    return int(raw)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI; ports default to $BOOKING_LOCAL_PG_PORT / $BOOKING_LOCAL_REDIS_PORT."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", type=Path, default=None, help="state dir (default .local)")
    common.add_argument(
        "--pg-port", type=int, default=_env_port("BOOKING_LOCAL_PG_PORT", DEFAULT_PG_PORT)
    )
    common.add_argument(
        "--redis-port",
        type=int,
        default=_env_port("BOOKING_LOCAL_REDIS_PORT", DEFAULT_REDIS_PORT),
    )

    parser = argparse.ArgumentParser(
        prog="python -m booking.localstack",
        description="Local PostgreSQL + Redis for development and tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", parents=[common], help="start (or reuse) both servers")
    up.add_argument("--db", action="append", default=[], help="also create this database")
    down = sub.add_parser("down", parents=[common], help="stop both servers (or the named ones)")
    down.add_argument("--postgres", action="store_true", help="stop PostgreSQL")
    down.add_argument("--redis", action="store_true", help="stop Redis")
    sub.add_parser("status", parents=[common], help="show what is running")
    sub.add_parser(
        "running", parents=[common], help='print which servers run: "postgres", "redis"'
    )
    url = sub.add_parser("url", parents=[common], help="ensure a database, print its URL")
    url.add_argument("dbname")
    url.add_argument("--recreate", action="store_true", help="drop and create it")
    rurl = sub.add_parser("redis-url", parents=[common], help="ensure Redis, print its URL")
    rurl.add_argument("db", type=int, nargs="?", default=0)

    args = parser.parse_args(argv)
    try:
        if args.command == "down":
            both = not (args.postgres or args.redis)
            stop_stack(args.root, postgres=both or args.postgres, redis=both or args.redis)
        elif args.command == "running":
            print(" ".join(running_servers(args.root)))
        elif args.command == "status":
            print("\n".join(_status_lines(_resolve_root(args.root))))
        else:
            stack = ensure_stack(args.root, args.pg_port, args.redis_port)
            if args.command == "up":
                for name in args.db:
                    ensure_database(stack, name)
                print(f"postgres: {stack.database_url('postgres')}")
                for name in args.db:
                    print(f"database: {stack.database_url(name)}")
                print(f"redis:    {stack.redis_url()}")
            elif args.command == "url":
                print(ensure_database(stack, args.dbname, recreate=args.recreate))
            else:
                print(stack.redis_url(args.db))
    except LocalStackError as exc:
        print(f"localstack: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
