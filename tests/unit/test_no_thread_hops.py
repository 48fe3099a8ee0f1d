"""No request of the API hops to Litestar's thread pool.

Litestar runs a plain-function guard, dependency provider or route handler in its
thread pool (``sync_to_thread``) unless told otherwise; on the hot path that hop cost
every request of the API. Every guard, provider and handler the app serves must be a
coroutine, or a plain function marked ``sync_to_thread=False``.
"""

from __future__ import annotations

import inspect
from typing import Any

from litestar.handlers import HTTPRouteHandler

from booking.app import create_app


def _is_coroutine(fn: Any) -> bool:
    target = getattr(fn, "func", fn)  # Litestar's AsyncCallable keeps the original here
    method = type(target).__call__ if not inspect.isfunction(target) else None
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(method)


def test_no_guard_provider_or_handler_runs_in_a_thread() -> None:
    app = create_app()
    hops: list[str] = []
    handlers = [handler for route in app.routes for handler in getattr(route, "route_handlers", [])]
    assert handlers
    for handler in handlers:
        where = f"{handler.handler_name} {sorted(handler.paths)}"
        hops += [
            f"guard {getattr(guard, 'func', guard)!r} on {where}"
            for guard in handler.resolve_guards()
            if not _is_coroutine(guard)
        ]
        hops += [
            f"dependency {name!r} on {where}"
            for name, provider in handler.resolve_dependencies().items()
            if provider.has_sync_callable and provider.sync_to_thread is not False
        ]
        sync = isinstance(handler, HTTPRouteHandler) and handler.has_sync_callable
        if sync and handler.sync_to_thread:
            hops.append(f"handler {where}")
    assert hops == []
