"""What keeps strangers out of the simulator: sessions, the login throttle, the control guard."""

from __future__ import annotations

import random
from datetime import timedelta
from xml.etree import ElementTree as ET

from simulator.app import seller_of
from simulator.sessions import (
    FAILED_LOGIN_WINDOW,
    FAILED_LOGINS_MAX,
    SESSION_IDLE,
    Sessions,
)
from simulator.world import seller_from_world
from tests.conftest import START

URL = "/billmgr"


def log_in(client, user: str = "reseller", password: str = "s3cret"):
    """`func=auth` with a username and password; the reply's document."""
    reply = client.post(URL, data={"func": "auth", "username": user, "password": password})
    return ET.fromstring(reply.data)


def session_id(client, user: str = "reseller", password: str = "s3cret") -> str:
    return log_in(client, user, password).find("auth").get("id")


def whoami(client, sid: str) -> ET.Element:
    return ET.fromstring(client.post(URL, data={"func": "whoami", "auth": sid}).data)


def error_of(doc: ET.Element) -> tuple[str, str] | None:
    error = doc.find("error")
    return None if error is None else (error.get("type"), error.findtext("msg"))


class WallClock:
    """A wall clock a test moves by hand, in seconds."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta.total_seconds()


# -- session ids -----------------------------------------------------------------------------


def test_session_ids_are_not_what_the_seeded_random_generator_gives(client):
    sids = {session_id(client) for _ in range(20)}

    # the ids the old generator gave: Random(seed) is public, so a stranger can replay it
    seeded = random.Random(0)
    predictable = {f"{seeded.getrandbits(128):032x}" for _ in range(1000)}
    assert not sids & predictable


def test_two_sellers_built_from_one_seed_give_different_session_ids(world):
    first, second = seller_from_world(world, START), seller_from_world(world, START)

    assert first.open_session(first.accounts["reseller"]) != second.open_session(
        second.accounts["reseller"]
    )


def test_a_session_id_carries_128_random_bits(client):
    sid = session_id(client)

    assert len(sid) == 32 and int(sid, 16) >= 0


def test_the_session_cookie_is_kept_from_scripts(client):
    reply = client.post(URL, data={"func": "auth", "username": "reseller", "password": "s3cret"})

    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith("billmgrses5=")
    assert "HttpOnly" in cookie


# -- sessions expire in wall time as well as simulated time ----------------------------------


def test_a_session_idle_an_hour_of_wall_time_is_refused_though_the_clock_stands_still(app, client):
    wall = WallClock()
    seller_of(app).wall_clock = wall
    sid = session_id(client)

    wall.advance(SESSION_IDLE - timedelta(seconds=1))
    assert error_of(whoami(client, sid)) is None
    wall.advance(SESSION_IDLE - timedelta(seconds=1))
    assert error_of(whoami(client, sid)) is None, "a used session starts its hour again"
    wall.advance(SESSION_IDLE + timedelta(seconds=1))
    assert error_of(whoami(client, sid))[0] == "auth"


def test_a_session_idle_an_hour_of_simulated_time_is_refused_though_no_wall_time_passed(
    client,
):
    sid = session_id(client)

    client.post("/_sim/clock", json={"advance": "61m"})

    assert error_of(whoami(client, sid))[0] == "auth"


def test_idle_sessions_are_dropped_not_only_refused(app, client):
    wall = WallClock()
    seller_of(app).wall_clock = wall
    for _ in range(5):
        session_id(client)

    wall.advance(SESSION_IDLE + timedelta(seconds=1))
    session_id(client)

    assert len(seller_of(app).sessions) == 1


def test_sessions_beyond_the_limit_end_the_least_recently_used():
    sessions = Sessions(limit=3)
    first, second, third = (sessions.open("reseller", START, 0.0) for _ in range(3))
    sessions.use(first, START, 1.0)

    fourth = sessions.open("reseller", START, 2.0)

    assert [sid in sessions for sid in (first, second, third, fourth)] == [
        True,
        False,
        True,
        True,
    ]


# -- the failed-login throttle ---------------------------------------------------------------


def fail_logins(client, times: int, user: str = "reseller") -> list:
    return [error_of(log_in(client, user, "wrong")) for _ in range(times)]


def test_wrong_passwords_beyond_the_limit_are_refused_as_too_many(client):
    refusals = fail_logins(client, FAILED_LOGINS_MAX + 2)

    assert [kind for kind, _ in refusals] == ["auth"] * (FAILED_LOGINS_MAX + 2)
    assert {msg for _, msg in refusals[:FAILED_LOGINS_MAX]} == {"Invalid username or password"}
    assert all(msg.startswith("Too many failed logins") for _, msg in refusals[FAILED_LOGINS_MAX:])


def test_the_right_password_gets_in_while_throttled_and_clears_the_count(client):
    fail_logins(client, FAILED_LOGINS_MAX + 3)

    assert error_of(log_in(client)) is None
    assert error_of(whoami(client, session_id(client))) is None
    assert fail_logins(client, 1) == [("auth", "Invalid username or password")]


def test_the_throttle_counts_authinfo_too_and_lets_the_right_one_through(client):
    for _ in range(FAILED_LOGINS_MAX):
        client.post(URL, data={"func": "whoami", "authinfo": "reseller:wrong"})

    throttled = ET.fromstring(
        client.post(URL, data={"func": "whoami", "authinfo": "reseller:wrong"}).data
    )
    right = ET.fromstring(
        client.post(URL, data={"func": "whoami", "authinfo": "reseller:s3cret"}).data
    )

    assert error_of(throttled)[1].startswith("Too many failed logins")
    assert right.find("user").get("name") == "reseller"


def test_the_throttle_is_per_account(client):
    fail_logins(client, FAILED_LOGINS_MAX + 1)

    assert fail_logins(client, 1, "other") == [("auth", "Invalid username or password")]


def test_an_unknown_login_is_throttled_like_a_real_one_so_replies_tell_no_accounts(client):
    mine, nobody = (
        fail_logins(client, FAILED_LOGINS_MAX + 1),
        fail_logins(client, FAILED_LOGINS_MAX + 1, "nobody"),
    )

    assert mine == nobody


def test_the_throttle_ends_after_its_window_in_wall_time(app, client):
    wall = WallClock()
    seller_of(app).wall_clock = wall
    fail_logins(client, FAILED_LOGINS_MAX)

    wall.advance(FAILED_LOGIN_WINDOW + timedelta(seconds=1))

    assert fail_logins(client, 1) == [("auth", "Invalid username or password")]


def test_the_throttle_ends_after_its_window_in_simulated_time(client):
    fail_logins(client, FAILED_LOGINS_MAX)

    client.post("/_sim/clock", json={"advance": f"{FAILED_LOGIN_WINDOW.seconds // 60 + 1}m"})

    assert fail_logins(client, 1) == [("auth", "Invalid username or password")]


def test_the_control_api_shows_an_accounts_failed_logins(client):
    fail_logins(client, 3)

    assert client.get("/_sim/accounts/reseller").json["failed_logins"] == 3
