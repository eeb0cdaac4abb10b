"""The simulator's Flask app: the BILLmanager API and the control API over one `Seller`."""

from __future__ import annotations

from flask import Flask

from simulator import api, control, dashboard
from simulator.model import Seller


class SimulatorState:
    """Holds the current seller; a reset replaces it rather than mutating it."""

    def __init__(self, seller: Seller):
        self.seller = seller


def create_app(seller: Seller | None = None, reseller_view=None, driver=None) -> Flask:
    """The simulator app serving `seller` (an empty one if none is given), dashboard at `/`.

    `reseller_view` and `driver` put another side beside it on the dashboard (`dashboard.attach`).
    """
    app = Flask(__name__)
    app.extensions["simulator"] = SimulatorState(seller or Seller())
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(dashboard.bp)
    dashboard.attach(app, reseller_view, driver)
    return app


def seller_of(app: Flask) -> Seller:
    """The seller an app currently serves."""
    return app.extensions["simulator"].seller
