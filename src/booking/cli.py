"""The ``booking`` console command.

booking up         local PostgreSQL + Redis, migrations, demo data, API + worker
booking api        serve the API (uvicorn)
booking worker     run the arq worker
booking migrate    apply migrations (--backwards [ID] to roll back)
booking openapi    print the OpenAPI document to stdout
booking seed       load the demo data
booking key create|revoke   manage API keys
booking sign-in    a one-time sign-in code + link for a staff console (/desk)
booking reseal-secrets   re-encrypt webhook secrets and CalDAV passwords under the newest key
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from booking.settings import Settings

# How long `booking up` waits for its API to accept connections before giving up.
UP_PATIENCE = 60.0


def _settings() -> Any:
    from booking.settings import get_settings

    return get_settings()


def _refuse_insecure(command: str) -> int | None:
    """Exit status 2 with the reason when the settings are only safe locally."""
    from booking.settings import InsecureConfiguration

    try:
        _settings().check_deployable()
    except InsecureConfiguration as exc:
        print(f"booking {command}: error: {exc}", file=sys.stderr)
        return 2
    return None


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    refused = _refuse_insecure("api")
    if refused is not None:
        return refused

    from booking.serving import uvicorn_options

    if args.quiet:
        os.environ["BOOKING_ACCESS_LOG"] = "0"  # the app writes the access log, redacted
    uvicorn.run(
        "booking.app:asgi",
        factory=True,
        **uvicorn_options(),
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning" if args.quiet else "info",
        # uvicorn's own access log would print every /b/<token> link: ours redacts it
        # and carries the request id (booking.telemetry.requests).
        access_log=False,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from booking.telemetry.logs import configure_logging
    from booking.telemetry.process import run_worker
    from booking.worker import build_worker

    refused = _refuse_insecure("worker")
    if refused is not None:
        return refused
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format, "worker")
    return run_worker(build_worker(settings, burst=args.burst))


async def _with_db(coro_factory: Any) -> Any:
    from booking import db

    settings = _settings()
    await db.start_pool(settings.database_url, 1, 4)
    try:
        return await coro_factory()
    finally:
        await db.close_pool()


def cmd_migrate(args: argparse.Namespace) -> int:
    from booking.migrate import DatabaseNotReady, migrate_backwards, migrate_forwards

    try:
        if args.backwards is not None:
            asyncio.run(migrate_backwards(args.backwards))
        else:
            asyncio.run(migrate_forwards())
    except DatabaseNotReady as exc:
        print(f"booking migrate: error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from booking.app import create_app

    document = create_app().openapi_schema.to_schema()
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from booking.demo import seed_demo

    business_id = asyncio.run(_with_db(seed_demo))
    print(f"demo business: {business_id}")
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    from booking.access.service import create_api_key, create_partner, revoke_api_key

    if args.key_command == "revoke":
        done = asyncio.run(_with_db(lambda: revoke_api_key(args.prefix)))
        print("revoked" if done else "no such active key")
        return 0 if done else 1

    async def create() -> Any:
        partner_id = args.partner_id
        if args.kind == "partner" and partner_id is None:
            partner_id = await create_partner(args.partner_name or args.name or "partner")
        return await create_api_key(
            kind=args.kind,
            name=args.name or "",
            business_ids=[UUID(b) for b in args.business],
            role=args.role,
            partner_id=UUID(partner_id) if isinstance(partner_id, str) else partner_id,
            scopes=args.scope,
        )

    issued = asyncio.run(_with_db(create))
    print(json.dumps({"id": str(issued.id), "prefix": issued.prefix, "key": issued.key}))
    return 0


def cmd_reseal_secrets(args: argparse.Namespace) -> int:
    """After a new key was put first in BOOKING_ENCRYPTION_KEYS: move every stored webhook
    secret and CalDAV password to it, so the old keys can be dropped."""
    from booking.calendars.credentials import reseal_passwords
    from booking.webhooks.secrets import reseal_stored

    done = asyncio.run(_with_db(reseal_stored))
    passwords = asyncio.run(_with_db(reseal_passwords))
    print(f"resealed {done.resealed} webhook endpoints ({done.current} already current)")
    print(
        f"resealed {passwords.resealed} calendar passwords ({passwords.current} already current)"
    )
    failed = False
    for count, what in ((done.unreadable, "webhook endpoints have secrets"),
                        (passwords.unreadable, "calendar connections have passwords")):  # fmt: skip
        if count:
            failed = True
            print(
                f"booking reseal-secrets: error: {count} {what} no key in "
                "BOOKING_ENCRYPTION_KEYS opens; put the key they were sealed with back in the "
                "list (after the newest) and run again",
                file=sys.stderr,
            )
    return 1 if failed else 0


def cmd_sign_in(args: argparse.Namespace) -> int:
    from booking.access.principal import Principal
    from booking.console.session import issue_sign_in
    from booking.errors import DomainError

    operator = Principal(kind="admin", id="cli")
    try:
        issued = asyncio.run(
            _with_db(
                lambda: issue_sign_in(
                    operator,
                    base_url=_settings().public_base_url,
                    api_key_id=UUID(args.key) if args.key else None,
                    business_id=UUID(args.business) if args.business else None,
                    role=args.role,
                    label=args.label,
                )
            )
        )
    except DomainError as exc:
        print(f"booking sign-in: error: {exc.detail}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "code": issued.code,
                "link": issued.link,
                "api_key_id": str(issued.api_key_id),
                "expires_at": issued.expires_at.isoformat(),
            }
        )
    )
    return 0


def public_base_url(host: str, port: int) -> str:
    """The base of customer links (/b/...) for a server on host:port.

    A wildcard bind (0.0.0.0, ::) is reached locally through loopback; anything
    public must come from BOOKING_PUBLIC_BASE_URL.
    """
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def links_base(configured: str | None, host: str, port: int) -> tuple[str, str]:
    """``booking up``'s public base URL and where it came from."""
    if configured:
        return configured.rstrip("/"), "BOOKING_PUBLIC_BASE_URL"
    return public_base_url(host, port), "from --host/--port; BOOKING_PUBLIC_BASE_URL overrides"


def describe_sms(settings: Settings, *, backend_chosen: bool = True) -> str:
    """One line saying which sender the worker will use, and why.

    ``backend_chosen=False``: BOOKING_SMS_BACKEND is ``booking up``'s own default.
    """
    from booking.notifications.sms import sms_backend_in_use

    if sms_backend_in_use(settings) == "twilio":
        via = f" (API at {settings.twilio_base_url})" if settings.twilio_base_url else ""
        return f"sent through Twilio from {settings.twilio_from_number}{via}"
    if not settings.twilio_configured:
        return "printed on this console (no Twilio configured)"
    if backend_chosen:
        return "printed on this console (BOOKING_SMS_BACKEND=console; Twilio is configured)"
    return (
        "printed on this console (Twilio is configured; set BOOKING_SMS_BACKEND=twilio "
        "to text the demo's made-up customers through it)"
    )


def _port_taken(host: str, port: int) -> bool:
    """Whether something already listens on host:port (SO_REUSEADDR, as uvicorn binds:
    only a listener, not a closing connection, makes the bind fail)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError):
        return False  # a host that does not resolve: the API says so itself
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


def _wait_serving(
    api: subprocess.Popen[bytes], host: str, port: int, patience: float = UP_PATIENCE
) -> bool:
    """Wait until the API accepts connections (uvicorn listens once its startup, which
    opens the database pool, is done); False if it exits or takes over ``patience``."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    deadline = time.monotonic() + patience
    while api.poll() is None and time.monotonic() < deadline:
        try:
            with socket.create_connection((target, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def cmd_up(args: argparse.Namespace) -> int:
    """Everything, locally, with no configuration; Ctrl-C stops API and worker."""
    from booking.notifications.sms import SmsConfigurationError
    from booking.telemetry.process import supervise

    if _port_taken(args.host, args.port):
        print(
            f"booking up: error: {args.host}:{args.port} is already in use; "
            "stop what serves there or pick another with --port",
            file=sys.stderr,
        )
        return 2
    links, origin = links_base(os.environ.get("BOOKING_PUBLIC_BASE_URL"), args.host, args.port)
    os.environ["BOOKING_PUBLIC_BASE_URL"] = links
    # The demo's customers are made up: up texts them through Twilio only when asked.
    backend_chosen = bool(os.environ.get("BOOKING_SMS_BACKEND"))
    if not backend_chosen:
        os.environ["BOOKING_SMS_BACKEND"] = "console"
    # Local development: the public default secret key is allowed and partner webhooks
    # may point at http://127.0.0.1 (docs/security.md).
    os.environ.setdefault("BOOKING_ENV", "development")
    os.environ.setdefault("BOOKING_OUTBOUND_ALLOW_HTTP", "1")
    os.environ.setdefault("BOOKING_OUTBOUND_ALLOW_PRIVATE", "1")
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        from booking import localstack

        pg_port, redis_port = localstack.env_ports()
        stack = localstack.ensure_stack(pg_port=pg_port, redis_port=redis_port)
        if not os.environ.get("DATABASE_URL"):
            os.environ["DATABASE_URL"] = localstack.ensure_database(stack, "booking")
        if not os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = stack.redis_url(0)
    settings = _settings()
    try:
        sms = describe_sms(settings, backend_chosen=backend_chosen)
    except SmsConfigurationError as exc:
        print(f"booking up: error: {exc}", file=sys.stderr)
        return 2
    from booking.demo import issue_demo_keys, seed_demo
    from booking.migrate import migrate_forwards

    asyncio.run(migrate_forwards())

    async def seed() -> tuple[UUID, dict[str, Any], Any, Any]:
        from booking.access.principal import Principal
        from booking.console.session import issue_sign_in

        business_id = await seed_demo()
        keys = await issue_demo_keys(business_id)
        desk = await issue_sign_in(
            Principal(kind="admin", id="cli"),
            base_url=settings.public_base_url,
            api_key_id=keys["front desk"].id,
            label="Demo desk",
        )
        journey = await issue_sign_in(
            Principal(kind="admin", id="cli"),
            base_url=settings.public_base_url,
            api_key_id=keys["manager"].id,
            label="Demo manager",
        )
        return business_id, keys, desk, journey

    business_id, keys, desk, journey = asyncio.run(_with_db(seed))
    env = dict(os.environ)
    env.setdefault("BOOKING_LOG_FORMAT", "console")
    exe = [sys.executable, "-m", "booking.cli"]
    api = subprocess.Popen([*exe, "api", "--host", args.host, "--port", str(args.port)], env=env)
    children = [api]
    stopping = threading.Event()

    def stop(*_: Any) -> None:
        stopping.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)

    def wait_children() -> None:
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    signal.signal(signal.SIGTERM, stop)
    # The banner names a server that answers: printed once the API accepts connections.
    try:
        serving = _wait_serving(api, args.host, args.port)
    except KeyboardInterrupt:
        serving = False
        stopping.set()
    if not serving:
        asked_to_stop = stopping.is_set()  # before stop() below sets it
        stop()
        wait_children()
        if asked_to_stop:
            return 0  # Ctrl-C or SIGTERM while starting
        print(
            f"booking up: error: the API did not start serving on {args.host}:{args.port} "
            f"(exit status {api.returncode}); its log is above",
            file=sys.stderr,
        )
        return 1
    base = f"http://{args.host}:{args.port}"
    print(
        "\n".join(
            [
                "",
                f"  API            {base}/v1",
                f"  API docs       {base}/schema/swagger",
                f"  OpenAPI        {base}/schema/openapi.json",
                f"  health/ready   {base}/health  {base}/ready",
                f"  demo business  {business_id} (Salone Bellavista, Europe/Rome)",
                *[f"  {name + ' key':<14} {key.key}" for name, key in keys.items()],
                f"  desk sign-in   {desk.link} (code {desk.code}: one use, 15 min)",
                f"  journey page   {journey.link}&next=%2Fdesk%2Fjourney (manager, code "
                f"{journey.code}: one use, 15 min)",
                f"  SMS links      {settings.public_base_url}/b/... ({origin})",
                f"  SMS            {sms}",
                "",
            ]
        ),
        flush=True,
    )
    # A worker that dies (Redis full or gone, a crash) is started again; the API stays up.
    supervisor = threading.Thread(
        target=supervise,
        args=([*exe, "worker"], env, lambda: not stopping.is_set(), children.append),
        daemon=True,
    )
    supervisor.start()
    try:
        while api.poll() is None:
            try:
                api.wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        wait_children()
    return 0 if api.returncode in (0, None, -signal.SIGINT) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="booking", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole local stack")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.set_defaults(func=cmd_up)

    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1)
    api.add_argument("--quiet", action="store_true", help="no access log")
    api.set_defaults(func=cmd_api)

    worker = sub.add_parser("worker", help="run the arq worker")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="apply migrations")
    migrate.add_argument(
        "--backwards",
        nargs="?",
        const="1",
        default=None,
        help="roll back: a migration id, 'all', or nothing for the last one",
    )
    migrate.set_defaults(func=cmd_migrate)

    openapi = sub.add_parser("openapi", help="print the OpenAPI document")
    openapi.set_defaults(func=cmd_openapi)

    seed = sub.add_parser("seed", help="load demo data")
    seed.set_defaults(func=cmd_seed)

    key = sub.add_parser("key", help="manage API keys")
    key_sub = key.add_subparsers(dest="key_command", required=True)
    create = key_sub.add_parser("create")
    create.add_argument("--kind", choices=["admin", "staff", "partner", "app"], required=True)
    create.add_argument("--business", action="append", default=[], help="business id (repeat)")
    create.add_argument("--role", choices=["front_desk", "manager"])
    create.add_argument("--partner-id")
    create.add_argument("--partner-name")
    create.add_argument("--scope", action="append", default=[])
    create.add_argument("--name")
    revoke = key_sub.add_parser("revoke")
    revoke.add_argument("prefix")
    key.set_defaults(func=cmd_key)

    sign_in = sub.add_parser(
        "sign-in", help="a one-time sign-in code + link for a staff console (/desk)"
    )
    who = sign_in.add_mutually_exclusive_group(required=True)
    who.add_argument("--business", help="a new staff key for this business")
    who.add_argument("--key", help="an existing staff key's id")
    sign_in.add_argument("--role", choices=["front_desk", "manager"], default="front_desk")
    sign_in.add_argument("--label", default="", help="the desk's name, e.g. 'Counter 1'")
    sign_in.set_defaults(func=cmd_sign_in)

    reseal = sub.add_parser(
        "reseal-secrets",
        help="re-encrypt stored webhook secrets and CalDAV passwords under the newest "
        "BOOKING_ENCRYPTION_KEYS key",
    )
    reseal.set_defaults(func=cmd_reseal_secrets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
