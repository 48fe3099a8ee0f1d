"""Charts for the manager's journey page, drawn on the server as inline SVG.

No script and no CDN: the content security policy allows only the app's own scripts,
and a chart that is plain SVG markup prints, scales on a phone (``viewBox`` with
``width: 100%``) and is readable by a screen reader (each chart has a title and its
numbers as text). These functions only compute geometry; the template draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

BAR_HEIGHT = 22
BAR_GAP = 8
LABEL_WIDTH = 140
CHART_WIDTH = 480
SERIES_HEIGHT = 160


@dataclass(frozen=True, slots=True)
class Bar:
    """One horizontal bar: ``label`` on the left, ``shown`` (the number) at its end."""

    label: str
    value: float
    shown: str
    y: int
    width: float


@dataclass(frozen=True, slots=True)
class BarChart:
    id: str
    title: str
    bars: tuple[Bar, ...]
    height: int
    label_width: int = LABEL_WIDTH
    width: int = CHART_WIDTH


@dataclass(frozen=True, slots=True)
class Column:
    """One day of a time series: a vertical bar with its value above it."""

    day: date
    label: str  # the day as shown under the axis ("" between sparse labels)
    value: int
    x: float
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Series:
    id: str
    title: str
    columns: tuple[Column, ...]
    column_width: float
    peak: int
    height: int = SERIES_HEIGHT
    width: int = CHART_WIDTH


def bar_chart(
    chart_id: str, title: str, items: list[tuple[str, float, str]], scale: float | None = None
) -> BarChart:
    """Bars for ``(label, value, shown)``; ``scale`` is the value of a full bar (else the
    largest value), so a 1-5 score reads against 5, not against the best score."""
    plot = CHART_WIDTH - LABEL_WIDTH - 60  # room for the number after the bar
    top = scale if scale else max((value for _, value, _ in items), default=0)
    bars = tuple(
        Bar(
            label=label,
            value=value,
            shown=shown,
            y=i * (BAR_HEIGHT + BAR_GAP),
            width=round(plot * value / top, 1) if top else 0.0,
        )
        for i, (label, value, shown) in enumerate(items)
    )
    height = max(len(bars), 1) * (BAR_HEIGHT + BAR_GAP)
    return BarChart(id=chart_id, title=title, bars=bars, height=height)


def day_series(chart_id: str, title: str, points: list[tuple[date, int]]) -> Series:
    """Columns per day; at most about ten day labels under the axis (every k-th day)."""
    plot_height = SERIES_HEIGHT - 40  # value above, day label below
    n = max(len(points), 1)
    column_width = CHART_WIDTH / n
    peak = max((value for _, value in points), default=0)
    every = max(1, -(-n // 10))
    columns = tuple(
        Column(
            day=day,
            label=f"{day.day:02d}/{day.month:02d}" if i % every == 0 else "",
            value=value,
            x=round(i * column_width, 1),
            height=round(plot_height * value / peak, 1) if peak else 0.0,
            y=round(20 + plot_height - (plot_height * value / peak if peak else 0), 1),
        )
        for i, (day, value) in enumerate(points)
    )
    return Series(
        id=chart_id, title=title, columns=columns, column_width=round(column_width, 1), peak=peak
    )


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{round(rate * 100)}%"
