"""Fixtures, chained: the simulator's (`world -> seller -> app -> client/session`), the
engine's (`sim_world -> sim_app -> sim/http -> store -> engine -> module -> tariff`) and the
reseller command line's (`sim_app -> served -> cli -> ready`)."""

# simulator fixtures
import contextlib
import copy
import importlib
import pkgutil
from datetime import datetime
from pathlib import Path

import pytest

from reseller.client import SellerClient
from reseller.engine import Engine
from reseller.store import Store
from simulator.app import create_app
from simulator.cassette import CassetteWriter
from simulator.record import Recorder
from simulator.server import LocalServer
from simulator.side import InProcessSide, SocketSide
from simulator.transport import in_process_session
from simulator.world import seller_from_world
from tests import client_session
from tests.helpers import PASSWORD, RESELLER, SIM_WORLD, URL, Cli, Sim, connect, connect_args
from tests.helpers import START as ENGINE_START
from tests.replies import PASSWORDS, Node
from tests.replies import URL as API_URL
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


@pytest.fixture(params=["in_process", "socket"])
def side(request, app):
    """The app's seller as a test drives it: in-process, then over a real socket."""
    if request.param == "in_process":
        yield InProcessSide(app)
        return
    with LocalServer(app, threads=2) as server, SocketSide(server.url) as over_http:
        yield over_http


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
    with LocalServer(sim_app) as server:
        yield server.url


# -- the reseller's command line against the served simulator ------------------------------------


@pytest.fixture
def cli(tmp_path, served, capsys) -> Cli:
    """`run.py reseller` in-process on a database file, the simulator served on a socket."""
    return Cli(tmp_path / "reseller.db", served, capsys)


@pytest.fixture
def password_file(tmp_path) -> Path:
    """The seller password in a file, as `connect --password-file` reads it."""
    path = tmp_path / "seller-password"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture
def ready(cli, password_file) -> Cli:
    """USD at 1.10 per EUR, module `seller`, client alice with 500, tariff 5 imported."""
    cli.ok("configure", "--currency", "USD", "--rate", "EUR=1.10")
    cli.ok(*connect_args(cli, "--password-file", str(password_file)))
    cli.ok("client", "alice", "--balance", "500")
    cli.ok("import", "seller", "5")
    return cli


@pytest.fixture
def serve():
    """`serve(wsgi_app)` serves an app on a loopback socket (waitress) for the test: its URL."""
    servers = []

    def start(app) -> str:
        servers.append(LocalServer(app, threads=4))
        return servers[-1].url

    yield start
    for server in servers:
        server.close()
        assert not server.thread.is_alive()


# record and parity fixtures: the simulator as the upstream, a proxy before it, a session


@pytest.fixture
def upstream_app(world):
    """The simulator as a seller a session is recorded against; its ids differ from a replay's."""
    return create_app(seller_from_world(world, START, seed=7))


@pytest.fixture
def existing_vhost(upstream_app) -> str:
    """A service the account bought before the recorded session."""
    with in_process_session(upstream_app) as control:
        created = control.post(
            "http://simulator/_sim/actions/create_service",
            json={"account": "reseller", "tariff": 8, "domain": "old.example"},
        )
    return str(created.json()["result"]["id"])


@pytest.fixture
def cassette_file(tmp_path):
    return tmp_path / "session.jsonl"


@pytest.fixture
def record_through(serve, cassette_file):
    """`record_through(upstream_url)`: the URL of a recording proxy to it into `cassette_file`."""
    writers = []

    def start(upstream_url: str, **options) -> str:
        writers.append(CassetteWriter(cassette_file))
        return serve(Recorder(upstream_url, writers[-1], **({"timeout": 5} | options)))

    yield start
    for writer in writers:
        writer.close()


@pytest.fixture
def recorded(serve, record_through, upstream_app, existing_vhost):
    """A session played through the recording proxy before the simulator: what it used."""
    return client_session.play(record_through(serve(upstream_app)), existing_vhost)


@pytest.fixture
def recorded_altered(serve, record_through, upstream_app, existing_vhost):
    """The same session recorded before an upstream whose replies were altered on purpose."""
    proxy = record_through(serve(client_session.Altered(upstream_app)))
    return client_session.play(proxy, existing_vhost)


@pytest.fixture
def unchanged(client):
    """A check that what its block does leaves the whole seller state (`/_sim/state`) as it was."""

    @contextlib.contextmanager
    def check():
        before = client.get("/_sim/state").json
        yield
        assert client.get("/_sim/state").json == before

    return check


@pytest.fixture(params=["xml", "json"])
def out(request) -> str:
    return request.param


@pytest.fixture
def api(session, out):
    """Call a function as `user` (by authinfo; None sends no credentials) and parse the reply."""

    def call(func: str, user: str | None = "reseller", **params) -> Node:
        if user is not None:
            params.setdefault("authinfo", f"{user}:{PASSWORDS[user]}")
        reply = session.post(API_URL, data={"func": func, "out": out, **params})
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
