"""Every route handler declares its dependencies, parameters and body the Litestar 2.x way.

Litestar warns (LitestarDeprecationWarning, "will stop working in Litestar 3.0") once per
handler when the app is built, for inferred dependencies (``principal: Principal``),
inferred or ``Parameter(query=...)`` parameters and a ``data`` without a body marker. The
API usually runs in a uvicorn subprocess whose warnings the suite never sees, so this test
builds the app (and its OpenAPI document) here and fails on any such warning: a handler
added later in the old style fails CI. pyproject's filterwarnings also makes them errors
for the tests that build the app in-process.
"""

from __future__ import annotations

import warnings

from litestar.exceptions import LitestarDeprecationWarning

from booking.app import create_app


def test_building_the_app_raises_no_litestar_deprecation() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = create_app()
        app.openapi_schema.to_schema()
    litestar_warnings = [
        str(w.message)
        for w in caught
        if issubclass(w.category, LitestarDeprecationWarning)
        or (issubclass(w.category, DeprecationWarning) and "litestar" in w.filename)
    ]
    assert litestar_warnings == []
    assert len(app.routes) > 20  # the app really was built with its routes
