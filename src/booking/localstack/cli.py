"""``python -m booking.localstack ...``: the command line over :mod:`booking.localstack.stack`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from booking.localstack.base import LocalStackError, resolve_root
from booking.localstack.postgres import ensure_database
from booking.localstack.stack import (
    ensure_stack,
    env_port,
    running_servers,
    status_lines,
    stop_stack,
)
from booking.settings import DEFAULT_PG_PORT, DEFAULT_REDIS_PORT


def main(argv: Sequence[str] | None = None) -> int:
    """CLI; ports default to $BOOKING_LOCAL_PG_PORT / $BOOKING_LOCAL_REDIS_PORT."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", type=Path, default=None, help="state dir (default .local)")
    common.add_argument(
        "--pg-port", type=int, default=env_port("BOOKING_LOCAL_PG_PORT", DEFAULT_PG_PORT)
    )
    common.add_argument(
        "--redis-port",
        type=int,
        default=env_port("BOOKING_LOCAL_REDIS_PORT", DEFAULT_REDIS_PORT),
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
    sub.add_parser("running", parents=[common], help='print which servers run: "postgres", "redis"')
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
            print("\n".join(status_lines(resolve_root(args.root))))
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
