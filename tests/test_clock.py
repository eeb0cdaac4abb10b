"""One clock for a served simulator: manual, the wall clock's or sped up, kept at the edge.

A running clock brings the seller up to its time on every request and, through the ticker,
with no request at all; delayed set-ups and expiries happen once each, in order, at their
own simulated times. `Seller` itself never reads the wall clock.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

import run
from simulator import snapshot
from simulator.app import create_app
from simulator.clock import Clock, Ticker
from simulator.side import SocketSide
from simulator.world import seller_from_world

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 1, 1)
# A day's VPS set up 10 minutes after its order: one set-up and one expiry a day apart.
DAY_WORLD = {
    "accounts": {"reseller": {"password": "s3cret", "balance": 100}},
    "tariffs": {
        9: {"intname": "vds-day", "type": "vds", "prices": {-50: 1}, "setup": {"after": "10m"}}
    },
}


class Wall:
    """A wall clock a test moves by hand: monotonic seconds and the UTC time."""

    def __init__(self, utc: datetime = datetime(2026, 12, 1, 12, 0)):
        self.seconds = 1000.0
        self.utc = utc

    def monotonic(self) -> float:
        return self.seconds

    def utc_now(self) -> datetime:
        return self.utc + timedelta(seconds=self.seconds - 1000.0)

    def wait(self, seconds: float) -> None:
        self.seconds += seconds


@pytest.fixture
def wall():
    return Wall()


def clock(wall: Wall, mode: str, speed=None) -> Clock:
    return Clock(mode, speed, monotonic=wall.monotonic, utc_now=wall.utc_now)


def day_seller():
    seller = seller_from_world(DAY_WORLD, START)
    service = seller.order(seller.accounts["reseller"], "vds", 9, -50)
    return seller, service


def events(seller) -> list[tuple[str, str]]:
    return [(e.type, e.date.isoformat(sep=" ")) for e in seller.feeds["reseller"]]


def test_a_manual_clock_never_moves_by_itself(wall):
    seller, service = day_seller()
    app = create_app(seller, clock=clock(wall, "manual"))

    wall.wait(3600)
    reply = app.test_client().get("/_sim/clock").json

    assert reply == {"now": "2026-01-01 00:00:00", "next_due": "2026-01-01 00:10:00"} | {
        "mode": "manual",
        "speed": 0,
    }
    assert service.status == 1


def test_a_sped_up_clock_runs_a_set_up_and_an_expiry_once_each_in_order_at_their_times(wall):
    seller, service = day_seller()
    sped_up = clock(wall, "speed", 60)  # a wall second is a simulated minute
    sped_up.anchor(seller)

    wall.wait(9)
    sped_up.catch_up(seller)
    assert (seller.now, service.status) == (START + timedelta(minutes=9), 1)
    wall.wait(1)
    sped_up.catch_up(seller)
    sped_up.catch_up(seller)  # twice at the same time: nothing runs twice
    assert service.status == 2
    wall.wait(24 * 60)  # a simulated day
    sped_up.catch_up(seller)

    assert events(seller) == [("open", "2026-01-01 00:10:00"), ("suspend", "2026-01-02 00:10:00")]
    assert seller.now == datetime(2026, 1, 2, 0, 10)


def test_a_real_clock_is_the_wall_clock_and_brings_an_older_world_up_to_it(wall):
    seller, service = day_seller()  # ordered 2026-01-01, its day long over by the wall's time
    app = create_app(seller, clock=clock(wall, "real"))

    reply = app.test_client().get("/_sim/clock").json
    wall.wait(5)
    later = app.test_client().get("/_sim/clock").json

    assert (reply["now"], reply["mode"], reply["speed"]) == ("2026-12-01 12:00:00", "real", 1)
    assert later["now"] == "2026-12-01 12:00:05"
    assert events(seller) == [("open", "2026-01-01 00:10:00"), ("suspend", "2026-01-02 00:10:00")]


def test_every_request_sees_the_seller_as_of_a_running_clock(wall):
    seller, service = day_seller()
    app = create_app(seller, clock=clock(wall, "speed", 60))

    wall.wait(10)
    user = {"func": "whoami", "authinfo": "reseller:s3cret", "out": "json"}
    app.test_client().post("/billmgr", data=user)

    assert service.status == 2 and seller.now == datetime(2026, 1, 1, 0, 10)


def test_a_running_clock_moved_on_by_hand_runs_on_from_there(wall):
    seller, _ = day_seller()
    app = create_app(seller, clock=clock(wall, "speed", 60))
    client = app.test_client()

    wall.wait(1)
    moved = client.post("/_sim/clock", json={"advance": "1h"}).json
    wall.wait(2)

    assert moved["now"] == "2026-01-01 01:01:00"
    assert client.get("/_sim/clock").json["now"] == "2026-01-01 01:03:00"


def test_a_reset_runs_a_running_clock_on_from_the_new_worlds_start(wall):
    seller, _ = day_seller()
    app = create_app(seller, clock=clock(wall, "speed", 60))
    client = app.test_client()
    wall.wait(600)

    client.post("/_sim/reset", json={"world": DAY_WORLD, "start": "2026-05-01T00:00:00"})
    wall.wait(1)

    assert client.get("/_sim/clock").json["now"] == "2026-05-01 00:01:00"


@pytest.mark.parametrize(
    ("mode", "speed", "problem"),
    [
        ("fast", None, "clock: expected one of manual, real, speed, got 'fast'"),
        ("speed", 0, "speed: expected a number above 0, got 0"),
        ("speed", float("nan"), "speed: expected a number above 0, got nan"),
        ("speed", True, "speed: expected a number above 0, got True"),
        ("real", 60, "speed: only a `speed` clock takes one, not a real clock"),
    ],
)
def test_a_clock_that_cannot_run_is_refused_naming_why(mode, speed, problem):
    with pytest.raises(ValueError) as refused:
        Clock(mode, speed)
    assert str(refused.value) == problem


def test_the_ticker_runs_due_automation_with_no_request_coming_in():
    seller, service = day_seller()
    sped_up = Clock("speed", 86400)  # a wall second is a simulated day
    app = create_app(seller, clock=sped_up)
    state = app.extensions["simulator"]
    ticker = Ticker(sped_up, lambda: state.seller).start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with seller.lock:
                if service.status == 3:
                    break
            time.sleep(0.02)
    finally:
        ticker.stop()

    assert events(seller) == [("open", "2026-01-01 00:10:00"), ("suspend", "2026-01-02 00:10:00")]
    assert not ticker.thread.is_alive()


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--clock", "real", "--speed", "60"], "--speed runs a sped-up clock of its own"),
        (["--speed", "0"], "--speed: expected a number above 0, got 0"),
        (["--speed", "inf"], "--speed: expected a number above 0, got inf"),
    ],
)
def test_the_simulator_command_refuses_a_clock_it_cannot_run(argv, problem, capsys):
    assert run.main(["simulator", "--port", "0", *argv]) == 2
    assert capsys.readouterr().err.startswith(f"error: {problem}")


def test_a_served_sped_up_simulator_sets_up_and_expires_with_no_request_coming_in(tmp_path):
    world, saved = tmp_path / "world.yaml", tmp_path / "state.json"
    world.write_text(yaml.safe_dump({"seller": DAY_WORLD}))
    served = subprocess.Popen(
        [sys.executable, "run.py", "simulator", "--port", "0", "--world", str(world)]
        + ["--speed", "86400", "--state", str(saved)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = served.stdout.readline()
        assert "clock: 86400x (a wall second is a simulated day)" in banner
        url = banner.split()[3].removesuffix("/billmgr")
        with SocketSide(url) as side:
            clock = side.clock()
        order = {"func": "vds.order.param", "authinfo": "reseller:s3cret", "pricelist": 9}
        order |= {"period": -50, "sok": "ok", "skipbasket": "on"}
        requests.post(f"{url}/billmgr", data=order, timeout=5).raise_for_status()
        time.sleep(1.5)  # a simulated day and a half; no request until the state is saved
    finally:
        served.send_signal(signal.SIGTERM)
        out, err = served.communicate(timeout=10)

    assert served.returncode == 0, err
    assert (clock["mode"], clock["speed"]) == ("speed", 86400)
    state = snapshot.load(saved)
    (service,) = state.services.values()
    assert service.status == 3 and service.suspended_for == "expired"
    assert [(e.type, e.date) for e in state.feeds["reseller"]][1] == (
        "suspend",
        service.opened + timedelta(days=1),
    )
