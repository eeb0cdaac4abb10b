"""Line charts over simulated time as self-contained SVG: no script, no CDN, no build step."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

WIDTH, HEIGHT = 460, 200
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 40, 26
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")
TICK_STEPS = (
    [timedelta(minutes=n) for n in (1, 5, 10, 15, 30)]
    + [timedelta(hours=n) for n in (1, 2, 3, 6, 12)]
    + [timedelta(days=n) for n in (1, 2, 7, 14, 30)]
)
MAX_TICKS = 6


@dataclass
class Series:
    """One line: `points` in time order; a `step` line holds each value until the next point."""

    name: str
    points: list[tuple[datetime, Decimal | int | float]] = field(default_factory=list)
    step: bool = True


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least `value`."""
    power = 10 ** math.floor(math.log10(value))
    return next(n * power for n in (1, 2, 5, 10) if n * power >= value)


def _value_ticks(low: float, high: float, whole: bool) -> list[float]:
    step = _nice_ceiling((high - low) / 4)
    if whole:
        step = max(1, step)
    first = math.floor(low / step) * step
    ticks, tick = [], first
    while tick <= high + step * 1e-9:
        ticks.append(round(tick, 10))
        tick += step
    return ticks


def _time_ticks(start: datetime, end: datetime) -> tuple[list[datetime], str]:
    """Round instants between `start` and `end`, at most MAX_TICKS, and how to label them."""
    span = end - start
    most = MAX_TICKS if span <= timedelta(days=1) else MAX_TICKS - 2  # longer labels
    step = next((s for s in TICK_STEPS if span / s <= most), None)
    if step is None:
        step = timedelta(days=math.ceil(span.days / most))
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    tick = midnight + step * math.ceil((start - midnight) / step)
    ticks = []
    while tick <= end:
        ticks.append(tick)
        tick += step
    if step < timedelta(days=1):
        label = "%H:%M" if span <= timedelta(days=1) else "%m-%d %H:%M"
    else:
        label = "%Y-%m-%d" if span > timedelta(days=365) else "%m-%d"
    return ticks, label


def _label(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}".rstrip("0")
    return f"{text}{unit}"


def line_chart(
    title: str,
    series: list[Series],
    start: datetime,
    end: datetime,
    unit: str = "",
    empty: str = "nothing yet",
    now: datetime | None = None,
    whole: bool = False,
) -> str:
    """An SVG chart of `series` from `start` to `end`; step lines hold their value until `now`.

    `whole` puts value ticks on whole numbers only (for counts).
    """
    if end <= start:
        end = start + timedelta(minutes=5)
    until = min(now or end, end)
    shown = [s for s in series if s.points]
    # Screen coordinates only: money is plotted as float pixels, never computed with.
    values = [float(v) for s in shown for _, v in s.points]
    low, high = min(values + [0.0]), max(values + [0.0])
    high = low + 1 if high == low else high + (high - low) * 0.08  # a line at the top stays seen
    y_ticks = _value_ticks(low, high, whole)
    low, high = min(low, y_ticks[0]), max(high, y_ticks[-1])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    seconds = (end - start).total_seconds()

    def x(when: datetime) -> float:
        return LEFT + plot_w * min(max((when - start).total_seconds() / seconds, 0.0), 1.0)

    def y(value) -> float:
        return TOP + plot_h * (1 - (float(value) - low) / (high - low))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label={quoteattr(title)}>',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="{LEFT}" y="16">{escape(title)}</text>',
    ]
    for tick in y_ticks:
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}"/>'
            f'<text class="tick" x="{LEFT - 4}" y="{y(tick) + 3:.1f}" text-anchor="end">'
            f"{escape(_label(tick, unit))}</text>"
        )
    x_ticks, time_format = _time_ticks(start, end)
    for tick in x_ticks:
        # The last label ends at the frame's edge instead of running past it.
        anchor = "end" if x(tick) > WIDTH - RIGHT - 20 else "middle"
        parts.append(
            f'<line class="grid" x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{TOP}" '
            f'y2="{TOP + plot_h}"/>'
            f'<text class="tick" x="{x(tick):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
            f"{tick:{time_format}}</text>"
        )
    parts.append(f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>')
    if not shown:
        parts.append(
            f'<text class="empty" x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" '
            f'text-anchor="middle">{escape(empty)}</text>'
        )
    legend_x = LEFT
    for index, line in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        if line.points:
            parts.append(_line(line, colour, x, y, until))
        parts.append(
            f'<text class="legend" x="{legend_x}" y="31" fill="{colour}">'
            f"■ {escape(line.name)}</text>"
        )
        legend_x += 7 * len(line.name) + 24  # about a character's width each
    parts.append("</svg>")
    return "".join(parts)


def _line(line: Series, colour: str, x, y, until: datetime) -> str:
    name = quoteattr(line.name)
    if not line.step:
        dots = "".join(
            f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3"><title>{escape(line.name)} '
            f"{t:%Y-%m-%d %H:%M}: {escape(str(v))}</title></circle>"
            for t, v in line.points
        )
        return f'<g class="dots" data-series={name} fill="{colour}">{dots}</g>'
    coords = []
    for index, (when, value) in enumerate(line.points):
        if index:
            coords.append((x(when), y(line.points[index - 1][1])))
        coords.append((x(when), y(value)))
    coords.append((x(max(until, line.points[-1][0])), y(line.points[-1][1])))
    pairs = [f"{a:.1f},{b:.1f}" for a, b in coords]
    path = " ".join(p for n, p in enumerate(pairs) if not n or p != pairs[n - 1])
    last_x, last_y = coords[-1]
    # The dot marks the value now, seen even before any time has passed.
    return (
        f'<polyline class="line" data-series={name} fill="none" stroke="{colour}" '
        f'stroke-width="2" points="{path}"/>'
        f'<circle class="now" cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.5" fill="{colour}">'
        f"<title>{escape(line.name)}: {escape(str(line.points[-1][1]))}</title></circle>"
    )
