# simulator fixtures
import copy
import importlib
import pkgutil
from datetime import datetime

import pytest

from simulator.app import create_app
from simulator.transport import in_process_session
from simulator.world import seller_from_world
from tests.worlds import VDS_1


def load_the_whole_project() -> None:
    """Import every module of the project now, not when a test first needs it.

    Hypothesis mixes string constants of the local modules loaded so far into what it draws,
    so a module imported lazily by an earlier test (`run.py`'s commands import theirs) would
    change a later test's examples: a test's examples would depend on which tests ran before
    it in its process, and so on how xdist shared the tests out. Loaded up front, the pool is
    the same for every test, in any order, on any worker.
    """
    importlib.import_module("run")
    for package in ("simulator", "reseller", "scenarios", "bench", "bmsim"):
        for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
            importlib.import_module(f"{package}.{module.name}")


load_the_whole_project()

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


@pytest.fixture(params=["in_process", "socket"])
def side(request, app):
    """The app's seller as a test drives it: in-process, then over a real socket."""
    from simulator.server import LocalServer
    from simulator.side import InProcessSide, SocketSide

    if request.param == "in_process":
        yield InProcessSide(app)
        return
    with LocalServer(app, threads=2) as server, SocketSide(server.url) as over_http:
        yield over_http
