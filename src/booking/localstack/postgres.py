"""The local PostgreSQL cluster: where its data lives (also when run as root through an
unprivileged user), starting, stopping, and creating databases."""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from booking.localstack.base import (
    HOST,
    MAX_SOCKET_PATH,
    PG_SERVER_SETTINGS,
    PG_START_TIMEOUT,
    PG_SUPERUSER,
    PG_SYSTEM_USER,
    WAIT_TIMEOUT,
    LocalStack,
    LocalStackError,
    clean_env,
    fallback_dir,
    is_root,
    locked,
    log_tail,
    port_open,
    proc_comm,
    run,
    say,
)


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


def pg_candidates(root: Path) -> list[Path]:
    if not is_root():
        return [root / "pg"]
    return [root / "pg", fallback_dir(root) / "pg"]


def _owner_name(path: Path) -> str | None:
    try:
        return pwd.getpwuid(path.stat().st_uid).pw_name
    except (OSError, KeyError):
        return None


def existing_layout(base: Path) -> _PgLayout:
    """The layout of an already initialised cluster, run as the data directory's owner."""
    run_as: str | None = None
    if is_root():
        owner = _owner_name(base / "data")
        run_as = owner if owner not in (None, "root") else PG_SYSTEM_USER
    return _PgLayout(base=base, run_as=run_as)


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        pass
    shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    say(f"creating system user {PG_SYSTEM_USER} to run PostgreSQL (it refuses to run as root)")
    run(
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
    proc = run(
        ["runuser", "-u", user, "--", "test", "-w", str(path)],
        what=f"access check for {user}",
        check=False,
        cwd=Path("/"),
    )
    return proc.returncode == 0


def _prepare_fallback_parent(root: Path) -> Path:
    parent = fallback_dir(root)
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
    if not is_root():
        primary.mkdir(parents=True, exist_ok=True)
        os.chmod(primary, 0o700)
        return _PgLayout(base=primary, run_as=None)

    user = _ensure_system_user()
    if (primary / "data" / "PG_VERSION").is_file():
        layout = existing_layout(primary)
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
    say(f"{reason}; using {fallback} for the PostgreSQL cluster")
    if (fallback / "data" / "PG_VERSION").is_file():
        return existing_layout(fallback)
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
    proc = run(["locale", "-a"], what="locale -a", check=False)
    names = {line.strip().lower() for line in proc.stdout.splitlines()}
    return "--locale=C.UTF-8" if names & {"c.utf8", "c.utf-8"} else "--no-locale"


def pg_running(layout: _PgLayout) -> tuple[int, int | None] | None:
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
    comm = proc_comm(pid)
    if comm is not None and comm in ("postgres", "postmaster", ""):
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        return pid, port
    say(f"removing stale {pidfile} (pid {pid} is not a running PostgreSQL)")
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    return None


def _wait_for_port(port: int, timeout: float = WAIT_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        time.sleep(0.1)
    return False


def ensure_postgres(root: Path, port: int) -> None:
    layout = _pg_layout(root)
    running = pg_running(layout)
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
                f"connections on {HOST}:{port}{log_tail(layout.logfile)}"
            )
        say(f"PostgreSQL already running on {HOST}:{port} (data {layout.data})")
        return
    if port_open(port):
        raise LocalStackError(
            f"port {port} on {HOST} is in use by another process; choose another PostgreSQL port"
        )

    bindir = _pg_bindir(layout.data if layout.initialized else None)
    if not layout.initialized:
        if layout.data.exists():
            say(f"removing incomplete data directory {layout.data} (no PG_VERSION)")
            shutil.rmtree(layout.data)
        say(f"initialising PostgreSQL cluster in {layout.data}")
        run(
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
            env=clean_env(),
            timeout=300,
        )

    if layout.run_as is None:
        layout.sockets.mkdir(mode=0o700, exist_ok=True)
    else:
        _own_dir(layout.sockets, pwd.getpwnam(layout.run_as))
    socket_dir = str(layout.sockets)
    if len(f"{socket_dir}/.s.PGSQL.{port}") > MAX_SOCKET_PATH:
        socket_dir = ""  # path too long for a Unix socket: TCP only
    options = [f"-p {port}", f"-h {HOST}", f"-k {shlex.quote(socket_dir)}"]
    options += [f"-c {name}={value}" for name, value in PG_SERVER_SETTINGS]
    say(f"starting PostgreSQL on {HOST}:{port} (data {layout.data})")
    run(
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
        env=clean_env(),
        log=layout.logfile,
        timeout=PG_START_TIMEOUT + 30,
    )
    if not _wait_for_port(port):
        raise LocalStackError(
            f"PostgreSQL started but {HOST}:{port} does not accept connections"
            f"{log_tail(layout.logfile)}"
        )


def stop_postgres(root: Path) -> None:
    for base in pg_candidates(root):
        layout = existing_layout(base)
        if not layout.initialized:
            continue
        running = pg_running(layout)
        if running is None:
            continue
        say(f"stopping PostgreSQL (pid {running[0]}, data {layout.data})")
        run(
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
            env=clean_env(),
            log=layout.logfile,
            timeout=PG_START_TIMEOUT + 30,
        )


def _psql(stack: LocalStack, sql: str, *, what: str) -> str:
    bindir = _pg_bindir()
    psql = bindir / "psql"
    exe = str(psql) if psql.is_file() else (shutil.which("psql") or "psql")
    proc = run(
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
        env=clean_env({"PGCONNECT_TIMEOUT": "10"}),
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
    with locked(stack.root):
        exists = _psql(
            stack,
            f"SELECT 1 FROM pg_database WHERE datname = {_quote_literal(dbname)}",
            what=f"look up database {dbname}",
        )
        if exists and recreate:
            say(f"dropping database {dbname}")
            _psql(
                stack,
                f"DROP DATABASE IF EXISTS {_quote_ident(dbname)} WITH (FORCE)",
                what=f"drop database {dbname}",
            )
        if recreate or not exists:
            say(f"creating database {dbname}")
            _psql(
                stack,
                f"CREATE DATABASE {_quote_ident(dbname)}",
                what=f"create database {dbname}",
            )
    return stack.database_url(dbname)
