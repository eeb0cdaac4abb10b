"""Shared by the end-to-end property, fault and crash tests: one world, a harness, a fast clock.

Everything here drives the real engine against the real simulator; nothing is mocked.
"""

from __future__ import annotations

import copy
from datetime import datetime

from reseller.engine import Engine
from scenarios import invariants
from scenarios.harness import Harness
from scenarios.runner import state_digest
from tests.worlds import VDS_1

START = datetime(2026, 1, 1)
PASSWORD = "pw-7f3a-SECRET"
OTHER_PASSWORD = "pw-other-SECRET"
SELLER_WORLD = {
    "currency": "EUR",
    "accounts": {
        "reseller": {"password": PASSWORD, "balance": 200},
        "shop": {"password": OTHER_PASSWORD, "balance": 500},
    },
    "tariffs": {
        5: {**VDS_1, "prices": {**VDS_1["prices"], -50: 1}},
        7: {
            "intname": "vds-m",
            "name": "VDS manual",
            "type": "vds",
            "prices": {1: 8, 12: 80},
            "setup": "manual",
            "ostempl": ["debian-12"],
        },
        8: {
            "intname": "web-1",
            "name": "Web",
            "type": "vhost",
            "prices": {1: 3, 12: 30, 0: 50},
            "setup": {"after": "10m"},
        },
    },
}
RESELLER = {
    "currency": "USD",
    "rates": {"EUR": 1.1},
    "clients": {"alice": {"balance": 400}, "bob": {"balance": 30}},
    "modules": {
        "seller": {"account": "reseller", "password": PASSWORD, "periods": [{"from": 2, "to": 1}]}
    },
}
# The add-ons `seller.edit_tariff` may give tariff 5; each name keeps its id, as on a real seller.
ADDON_CHOICES = {
    "ram": {"id": 11, "type": "integer", "included": 1024, "max": 8192, "unit_price": 0.002},
    "backup": {"id": 12, "type": "boolean", "price": 2},
    "panel": {"id": 13, "type": "enumeration", "items": {"none": 0, "ispmanager": 5}},
    "panel+": {"id": 13, "type": "enumeration", "items": {"none": 0, "ispmanager": 5, "plesk": 9}},
    "disk": {"id": 14, "type": "integer", "included": 20, "max": 200, "unit_price": 0.1},
    "ipv6": {"id": 15, "type": "boolean", "price": 1},
}
# The invariants every step must keep; `converged` and `tariff_sync_converges` act first.
STEP_INVARIANTS = (
    "money_conserved",
    "one_remote_per_service",
    "events_applied_once",
    "balances_within_limits",
    "statuses_move_legally",
)


class Crash(BaseException):
    """The engine process dying at a crash point: nothing after it runs, nothing is committed."""


def crash_at(engine: Engine, point: str, after: int = 0) -> None:
    """Make `engine` die the `after`+1-th time it reaches `point`."""
    seen = {"count": 0}

    def hook(name: str) -> None:
        if name == point:
            seen["count"] += 1
            if seen["count"] > after:
                raise Crash(point)

    engine.crash_point = hook


def world(seller_balance=None, client_balances: dict | None = None) -> tuple[dict, dict]:
    """The seller and reseller sections, with balances changed where given."""
    seller, reseller = copy.deepcopy(SELLER_WORLD), copy.deepcopy(RESELLER)
    if seller_balance is not None:
        seller["accounts"]["reseller"]["balance"] = seller_balance
    for name, balance in (client_balances or {}).items():
        reseller["clients"][name] = {"balance": balance}
    return seller, reseller


def harness(*, http: bool = False, db_path: str | None = None, **balances) -> Harness:
    seller, reseller = world(**balances)
    return Harness(seller, reseller, START, http=http, db_path=db_path)


def restart_engine(h: Harness) -> None:
    """Start the engine again on the same SQLite file, as after its process was killed."""
    h.restart_engine()


def problems(h: Harness, names=STEP_INVARIANTS) -> list[str]:
    found = []
    for name in names:
        found += [f"{name}: {p}" for p in invariants.CHECKS[name](h)]
    return found


def assert_invariants(h: Harness, names=STEP_INVARIANTS) -> None:
    found = problems(h, names)
    assert not found, "\n".join(found)


def digest(h: Harness) -> tuple:
    """The state a refused step must leave as it was (the runner's own digest)."""
    return state_digest(h)
