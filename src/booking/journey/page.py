"""The manager's journey page (``/desk/journey``) and one booking's timeline page.

Served under the desk console's session (:mod:`booking.console.web`: sign-in by link or
code, HttpOnly cookie, CSRF for forms); only a manager's session (or an admin's) sees it,
a front-desk session gets a 403 page. The figures are :func:`metrics.journey_metrics`'s,
drawn as inline SVG (:mod:`booking.journey.charts`); the list names the period's
bookings with a low score (<= 2) or a broken promise, each linking to its timeline.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath

from booking import db
from booking.console.i18n import words
from booking.console.session import StaffSession
from booking.console.web import (
    CONSOLE,
    CONSOLE_EXCEPTION_HANDLERS,
    STAFF_DEPENDENCIES,
    html,
    language,
    template_env,
)
from booking.errors import InvalidInput
from booking.journey import metrics, timeline
from booking.journey.charts import bar_chart, day_series, percent
from booking.journey.page_words import JOURNEY_WORDS

_env = template_env("booking.journey")
DEFAULT_DAYS = 28
LIST_LIMIT = 50

_ATTENTION_SQL = """
SELECT b.id, b.reference_code, b.starts_at, b.status, c.name AS customer,
       s.name AS service, st.name AS staff, min(f.score) AS score,
       coalesce(array_agg(DISTINCT p.kind) FILTER (WHERE p.id IS NOT NULL), '{}') AS broken
FROM booking b
LEFT JOIN customer c ON c.id = b.customer_id
JOIN service s ON s.business_id = b.business_id AND s.id = b.service_id
JOIN staff st ON st.business_id = b.business_id AND st.id = b.staff_id
LEFT JOIN feedback f ON f.business_id = b.business_id AND f.booking_id = b.id
    AND f.status = 'received' AND f.score <= $4
LEFT JOIN promise p ON p.business_id = b.business_id AND p.booking_id = b.id
    AND p.status = 'broken'
WHERE b.business_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
  AND (f.booking_id IS NOT NULL OR p.id IS NOT NULL)
GROUP BY b.id, b.reference_code, b.starts_at, b.status, c.name, s.name, st.name
ORDER BY b.starts_at DESC, b.id
LIMIT $5
"""


async def _business(business_id: UUID) -> dict[str, Any]:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT id, name, locale, time_zone FROM business WHERE id = $1", business_id
        )
    assert row is not None  # a live session's key names an existing business
    return dict(row)


def _period(request: Request[Any, Any, Any], tz: ZoneInfo) -> tuple[date, date]:
    today = datetime.now(tz).date()
    raw_from = request.query_params.get("from")
    raw_to = request.query_params.get("to")
    try:
        last = date.fromisoformat(raw_to) if raw_to else today
        first = date.fromisoformat(raw_from) if raw_from else last - timedelta(DEFAULT_DAYS - 1)
    except ValueError as error:
        raise InvalidInput("from and to are days, e.g. 2026-11-01.", field="from") from error
    metrics.period_of(first, last, tz)  # the API's own limits
    return first, last


def _when(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%d/%m/%Y %H:%M")


def _charts(body: dict[str, Any], t: dict[str, str]) -> dict[str, Any]:
    totals = body["totals"]
    per_day = [(date.fromisoformat(str(d["date"])), d["bookings"]) for d in body["days"]]
    channels = [(name, n, str(n)) for name, n in totals["bookings_by_channel"].items()]

    def scores(key: str) -> list[tuple[str, float, str]]:
        return [
            (g["name"], g["mean"], f"{g['mean']:.2f} ({g['count']})")
            for g in totals["feedback_by"][key]
        ]

    kinds = [
        (
            kind,
            v["kept_rate"] or 0.0,
            f"{percent(v['kept_rate'])} ({v['kept']}/{v['kept'] + v['broken']})",
        )
        for kind, v in totals["promises"]["by_kind"].items()
    ]
    return {
        "series": day_series("chart-per-day", t["bookings_per_day"], per_day),
        "bars": [
            bar_chart("chart-channel", t["by_channel"], channels),
            bar_chart("chart-service", t["feedback_by_service"], scores("service"), 5),
            bar_chart("chart-staff", t["feedback_by_staff"], scores("staff"), 5),
            bar_chart("chart-feedback-channel", t["feedback_by_channel"], scores("channel"), 5),
            bar_chart("chart-promises", t["promises_by_kind"], kinds, 1),
        ],
    }


def _tiles(totals: dict[str, Any], t: dict[str, str]) -> list[dict[str, str]]:
    promises = totals["promises"]
    confirmation = totals["confirmation_minutes"]
    mean = totals["feedback_mean"]
    return [
        {"id": "kpi-bookings", "label": t["bookings"], "value": str(totals["bookings"])},
        {
            "id": "kpi-changed",
            "label": t["changed_share"],
            "value": percent(totals["changed_share"]),
        },
        {
            "id": "kpi-lost",
            "label": t["lost_recovered"],
            "value": f"{totals['lost_slots_recovered']} {t['of']} {totals['lost_slots']}",
        },
        {
            "id": "kpi-reminders",
            "label": t["reminders_delivered"],
            "value": f"{totals['reminders_delivered']} {t['of']} {totals['reminders_sent']}",
        },
        {"id": "kpi-no-show", "label": t["no_show_rate"], "value": percent(totals["no_show_rate"])},
        {
            "id": "kpi-no-show-reminded",
            "label": t["no_show_reminded"],
            "value": percent(totals["no_show_rate_reminder_delivered"]),
        },
        {
            "id": "kpi-no-show-unreminded",
            "label": t["no_show_unreminded"],
            "value": percent(totals["no_show_rate_no_reminder_delivered"]),
        },
        {
            "id": "kpi-promises",
            "label": t["promises_kept"],
            "value": f"{percent(promises['kept_rate'])} ({promises['kept']}/"
            f"{promises['kept'] + promises['broken']})",
        },
        {
            "id": "kpi-feedback",
            "label": t["feedback_mean"],
            "value": "-" if mean is None else f"{mean:.2f} ({totals['feedback_count']})",
        },
        {
            "id": "kpi-confirmation",
            "label": t["confirmation"],
            "value": "-"
            if confirmation["p50"] is None
            else f"{confirmation['p50']:g} / {confirmation['p90']:g}",
        },
    ]


async def _attention(business_id: UUID, first: date, last: date, tz: ZoneInfo) -> list[Any]:
    period = metrics.Period(first, last, tz)
    async with db.connection() as conn:
        rows = await conn.fetch(
            _ATTENTION_SQL,
            business_id,
            period.starts,
            period.ends,
            metrics.LOW_SCORE,
            LIST_LIMIT,
        )
    return [{**dict(row), "when": _when(row["starts_at"], tz)} for row in rows]


class JourneyPageController(Controller):
    path = "/desk/journey"
    include_in_schema = False
    opt = CONSOLE
    dependencies = STAFF_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    async def _context(
        self, request: Request[Any, Any, Any], staff: StaffSession
    ) -> dict[str, Any]:
        business = await _business(staff.business_id)
        lang = language(request, business["locale"])
        return {
            "lang": lang,
            "t": words(lang, JOURNEY_WORDS),
            "business": business,
            "staff": staff,
        }

    def _page(
        self, request: Request[Any, Any, Any], template: str, status: int = 200, **values: Any
    ) -> Response[str]:
        response = html(_env, template, status, **values)
        if request.query_params.get("lang"):
            response.set_cookie(Cookie(key="booking_lang", value=values["lang"], path="/"))
        return response

    @get("", opt=CONSOLE)
    async def journey_page(
        self, request: Request[Any, Any, Any], staff: NamedDependency[StaffSession]
    ) -> Response[str]:
        """Query: ``from``, ``to`` (days in the business's zone; default the last 28 days)."""
        values = await self._context(request, staff)
        t = values["t"]
        if not staff.principal.is_manager:
            return self._page(
                request, "journey_refused.html", 403, message=t["managers_only"], **values
            )
        tz = ZoneInfo(values["business"]["time_zone"])
        try:
            first, last = _period(request, tz)
        except InvalidInput:
            return self._page(
                request, "journey_refused.html", 400, message=t["bad_period"], **values
            )
        body = await metrics.journey_metrics(staff.principal, staff.business_id, first, last)
        totals = body["totals"]
        return self._page(
            request,
            "journey.html",
            first=first,
            last=last,
            tiles=_tiles(totals, t),
            moments=totals["moments_of_truth"],
            attention=await _attention(staff.business_id, first, last, tz),
            **_charts(body, t),
            **values,
        )

    @get("/bookings/{booking_id:uuid}", opt=CONSOLE)
    async def timeline_page(
        self,
        request: Request[Any, Any, Any],
        staff: NamedDependency[StaffSession],
        booking_id: FromPath[UUID],
    ) -> Response[str]:
        values = await self._context(request, staff)
        if not staff.principal.is_manager:
            t = values["t"]
            return self._page(
                request, "journey_refused.html", 403, message=t["managers_only"], **values
            )
        journey = await timeline.booking_journey(staff.principal, booking_id)
        tz = ZoneInfo(journey.time_zone)
        entries = [
            {
                "when": _when(entry.at.astimezone(UTC), tz),
                "touchpoint": entry.touchpoint,
                "actor": entry.actor.name,
                "actor_type": entry.actor.type,
                "channel": entry.channel,
                "detail": ", ".join(
                    f"{key}: {value}"
                    for key, value in entry.detail.items()
                    if value not in (None, "")
                ),
            }
            for entry in journey.entries
        ]
        return self._page(
            request,
            "journey_timeline.html",
            journey=journey,
            entries=entries,
            **values,
        )
