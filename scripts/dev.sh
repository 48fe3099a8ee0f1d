#!/usr/bin/env bash
# Developer entry point.
#
#   scripts/dev.sh bootstrap   create .venv, install the project (+dev extras), ensure redis-server
#   scripts/dev.sh run [ARGS]  bootstrap, then `booking up ARGS` (local stack, migrate, seed, serve)
#   scripts/dev.sh test [ARGS] bootstrap, start the local stack, ruff + mypy + pytest ARGS
#   scripts/dev.sh lint        bootstrap, ruff check + mypy
#   scripts/dev.sh status      show the local PostgreSQL/Redis
#   scripts/dev.sh running     print which local servers run ("postgres redis")
#   scripts/dev.sh down [--postgres] [--redis]   stop the local PostgreSQL/Redis (default both)
#
# `test` leaves the local servers running for the next run; `.ci/run` stops the ones
# it started.
#
# Ports of the local stack: $BOOKING_LOCAL_PG_PORT / $BOOKING_LOCAL_REDIS_PORT (54329 / 63799).
# Works from any directory. On a fresh Debian machine as root it needs only python3 (>= 3.11)
# and the PostgreSQL 15 server binaries; redis-server is installed with apt-get when missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
STAMP="$VENV/.booking-install-stamp"
PYTHON="${PYTHON:-python3}"
APT_UPDATED=0

say() { printf 'dev.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

apt_install() {
    is_root && command -v apt-get >/dev/null 2>&1 \
        || die "$* missing; install it (Debian: apt-get install -y $*)"
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        || die "apt-get install $* failed"
}

stamp_value() {
    # Reinstall when pyproject.toml or the interpreter changes.
    {
        cat pyproject.toml
        "$VENV/bin/python" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

ensure_venv() {
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (need Python >= 3.11)"
    "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
        || die "$PYTHON is $("$PYTHON" -V 2>&1); need Python >= 3.11"
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        return
    fi
    if [ -e "$VENV" ]; then
        say "removing broken virtualenv $VENV"
        rm -rf "$VENV"
    fi
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        # Debian's python3 ships venv/ensurepip separately.
        minor="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt_install "python${minor}-venv"
    fi
    say "creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV" || { rm -rf "$VENV"; die "python3 -m venv failed"; }
}

ensure_install() {
    local want
    want="$(stamp_value)"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/booking" ]; then
        return
    fi
    say "installing the project into $VENV (pip install -e '.[dev]')"
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e '.[dev]'
    printf '%s\n' "$want" >"$STAMP"
}

ensure_redis() {
    if command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; then
        return
    fi
    apt_install redis-server
}

ensure_chromium() {
    # The self-service page tests drive Debian's chromium through Playwright (never
    # `playwright install`).
    if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
        return
    fi
    apt_install chromium
}

ensure_readme_tools() {
    # tests/docs/test_readme_blocks.py runs the README's curl | jq blocks as written.
    local missing=() tool
    for tool in curl jq; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
}

check_postgres() {
    if compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null \
        || command -v pg_ctl >/dev/null 2>&1 || [ -n "${BOOKING_PG_BINDIR:-}" ]; then
        return
    fi
    die "PostgreSQL server binaries not found (Debian: apt-get install -y postgresql-15)"
}

bootstrap() {
    ensure_venv
    ensure_install
    ensure_redis
    check_postgres
}

localstack() {
    if [ -x "$VENV/bin/python" ]; then
        "$VENV/bin/python" -m booking.localstack "$@"
    else  # localstack.py is stdlib-only, so it also runs before bootstrap
        PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m booking.localstack "$@"
    fi
}

lint_paths() {
    local p
    for p in src tests bench; do
        [ -e "$p" ] && printf '%s\n' "$p"
    done
    return 0
}

lint() {
    local paths
    mapfile -t paths < <(lint_paths)
    say "ruff check ${paths[*]}"
    "$VENV/bin/ruff" check "${paths[@]}"
    say "mypy"
    "$VENV/bin/mypy"
}

run_tests() {
    localstack up >&2
    BOOKING_TEST_DATABASE_URL="$(localstack url booking_test)"
    BOOKING_TEST_REDIS_URL="$(localstack redis-url 1)"
    export BOOKING_TEST_DATABASE_URL BOOKING_TEST_REDIS_URL
    say "BOOKING_TEST_DATABASE_URL=$BOOKING_TEST_DATABASE_URL"
    say "BOOKING_TEST_REDIS_URL=$BOOKING_TEST_REDIS_URL"
    lint
    say "pytest -q $*"
    local rc=0
    "$VENV/bin/pytest" -q "$@" || rc=$?
    if [ "$rc" -eq 5 ]; then
        die "pytest collected no tests (exit 5)"
    fi
    return "$rc"
}

usage() {
    sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

cmd="${1:-}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
    bootstrap) bootstrap ;;
    run)
        bootstrap
        exec "$VENV/bin/booking" up "$@"
        ;;
    test)
        bootstrap
        ensure_chromium
        ensure_readme_tools
        run_tests "$@"
        ;;
    lint)
        bootstrap
        lint
        ;;
    status) localstack status ;;
    running) localstack running ;;
    down) localstack down "$@" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
