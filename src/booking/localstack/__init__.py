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

The package: :mod:`.base` (constants, the error, subprocess helpers, the state
directory's lock), :mod:`.postgres`, :mod:`.redis`, :mod:`.stack` (both together) and
:mod:`.cli` (the command line below); this module re-exports the public API.

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

from booking.localstack.base import (
    FALLBACK_BASE,
    PG_SUPERUSER,
    PG_SYSTEM_USER,
    LocalStack,
    LocalStackError,
    project_root,
)
from booking.localstack.cli import main
from booking.localstack.postgres import ensure_database
from booking.localstack.stack import ensure_stack, env_ports, running_servers, stop_stack
from booking.settings import DEFAULT_PG_PORT, DEFAULT_REDIS_PORT

__all__ = [
    "DEFAULT_PG_PORT",
    "DEFAULT_REDIS_PORT",
    "FALLBACK_BASE",
    "PG_SUPERUSER",
    "PG_SYSTEM_USER",
    "LocalStack",
    "LocalStackError",
    "ensure_database",
    "ensure_stack",
    "env_ports",
    "main",
    "project_root",
    "running_servers",
    "stop_stack",
]
