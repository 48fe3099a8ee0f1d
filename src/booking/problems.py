"""The one mapping from exceptions to RFC 9457 problem responses.

Bad input is always a 4xx with a stable ``type``; an unavailable dependency is
a 503; anything else is a 500 problem without a trace (logged with one).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)

from booking.db import DB_UNAVAILABLE_ERRORS
from booking.errors import PROBLEM_BASE, DomainError
from booking.telemetry.requests import PROBLEM_CODE_KEY

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("booking.problems")

_CODES_BY_STATUS = {
    400: ("malformed-request", "The request could not be read"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("too-large", "The request is too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
    503: ("unavailable", "A dependency is unavailable"),
}


def problem(
    request: Request[Any, Any, Any] | None,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    for key, value in (extra or {}).items():
        body.setdefault(key, value)  # never let extras overwrite the standard members
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, DomainError)
    request.scope.setdefault("state", {})[PROBLEM_CODE_KEY] = exc.code  # metrics
    headers: dict[str, str] = {}
    retry_after = exc.extra.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    response = problem(request, exc.status, exc.code, exc.title, exc.detail, extra=exc.extra)
    response.headers.update(headers)
    return response


def http_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code, title = _CODES_BY_STATUS.get(status, ("http-error", "Request failed"))
    extra: dict[str, Any] = {}
    detail = exc.detail or title
    if isinstance(exc, ValidationException):
        code, title = "malformed-request", "The request could not be read"
        if isinstance(exc.extra, list):
            extra["errors"] = [_clean_error(item) for item in exc.extra]
        detail = _plain(detail)
    if status >= 500:
        log.error("http exception %s on %s: %s", status, request.url.path, exc.detail)
        detail = "The server could not complete the request."
    return problem(request, status, code, title, detail, headers=exc.headers, extra=extra)


def _plain(detail: str) -> str:
    return detail if len(detail) <= 300 else detail[:297] + "..."


def _clean_error(item: Any) -> Any:
    if isinstance(item, dict):
        return {key: str(value)[:300] for key, value in item.items()}
    return str(item)[:300]


def bad_value_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Values Python or PostgreSQL cannot represent (year 10000, out-of-range ints)."""
    return problem(
        request,
        422,
        "invalid-input",
        "The request is not valid",
        "A value cannot be accepted: it is out of range or contains characters "
        "that cannot be stored (such as NUL).",
    )


def unavailable_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.warning("dependency unavailable on %s: %r", request.url.path, exc)
    return problem(
        request,
        503,
        "unavailable",
        "A dependency is unavailable",
        "The service is briefly unavailable; please retry shortly.",
        headers={"Retry-After": "2"},
    )


def collision_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A transaction PostgreSQL rolled back to break a deadlock or a serialization
    conflict (SQLSTATE class 40) that its caller did not retry: nothing was written, and
    the same request again will see the other writer's outcome."""
    log.warning("transaction rolled back on %s: %r", request.url.path, exc)
    return problem(
        request,
        503,
        "unavailable",
        "A dependency is unavailable",
        "Another change collided with this one and nothing was written; please retry.",
        headers={"Retry-After": "1"},
    )


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, (DB_UNAVAILABLE_ERRORS, asyncpg.exceptions.PostgresConnectionError)):
        return unavailable_handler(request, exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        request,
        500,
        "internal-error",
        "Internal error",
        "The server could not complete the request; it has been logged.",
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DomainError: domain_error_handler,
    HTTPException: http_exception_handler,
    OverflowError: bad_value_handler,
    asyncpg.exceptions.DataError: bad_value_handler,
    asyncpg.exceptions.TransactionRollbackError: collision_handler,
    asyncpg.exceptions.PostgresConnectionError: unavailable_handler,
    asyncpg.exceptions.InterfaceError: unavailable_handler,
    OSError: unavailable_handler,
    Exception: internal_error_handler,
}

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status", "detail"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, description="Stable code: /problems/<code>"),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
        "instance": Schema(type=OpenAPIType.STRING),
    },
    additional_properties=True,
    description="RFC 9457 problem details; machine fields (e.g. alternatives) may follow.",
    examples=[
        {
            "type": "/problems/slot-taken",
            "title": "That time is no longer free",
            "status": 409,
            "detail": "Someone else has just taken that time.",
            "alternatives": [],
        }
    ],
)


def document_problems(openapi: OpenAPI) -> None:
    """Make the OpenAPI document say what the API sends on errors.

    Litestar documents its own JSON error shape for 400; the handlers above send
    ``application/problem+json`` problem details for every 4xx and 5xx. Every
    documented error response is rewritten to that, and operations gain
    ``4XX``/``5XX`` problem responses, so clients and schema checkers see the truth.
    """
    components = openapi.components
    if isinstance(components, Components):
        components.schemas = {**(components.schemas or {}), "Problem": PROBLEM_SCHEMA}
    reference = Reference(ref="#/components/schemas/Problem")

    def problem_response(description: str) -> OpenAPIResponse:
        return OpenAPIResponse(
            description=description,
            content={PROBLEM_JSON: OpenAPIMediaType(schema=reference)},
        )

    for path_item in (openapi.paths or {}).values():
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation: Operation | None = getattr(path_item, method, None)
            if operation is None:
                continue
            responses = dict(operation.responses or {})
            for status, response in list(responses.items()):
                if status[:1] in ("4", "5") and isinstance(response, OpenAPIResponse):
                    responses[status] = problem_response(response.description)
            responses.setdefault("4XX", problem_response("A problem the caller can act on."))
            responses.setdefault("5XX", problem_response("The service could not answer."))
            operation.responses = responses


__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "document_problems", "problem"]
