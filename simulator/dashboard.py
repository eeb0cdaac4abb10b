"""The live dashboard: a page shell at `/`, its panels and buttons under `/_sim/dashboard/...`.

The page and its static files hold no state; every panel comes from `/_sim/dashboard/panels`
(server-rendered HTML and SVG), so a control-API token guards them like the rest of `/_sim`.
A program serving the simulator beside another side (the demo, with the reseller engine) may
`attach` a provider of that side's state and a driver that moves both sides' clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from flask import (
    Blueprint,
    Flask,
    current_app,
    get_template_attribute,
    jsonify,
    render_template,
    request,
)

from simulator import control
from simulator.faults import CALL_KINDS, FEED_KINDS
from simulator.overview import overview
from simulator.world import parse_duration

bp = Blueprint("dashboard", __name__)
PANELS = ("side", "story", "charts", "services", "accounts", "tariffs", "events", "operations")
PANELS += ("faults", "calls")


class Driver(Protocol):
    """Moves the simulator and the side beside it under one clock, and may tell a story."""

    def advance(self, duration: timedelta) -> None:
        """Run both sides' jobs in time order until `duration` from now."""

    def story(self) -> dict | None:
        """`{title, steps: [{number, text, note, state, outcome}], invariants}`, or None."""

    def next_step(self) -> dict:
        """Run the story's next step; `{step, ok, outcome}`."""


@dataclass
class Beside:
    """What the dashboard knows of a side served beside the simulator."""

    reseller_view: Callable[[], dict] | None = None
    driver: Driver | None = None


def attach(
    app: Flask, reseller_view: Callable[[], dict] | None = None, driver: Driver | None = None
) -> None:
    """Show `reseller_view()` (plain data, see `simulator.overview`) and drive with `driver`."""
    app.extensions["dashboard"] = Beside(reseller_view, driver)


def beside() -> Beside:
    return current_app.extensions.get("dashboard") or Beside()


for refused_kind in control.REFUSALS:
    bp.register_error_handler(refused_kind, control.refused)


@bp.get("/")
def page():
    """The page shell: layout, forms and script; no state, so no token is needed to load it."""
    return render_template(
        "dashboard/page.html", panels=PANELS, call_kinds=CALL_KINDS, feed_kinds=FEED_KINDS
    )


@bp.get("/_sim/dashboard/panels")
def panels():
    """Every panel as server-rendered HTML; `?calls=GLOB` filters the call log by function."""
    side = beside()
    reseller, problem = None, ""
    # Asked before the seller's lock is taken: the provider may call the simulator itself.
    if side.reseller_view is not None:
        try:
            reseller = side.reseller_view()
        except Exception as error:  # the other side's bug must not blank the seller's page
            problem = f"{type(error).__name__}: {error}"
    story = side.driver.story() if side.driver is not None else None
    seller = control.seller()
    with seller.lock:
        view = overview(seller, reseller, request.args.get("calls", ""), problem)
    view["calls_filter"] = request.args.get("calls", "")
    view["story"] = story
    rendered = {
        name: str(get_template_attribute("dashboard/panels.html", name)(view)) for name in PANELS
    }
    return jsonify(now=view["now"], panels=rendered)


@bp.post("/_sim/dashboard/clock")
def advance():
    """Move the clock by `advance` (`5m`): both sides through the driver, else the seller's."""
    duration = parse_duration(control.arg(control.body({"advance"}), "advance"), "advance")
    if duration <= timedelta(0):
        raise control.ControlError("advance", "expected a duration above 0")
    driver = beside().driver
    if driver is not None:
        driver.advance(duration)
    seller = control.seller()
    with seller.lock:
        if driver is None:
            seller.advance_to(seller.now + duration)
        return jsonify(now=f"{seller.now:%Y-%m-%d %H:%M:%S}")


@bp.post("/_sim/dashboard/story/next")
def next_step():
    """Run the next step of the story the driver tells; 404 when there is none."""
    driver = beside().driver
    if driver is None or driver.story() is None:
        return jsonify(error={"type": "missed", "msg": "no story is being told here"}), 404
    return jsonify(driver.next_step())
