"""The simulator's Flask app: the BILLmanager API and the control API over one `Seller`."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from simulator import api, control, dashboard
from simulator.clock import Clock
from simulator.guard import checked_token
from simulator.model import Seller


class SimulatorState:
    """Holds the current seller and the clock; a reset replaces the seller, never mutates it.

    `token` guards the control API when set; `state_dir` is where named snapshots go (none
    are taken without one).
    """

    def __init__(
        self,
        seller: Seller,
        clock: Clock | None = None,
        token: str | None = None,
        state_dir: Path | None = None,
    ):
        self.clock = clock or Clock()
        self.seller = seller
        self.token = token
        self.state_dir = state_dir

    @property
    def seller(self) -> Seller:
        return self._seller

    @seller.setter
    def seller(self, new: Seller) -> None:
        # A new seller's time runs on from its own start, not from the old one's timeline.
        self._seller = new
        self.clock.anchor(new)


def create_app(
    seller: Seller | None = None,
    *,
    clock: Clock | None = None,
    token: str | None = None,
    state_dir: str | Path | None = None,
    reseller_view=None,
    driver=None,
) -> Flask:
    """The simulator app serving `seller` (an empty one if none is given), dashboard at `/`.

    `clock` says how simulated time passes (manual unless given). With `token`, every control
    call (`/_sim/...`) must present it; with `state_dir`, the control API saves and restores
    snapshots by name there. `reseller_view` and `driver` put another side beside the seller
    on the dashboard (`dashboard.attach`).
    """
    app = Flask(__name__)
    state = SimulatorState(
        seller or Seller(),
        clock,
        checked_token(token) if token is not None else None,
        Path(state_dir) if state_dir is not None else None,
    )
    app.extensions["simulator"] = state
    if state.clock.running:

        @app.before_request
        def catch_up() -> None:
            """Every reply sees the seller as of the clock's now."""
            state.clock.catch_up(state.seller)

    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(dashboard.bp)
    dashboard.attach(app, reseller_view, driver)
    app.register_error_handler(HTTPException, http_error)
    # API calls skip Flask's request cycle (the same reply bytes); the rest goes through it.
    app.wsgi_app = api.DirectAPI(app)
    return app


def http_error(error: HTTPException):
    """A routing or protocol error: JSON under `/_sim`, a `doc.error` for a wrong path or
    method under `/billmgr`, Flask's own page elsewhere."""
    if control.is_control_path(request.path):
        return control.http_error(error)
    if error.code in (404, 405) and api.under_api(request.path):
        return api.not_the_api(error)
    return error


def seller_of(app: Flask) -> Seller:
    """The seller an app currently serves."""
    return app.extensions["simulator"].seller
