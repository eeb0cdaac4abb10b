# simulator fixtures
import copy
from datetime import datetime

import pytest

from simulator.app import create_app
from simulator.transport import in_process_session
from simulator.world import seller_from_world
from tests.replies import PASSWORDS, URL, Node
from tests.worlds import VDS_1

START = datetime(2026, 1, 1)
WORLD = {
    "currency": "EUR",
    "accounts": {
        "reseller": {"password": "s3cret", "balance": 100},
        "other": {"password": "other-pw", "balance": 100},
        "nosuspend": {"password": "pw", "balance": 100, "can_suspend": False},
        "poor": {"password": "pw", "balance": 5},
        "root": {"password": "toor", "level": "admin"},
    },
    "tariffs": {
        5: VDS_1,
        6: {"intname": "vds-later", "type": "vds", "prices": {1: 10}, "setup": {"after": "10m"}},
        7: {"intname": "vds-manual", "type": "vds", "prices": {1: 10}, "setup": "manual"},
        8: {"intname": "web-1", "type": "vhost", "prices": {1: 3}},
    },
}


@pytest.fixture
def world() -> dict:
    """The `seller` section of a scenario: a fresh copy a test may edit before `seller`."""
    return copy.deepcopy(WORLD)


@pytest.fixture
def seller(world):
    return seller_from_world(world, START)


@pytest.fixture
def app(seller):
    return create_app(seller)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    with in_process_session(app) as session:
        yield session


@pytest.fixture(params=["xml", "json"])
def out(request) -> str:
    return request.param


@pytest.fixture
def api(session, out):
    """Call a function as `user` (by authinfo; None sends no credentials) and parse the reply."""

    def call(func: str, user: str | None = "reseller", **params) -> Node:
        if user is not None:
            params.setdefault("authinfo", f"{user}:{PASSWORDS[user]}")
        reply = session.post(URL, data={"func": func, "out": out, **params})
        assert reply.status_code == 200
        return Node.parse(reply.content, out)

    return call


@pytest.fixture
def order(api):
    """Order a VDS-1 (tariff 5) with skipbasket and return its id."""

    def place(user: str = "reseller", **params) -> str:
        params = {"pricelist": 5, "period": 1, "sok": "ok", "skipbasket": "on", **params}
        doc = api("vds.order.param", user, **params)
        assert not doc.has("error"), doc.error()
        return doc["id"]

    return place
