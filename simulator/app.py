"""The simulator's Flask app: the BILLmanager API and the control API over one `Seller`."""

from __future__ import annotations

from flask import Flask

from simulator import api, control
from simulator.clock import Clock
from simulator.model import Seller


class SimulatorState:
    """Holds the current seller and the clock; a reset replaces the seller, never mutates it."""

    def __init__(self, seller: Seller, clock: Clock | None = None):
        self.clock = clock or Clock()
        self.seller = seller

    @property
    def seller(self) -> Seller:
        return self._seller

    @seller.setter
    def seller(self, new: Seller) -> None:
        # A new seller's time runs on from its own start, not from the old one's timeline.
        self._seller = new
        self.clock.anchor(new)


def create_app(seller: Seller | None = None, clock: Clock | None = None) -> Flask:
    """The simulator app serving `seller` (an empty one if none is given) on `clock` (manual)."""
    app = Flask(__name__)
    state = SimulatorState(seller or Seller(), clock)
    app.extensions["simulator"] = state
    if state.clock.running:

        @app.before_request
        def catch_up() -> None:
            """Every reply sees the seller as of the clock's now."""
            state.clock.catch_up(state.seller)

    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    return app


def seller_of(app: Flask) -> Seller:
    """The seller an app currently serves."""
    return app.extensions["simulator"].seller
