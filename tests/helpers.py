"""What the engine's tests share besides fixtures (those are in `tests/conftest.py`): the
seller's world, the control API as calls, small steps such as ordering a service, and the
reseller's command line run in-process, at a terminal or piped."""

from __future__ import annotations

import io
import re
import sys
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests

import run
from reseller.engine import Engine
from reseller.errors import ResellerError
from reseller.model import PeriodRule
from reseller.store import Store
from simulator.app import seller_of
from tests.worlds import VDS_1

START = datetime(2026, 1, 1)
URL = "http://simulator"
PASSWORD = "s3cret"
SIM_WORLD = {
    "currency": "EUR",
    "accounts": {
        "reseller": {"password": PASSWORD, "balance": 100},
        "second": {"password": "second-pw", "balance": 100},
        "nosuspend": {"password": "pw", "balance": 100, "can_suspend": False},
        "poor": {"password": "pw", "balance": 5},
        "root": {"password": "toor", "level": "admin"},
    },
    "tariffs": {
        5: VDS_1,
        6: {"intname": "vds-later", "type": "vds", "prices": {1: 10}, "setup": {"after": "10m"}},
        7: {
            "intname": "vds-2",
            "type": "vds",
            "prices": {1: 20, 12: 200},
            "ostempl": ["debian-12"],
        },
        8: {"intname": "web-1", "type": "vhost", "prices": {1: 3}},
        9: {"intname": "isp-lite", "type": "soft", "prices": {1: 4}},
    },
}
RESELLER = {"currency": "USD", "rates": {"EUR": "1.10"}, "clients": {"alice": 500, "bob": 5}}


class Sim:
    """The simulator's control API through Flask's test client; `now` is its clock."""

    def __init__(self, app):
        self.app = app
        self.api = app.test_client()
        self.now = seller_of(app).now

    def post(self, path: str, body: dict | None = None) -> dict:
        reply = self.api.post(f"/_sim{path}", json=body or {})
        assert reply.status_code == 200, reply.get_json()
        return reply.get_json()

    def get(self, path: str, **params) -> dict:
        reply = self.api.get(f"/_sim{path}", query_string=params)
        assert reply.status_code == 200, reply.get_json()
        return reply.get_json()

    def advance(self, duration: str) -> datetime:
        """Move the seller's clock on (`5m`, `2h`), running its automation; the new `now`."""
        self.now = datetime.fromisoformat(self.post("/clock", {"advance": duration})["now"])
        return self.now

    def to(self, when: datetime) -> datetime:
        self.now = datetime.fromisoformat(self.post("/clock", {"to": when.isoformat()})["now"])
        return self.now

    def fault(self, kind: str, times: int = 1, **aim) -> None:
        """Queue a fault, aimed with `func=` and `account=` if given."""
        self.post("/faults", {"kind": kind, "times": times, **aim})

    def clear_faults(self) -> None:
        reply = self.api.delete("/_sim/faults")
        assert reply.status_code == 200, reply.get_json()

    def act(self, action: str, /, **body):
        """A seller-side action (`activate`, `suspend`, `add_ip`, ...) by the seller's staff."""
        return self.post(f"/actions/{action}", body)["result"]

    def service(self, remote_id: int) -> dict:
        return self.get(f"/services/{remote_id}")

    def services(self, **filters) -> list[dict]:
        return self.get("/services", **filters)["services"]

    def balance(self, login: str = "reseller") -> Decimal:
        return Decimal(self.get(f"/accounts/{login}")["balance"])

    def calls(self, func: str | None = None) -> list[dict]:
        return [c for c in self.get("/calls")["calls"] if func is None or c["func"] == func]

    def debits(self, login: str = "reseller") -> list[dict]:
        return [e for e in self.get("/ledger", account=login)["ledger"] if Decimal(e["amount"]) < 0]


def connect(
    engine: Engine,
    sim: Sim,
    name: str = "seller",
    login: str = "reseller",
    password: str = PASSWORD,
    periods: list[PeriodRule] | None = None,
) -> str:
    engine.connect(name, URL, login, password, periods or [], sim.now)
    return name


def order(engine: Engine, sim: Sim, tariff: str = "5-vds-1", period: int = 1, **kwargs) -> int:
    """alice orders `tariff` (debian-12 on a VDS) and the engine sends it at once."""
    if tariff.endswith(("vds-1", "vds-2")):
        kwargs.setdefault("ostempl", "debian-12")
    return engine.order(kwargs.pop("client", "alice"), tariff, period, sim.now, **kwargs)


def active(engine: Engine, sim: Sim, **kwargs) -> int:
    """An ordered service the seller set up and whose `open` event the engine applied."""
    item = order(engine, sim, **kwargs)
    engine.checkevent("seller", sim.now)
    assert engine.store.item(item).status == 2
    return item


def remote_of(engine: Engine, item: int) -> int:
    return engine.store.item(item).remote_id


def dump(store: Store) -> list[str]:
    """Every table of the engine's database as SQL, to compare before and after a call."""
    return store.dump()


@contextmanager
def refused(store: Store, error_type: str):
    """The block must raise a `ResellerError` of `error_type` and leave every table as it was."""
    before = dump(store)
    with pytest.raises(ResellerError) as caught:
        yield caught
    assert caught.value.type == error_type, caught.value
    assert caught.value.message
    assert dump(store) == before


def plain_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


# -- the reseller's command line --------------------------------------------------------------

NOW = "2026-01-01T00:00:00"
STYLES = re.compile(r"\x1b\[[0-9;]*m")


class Screen(io.StringIO):
    """A terminal, as far as the command can tell: a stream that says it is a TTY."""

    def isatty(self) -> bool:
        return True

    def shown(self) -> str:
        """What was printed since the last look, without colours and styles."""
        text = STYLES.sub("", self.getvalue())
        self.seek(0)
        self.truncate()
        return text


class Cli:
    """`run.py reseller --db FILE --now NOW ...` in-process; every line it printed is kept."""

    def __init__(self, db: Path, url: str, capsys):
        self.db, self.url, self.capsys = db, url, capsys
        self.printed: list[str] = []
        self.screen: Screen | None = None  # stdout instead of the captured one

    def __call__(self, *args: str, now: str | None = NOW, clock: str | None = None):
        """Run a command (at `now`, or at the simulator's `clock` when `now` is None); its
        exit status, stdout and stderr."""
        head = ["reseller", "--db", str(self.db)]
        head += ["--now", now] if now is not None else []
        head += ["--clock", clock] if clock is not None else []
        captured = sys.stdout
        sys.stdout = self.screen or captured
        try:
            code = run.main([*head, *args])
        except SystemExit as leaving:
            code = leaving.code
        finally:
            sys.stdout = captured
        out, err = self.capsys.readouterr()
        self.printed += [out, err]
        return code, out, err

    def ok(self, *args: str, now: str | None = NOW, clock: str | None = None) -> str:
        code, out, err = self(*args, now=now, clock=clock)
        assert (code, err) == (0, ""), err
        return out

    def store(self) -> Store:
        """The database as another process would open it (close it after)."""
        return Store(str(self.db))

    def dump(self) -> list[str]:
        store = self.store()
        try:
            return dump(store)
        finally:
            store.close()


def connect_args(cli: Cli, *source: str) -> list[str]:
    """`connect seller` to the served simulator as `reseller`, the password from `source`."""
    return ["connect", "seller", "--url", cli.url, "--login", "reseller", *source]
