"""Fixtures, chained: the simulator's (`world -> seller -> app -> client/session`) and the
engine's (`sim_world -> sim_app -> sim/http -> store -> engine -> module -> tariff`)."""

import copy
from datetime import datetime

import pytest

from reseller.client import SellerClient
from reseller.engine import Engine
from reseller.store import Store
from simulator.app import create_app
from simulator.transport import in_process_session
from simulator.world import seller_from_world
from tests.helpers import RESELLER, SIM_WORLD, URL, Sim, SocketSimulator, connect
from tests.helpers import START as ENGINE_START
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


# -- the engine's: the simulator it talks to, its store, a module and a tariff -----------


@pytest.fixture
def sim_world() -> dict:
    """The seller's world; a test may edit its copy before anything else is built."""
    return copy.deepcopy(SIM_WORLD)


@pytest.fixture
def sim_app(sim_world):
    return create_app(seller_from_world(sim_world, ENGINE_START))


@pytest.fixture
def sim(sim_app) -> Sim:
    return Sim(sim_app)


@pytest.fixture
def http(sim_app):
    with in_process_session(sim_app, URL) as session:
        yield session


@pytest.fixture
def store():
    store = Store()
    yield store
    store.close()


@pytest.fixture
def engine(store, http, sim) -> Engine:
    """The engine with USD as main currency (1 EUR = 1.10 USD), alice (500) and bob (5)."""
    engine = Engine(store, lambda url, login, password: SellerClient(url, login, password, http))
    engine.configure(RESELLER["currency"], RESELLER["rates"])
    for name, balance in RESELLER["clients"].items():
        engine.add_client(name, balance)
    return engine


@pytest.fixture
def module(engine, sim) -> str:
    """A module `seller` on the seller account `reseller`, with no period rules."""
    return connect(engine, sim)


@pytest.fixture
def tariff(engine, module, sim) -> str:
    """Seller tariff 5 imported: `5-vds-1`."""
    return engine.import_tariff(module, 5, sim.now)


@pytest.fixture
def served(sim_app):
    """The simulator on a real socket; its base URL."""
    server = SocketSimulator(sim_app)
    yield server.url
    server.close()
