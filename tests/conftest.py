# simulator fixtures
import contextlib
import copy
from datetime import datetime

import pytest

from simulator.app import create_app
from simulator.transport import in_process_session
from simulator.world import seller_from_world
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
def state_dir(tmp_path):
    """The folder the app keeps its named snapshots in (made on the first save)."""
    return tmp_path / "state"


@pytest.fixture
def app(seller, state_dir):
    return create_app(seller, state_dir=state_dir)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    with in_process_session(app) as session:
        yield session


@pytest.fixture
def unchanged(client):
    """A check that what its block does leaves the whole seller state (`/_sim/state`) as it was."""

    @contextlib.contextmanager
    def check():
        before = client.get("/_sim/state").json
        yield
        assert client.get("/_sim/state").json == before

    return check
