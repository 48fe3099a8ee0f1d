"""The interactive API docs, served by the app itself (no CDN), and the landing page at ``/``.

Litestar's Swagger UI page loads its JavaScript and CSS from a CDN by default, so it is
blank on a machine without internet. Here the page points at a copy of the Swagger UI
distribution packaged on PyPI (``swagger-ui-py``, which ships swagger-ui-dist's files in
``swagger_ui/static``), served from ``/schema/assets`` by a static-files router that the
render plugin adds to the OpenAPI router (public, like the document itself).
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path
from typing import Any

from litestar import MediaType, Request, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from booking.access.guards import PUBLIC

SCHEMA_PATH = "/schema"
ASSETS = "/assets"  # under the OpenAPI router's path
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css")
TITLE = "Booking and appointment-guarantee API"


def swagger_ui_dist() -> Path:
    """The packaged Swagger UI distribution (swagger-ui-bundle.js, swagger-ui.css, ...)."""
    return Path(str(files("swagger_ui") / "static"))


class LocalSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI with every asset served by this app."""

    def __init__(self, schema_path: str = SCHEMA_PATH) -> None:
        assets = f"{schema_path}{ASSETS}"
        super().__init__(
            js_url=f"{assets}/swagger-ui-bundle.js",
            css_url=f"{assets}/swagger-ui.css",
            standalone_preset_js_url=f"{assets}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{assets}/favicon-32x32.png'>",
            path="/swagger",
        )

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                path=ASSETS,
                directories=[swagger_ui_dist()],
                name="swagger-ui-assets",
                opt=PUBLIC,
                include_in_schema=False,
                cache_control=CacheControlHeader(max_age=86400, public=True),
            )
        )


LINKS = (
    ("API docs (interactive)", f"{SCHEMA_PATH}", "Swagger UI, served by this server"),
    ("OpenAPI document", f"{SCHEMA_PATH}/openapi.json", "OpenAPI 3.1, JSON"),
    ("OpenAPI document (YAML)", f"{SCHEMA_PATH}/openapi.yaml", "the same, YAML"),
    ("Health", "/health", "the process is alive"),
    ("Readiness", "/ready", "PostgreSQL and Redis reachable, else 503"),
)


def _landing_html() -> str:
    items = "\n".join(
        f'      <li><a href="{html.escape(href)}">{html.escape(label)}</a> '
        f"<span>{html.escape(note)}</span></li>"
        for label, href, note in LINKS
    )
    return f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{TITLE}</title>
    <style>
      body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto;
             padding: 0 1rem; line-height: 1.5; }}
      li span {{ color: #555; }}
    </style>
  </head>
  <body>
    <h1>{TITLE}</h1>
    <p>JSON REST API under <code>/v1</code>; authenticate with
       <code>Authorization: Bearer &lt;key&gt;</code>.</p>
    <ul>
{items}
    </ul>
  </body>
</html>
"""


@get(
    "/",
    summary="Landing page: links to the API docs and the OpenAPI document",
    description="HTML for a browser; JSON with the same links for `Accept: application/json`.",
    security=[{}],  # public: no credentials
    opt=PUBLIC,
    include_in_schema=False,  # a page for people, like the docs pages themselves
    sync_to_thread=False,
)
def home(request: Request[Any, Any, Any]) -> Response[Any]:
    wanted = request.accept.best_match([MediaType.HTML, MediaType.JSON], default=MediaType.HTML)
    if wanted == MediaType.JSON:
        return Response(
            {
                "name": TITLE,
                "api": "/v1",
                "docs": SCHEMA_PATH,
                "openapi": f"{SCHEMA_PATH}/openapi.json",
                "health": "/health",
                "ready": "/ready",
            },
            media_type=MediaType.JSON,
        )
    return Response(_landing_html(), media_type=MediaType.HTML)
