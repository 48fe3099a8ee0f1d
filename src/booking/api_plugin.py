"""Wires access control into the app in one line: ``plugins=[AccessPlugin()]``.

Above both booking.access and booking.idempotency (the middleware needs the caller's
principal), so neither imports the other's wiring: no import cycle.

* the app-wide :func:`~booking.access.guards.authorize` guard (closed by default);
* the request limits (:mod:`booking.limits`), then the Idempotency-Key middleware;
* the OpenAPI document: both credential schemes, ``security: []`` on public
  operations, and the ``Idempotency-Key`` header on every POST and PATCH.
"""

from __future__ import annotations

from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

from litestar import Router
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.enums import ParamType
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import (
    Components,
    OpenAPIType,
    Operation,
    Parameter,
    Schema,
    SecurityScheme,
)
from litestar.plugins import InitPluginProtocol, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from booking.access.guards import PUBLIC, authorize, is_public
from booking.idempotency.middleware import HEADER, MAX_KEY_LENGTH, METHODS, IdempotencyMiddleware
from booking.limits import LimitsMiddleware

BEARER_SCHEME = "apiKey"
HEADER_SCHEME = "apiKeyHeader"
IDEMPOTENCY_PARAMETER = Parameter(
    name=HEADER,
    param_in=ParamType.HEADER,
    required=False,
    description=(
        "Makes a retry safe: the first answer to this key is stored for 24 h and replayed "
        "(with `Idempotent-Replayed: true`) for a retry with the same method, path and body; "
        "the same key with a different request is a 422; a retry while the first request is "
        "still running waits for it. 1-255 characters, e.g. a UUID. Keys are per API key."
    ),
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_KEY_LENGTH),
)


@dataclass
class IdempotentOperation(Operation):
    """An operation that documents the Idempotency-Key header."""

    def __post_init__(self) -> None:
        parameters = list(self.parameters or [])
        if not any(getattr(item, "name", None) == HEADER for item in parameters):
            parameters.append(IDEMPOTENCY_PARAMETER)
        self.parameters = parameters


@dataclass
class PublicOperation(Operation):
    """An operation anyone may call: no security requirement."""

    def __post_init__(self) -> None:
        self.security = []


class AccessPlugin(InitPluginProtocol, ReceiveRoutePlugin):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.guards = [*app_config.guards, authorize]
        # Limits first: it counts the body before the Idempotency-Key middleware buffers it.
        app_config.middleware = [*app_config.middleware, LimitsMiddleware, IdempotencyMiddleware]
        openapi = app_config.openapi_config
        if openapi is not None:
            if openapi.openapi_router is None:
                openapi.openapi_router = Router(
                    openapi.path or "/schema",
                    route_handlers=[],
                    include_in_schema=False,
                    opt=PUBLIC,
                )
            components = openapi.components
            if isinstance(components, list):  # pragma: no cover - app.py passes one
                components = components[0]
            schemes = dict(components.security_schemes or {})
            schemes.setdefault(
                BEARER_SCHEME,
                SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="A partner, staff or app API key, or a customer's booking token.",
                ),
            )
            schemes[HEADER_SCHEME] = SecurityScheme(
                type="apiKey",
                name="X-API-Key",
                security_scheme_in="header",
                description="The same API key in a header, for clients that cannot set "
                "Authorization. Never both.",
            )
            components.security_schemes = schemes
            openapi.components = components
            openapi.security = [{BEARER_SCHEME: []}, {HEADER_SCHEME: []}]
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            if is_public(handler):
                handler.operation_class = PublicOperation
            elif handler.http_methods & METHODS:
                handler.operation_class = IdempotentOperation


class GuardsInOnePass(InitPluginProtocol):
    """Listed after every plugin that adds a guard: the app's guards run as one guard,
    in the order they were added (authorization first). Litestar hands each guard its
    own shallow copy of the route handler, ~8 us per guard on every request."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        guards = tuple(app_config.guards)
        if len(guards) > 1:

            async def app_guards(
                connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
            ) -> None:
                for guard in guards:
                    result = guard(connection, handler)
                    if isawaitable(result):
                        await result

            app_config.guards = [app_guards]
        return app_config


__all__ = ["AccessPlugin", "Components", "GuardsInOnePass"]
