"""The HTML report of a scenario run: one self-contained file (inline CSS and SVG, no script).

Each scenario under its file path and name: its steps on a timeline of simulated time, both
sides' state after each step with what changed marked, the calls between them, every failure's
expected and actual, a property's shrunk example, the plots; then the suite's coverage map.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib.resources import files as package_files
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from scenarios import coverage
from simulator.overview import duration_text

WIDTH, ROW, TOP, AXIS = 1400, 22, 6, 18
LEFT, RIGHT = 16, 16
CHART_CSS = package_files("simulator") / "static" / "charts.css"  # the dashboard's too
GAP = 19  # between the centres of dots side by side
CHART_TITLES = {
    "seller_balances": "balances at the seller",
    "client_balances": "client balances at the reseller",
    "event_lag": "event lag, made to applied",
    "in_flight": "operations in flight",
}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def timeline(steps: list[dict], start: str, planned: int) -> str:
    """The steps on simulated time as SVG: each step a numbered dot (green passed, red failed)
    over the moment it ended, a bar under it for the time it took. Steps that ended together
    line up after one another, a thin line down to their moment on the axis."""
    begin = _when(start)
    end = max([_when(s["ended"]) for s in steps] + [begin + timedelta(minutes=5)])
    span = (end - begin).total_seconds()
    usable = WIDTH - LEFT - RIGHT

    def x(text: str) -> float:
        return LEFT + usable * (_when(text) - begin).total_seconds() / span

    rows: list[float] = []  # each row's last dot
    placed = []
    for step in steps:
        moment = x(step["ended"])
        row = next((n for n, last in enumerate(rows) if last + GAP <= WIDTH - RIGHT), None)
        if row is None:  # every row is full up to the right edge: a new one under them
            row = len(rows)
            rows.append(moment - GAP)
        at = max(moment, rows[row] + GAP)
        rows[row] = at
        placed.append((step, moment, at, row))
    axis_y = TOP + ROW * max(len(rows), 1) + 6
    height = axis_y + AXIS
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} '
        f'{height}" role="img" aria-label="steps on simulated time">',
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{axis_y}" y2="{axis_y}"/>',
    ]
    for n in range(5):
        when = begin + (end - begin) * n / 4
        anchor = ("start", "middle", "middle", "middle", "end")[n]
        tx = LEFT + usable * n / 4
        parts.append(
            f'<line class="grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{TOP - 4}" y2="{axis_y + 3}"/>'
            f'<text class="tick" x="{tx:.1f}" y="{height - 4}" text-anchor="{anchor}">'
            f"{when:%Y-%m-%d %H:%M}</text>"
        )
    for step, moment, at, row in placed:
        y = TOP + ROW * row + ROW / 2
        verdict = "passed" if step["passed"] else "failed"
        began = x(step["started"])
        if moment - began >= 1:
            parts.append(
                f'<line class="took {verdict}" x1="{began:.1f}" x2="{moment:.1f}" '
                f'y1="{axis_y}" y2="{axis_y}"/>'
            )
        parts.append(
            f'<polyline class="lead" fill="none" points="{at:.1f},{y:.1f} {moment:.1f},'
            f'{axis_y - 3} {moment:.1f},{axis_y}"/>'
        )
        title = escape(
            f"step {step['number']}: {step['text']} (ended {step['ended']}, "
            f"took {duration_text(_when(step['ended']) - _when(step['started']))})"
        )
        parts.append(
            f'<a href="#{step["anchor"]}"><g class="step {verdict}" '
            f'data-step="{step["number"]}"><title>{title}</title>'
            f'<circle cx="{at:.1f}" cy="{y:.1f}" r="8"/>'
            f'<text x="{at:.1f}" y="{y + 3.5:.1f}" text-anchor="middle">{step["number"]}</text>'
            "</g></a>"
        )
    if planned > len(steps):
        first = len(steps) + 1
        left = f"step {first}" if first == planned else f"steps {first} to {planned}"
        parts.append(
            f'<text class="not-run" x="{WIDTH - RIGHT}" y="{TOP + 4}" text-anchor="end">'
            f"{left} did not run</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def transition_matrix(covered: coverage.Coverage, dimension: str) -> dict:
    """A side's status transitions as a from x to matrix: each cell's count, and whether the
    model allows it (an allowed cell no run reached is a gap)."""
    statuses = [coverage.NEW, "ordered", "active", "suspended", "deleted"]
    rows = []
    for before in statuses[:-1]:
        cells = []
        for after in statuses[1:]:
            key = f"{before} -> {after}"
            cells.append(
                {
                    "key": key,
                    "count": covered.count(dimension, key),
                    "possible": key in coverage.KNOWN[dimension],
                    "scenarios": covered.scenarios(dimension, key),
                }
            )
        rows.append({"from": before, "cells": cells})
    return {"columns": statuses[1:], "rows": rows}


def fault_matrix(covered: coverage.Coverage) -> dict:
    """The faults each function met: functions down, fault kinds across (feed faults shape
    reads of the feed alone)."""
    funcs = sorted({key.rpartition(": ")[0] for key in covered.seen.get("faults", {})})
    rows = [
        {
            "func": func,
            "cells": [
                {
                    "count": covered.count("faults", f"{func}: {kind}"),
                    "possible": kind in coverage.CALL_KINDS or func == coverage.FEED_FUNC,
                    "scenarios": covered.scenarios("faults", f"{func}: {kind}"),
                }
                for kind in coverage.KINDS
            ],
        }
        for func in funcs
    ]
    return {"columns": coverage.KINDS, "rows": rows}


def product_matrix(covered: coverage.Coverage) -> dict:
    """The services either side held: product types down, period kinds across."""
    rows = [
        {
            "type": kind,
            "cells": [
                {
                    "count": covered.count("product_periods", f"{kind} {period}"),
                    "scenarios": covered.scenarios("product_periods", f"{kind} {period}"),
                }
                for period in coverage.PERIOD_KINDS
            ],
        }
        for kind in coverage.PRODUCT_TYPES
    ]
    return {"columns": coverage.PERIOD_KINDS, "rows": rows}


def coverage_view(files: list[dict]) -> dict:
    covered = coverage.suite_coverage(files)
    lists = {}
    for dimension in ("events_made", "events_applied", "fault_kinds", "crash_points"):
        lists[dimension] = [
            {"key": key, "count": covered.count(dimension, key)}
            for key in coverage.KNOWN[dimension]
        ]
    return {
        "seller_transitions": transition_matrix(covered, "seller_transitions"),
        "reseller_transitions": transition_matrix(covered, "reseller_transitions"),
        "faults": fault_matrix(covered),
        "products": product_matrix(covered),
        "lists": lists,
        "gaps": {
            dimension: covered.missing(dimension)
            for dimension in coverage.DIMENSIONS
            if covered.missing(dimension)
        },
    }


def scenario_view(index: int, record: dict) -> dict:
    """One file's record with what the template needs worked out: anchors, the timeline."""
    anchor = f"s{index}"
    view = dict(record, anchor=anchor)
    run = record.get("run")
    if run:
        steps = [
            dict(
                step,
                anchor=f"{anchor}-step{step['number']}",
                took=duration_text(_when(step["ended"]) - _when(step["started"])),
            )
            for step in run["steps"]
        ]
        view["run"] = dict(
            run,
            steps=steps,
            timeline=Markup(timeline(steps, run["start"], record["steps"])),
            charts={k: Markup(v) for k, v in run["charts"].items()},
        )
    return view


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("scenarios", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.do"],
    )
    env.filters["attr_quote"] = quoteattr
    return env


def render(files: list[dict], title: str = "Scenario run", seconds: float | None = None) -> str:
    """The whole report as one HTML document."""
    scenarios = [scenario_view(n, record) for n, record in enumerate(files, 1)]
    failed = [s for s in scenarios if not s["passed"]]
    return (
        environment()
        .get_template("report/report.html")
        .render(
            title=title,
            scenarios=scenarios,
            failed=failed,
            seconds=seconds if seconds is not None else sum(s["seconds"] for s in files),
            coverage=coverage_view(files),
            chart_titles=CHART_TITLES,
            chart_css=Markup(CHART_CSS.read_text(encoding="utf-8")),
        )
    )


def write_html(files: list[dict], target: str, title: str = "Scenario run") -> None:
    """Write the report to `target`, making its folder (`reports/` on a fresh clone)."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(render(files, title), encoding="utf-8")
