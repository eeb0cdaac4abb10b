"""The simulator's Flask app: the BILLmanager API and the control API over one `Seller`."""

from __future__ import annotations

from flask import Flask

from simulator import api, control
from simulator.model import Seller


class SimulatorState:
    """Holds the current seller; a reset replaces it rather than mutating it."""

    def __init__(self, seller: Seller):
        self.seller = seller


def create_app(seller: Seller | None = None) -> Flask:
    """The simulator app serving `seller` (an empty one if none is given)."""
    app = Flask(__name__)
    app.extensions["simulator"] = SimulatorState(seller or Seller())
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    return app


def seller_of(app: Flask) -> Seller:
    """The seller an app currently serves."""
    return app.extensions["simulator"].seller
