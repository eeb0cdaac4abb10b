"""What keeps strangers out of the simulator: sessions, the login throttle, the control guard."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import requests

from simulator.app import create_app, seller_of
from simulator.guard import TOKEN_COOKIE, token_for
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


# -- the control API's guard -----------------------------------------------------------------

TOKEN = "t0ken-for-the-tests-only"


@pytest.fixture
def guarded(seller, state_dir):
    """A client of an app whose control API needs `TOKEN`."""
    return create_app(seller, token=TOKEN, state_dir=state_dir).test_client()


def control_routes() -> list[tuple[str, str]]:
    """Every control endpoint and method, plus a path and a method it does not know."""
    known = [
        (method, rule.rule.replace("<name>", "topup").replace("<int:service_id>", "1000"))
        for rule in create_app().url_map.iter_rules()
        if rule.rule.startswith("/_sim")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]
    return known + [("GET", "/_sim/nothing"), ("PUT", "/_sim/reset"), ("GET", "/_sim")]


@pytest.mark.parametrize("method, path", control_routes())
def test_every_control_request_without_the_token_is_refused_401_and_changes_nothing(
    guarded, unchanged_guarded, method, path
):
    with unchanged_guarded():
        reply = guarded.open(path, method=method, json={"world": {}, "name": "x"})

    assert reply.status_code == 401
    assert reply.json["error"]["type"] == "auth"
    assert reply.json["error"]["msg"].startswith("token: missing")
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture
def unchanged_guarded(guarded):
    """`unchanged`, read through the guard with the token."""

    @contextlib.contextmanager
    def check():
        read = {"Authorization": f"Bearer {TOKEN}"}
        before = guarded.get("/_sim/state", headers=read).json
        yield
        assert guarded.get("/_sim/state", headers=read).json == before

    return check


@pytest.mark.parametrize(
    "headers, cookie",
    [
        ({"Authorization": f"Bearer {TOKEN}"}, None),
        ({"Authorization": f"bearer  {TOKEN} "}, None),
        ({}, TOKEN),
        ({"Authorization": "Basic x"}, TOKEN),
    ],
    ids=["bearer", "bearer-any-case", "cookie", "cookie-beside-other-credentials"],
)
def test_the_token_is_taken_as_a_bearer_credential_or_as_the_cookie(guarded, headers, cookie):
    if cookie:
        guarded.set_cookie(TOKEN_COOKIE, cookie)

    reply = guarded.post("/_sim/clock", json={"advance": "5m"}, headers=headers)

    assert reply.status_code == 200
    assert reply.json["now"] == "2026-01-01 00:05:00"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer tökén"},
        {"Cookie": f"{TOKEN_COOKIE}=wrong"},
        {"Cookie": f"billmgrses5={TOKEN}"},
    ],
)
def test_a_wrong_token_is_refused_401_without_a_crash(guarded, unchanged_guarded, headers):
    if "Cookie" in headers:
        name, _, value = headers.pop("Cookie").partition("=")
        guarded.set_cookie(name, value)
    with unchanged_guarded():
        reply = guarded.post("/_sim/reset", json={}, headers=headers)

    assert reply.status_code == 401
    assert reply.json["error"]["object"] == "token"


def test_the_billmanager_api_needs_no_control_token(guarded):
    reply = guarded.post(URL, data={"func": "whoami", "authinfo": "reseller:s3cret"})

    assert ET.fromstring(reply.data).find("user").get("name") == "reseller"


def test_without_a_token_the_control_api_is_open_as_on_loopback(client):
    assert client.post("/_sim/clock", json={"advance": "5m"}).status_code == 200


@pytest.mark.parametrize(
    "host, beyond",
    [
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("[::1]", False),
        ("localhost", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.5", True),
        ("myhost.example", True),
    ],
)
def test_a_token_is_made_whenever_the_host_is_beyond_loopback(host, beyond):
    token, made = token_for(host, None)

    assert made is beyond and (token is not None) is beyond
    if beyond:
        assert len(token) >= 43 and token != token_for(host, None)[0]


def test_a_given_token_is_required_on_loopback_too():
    assert token_for("127.0.0.1", TOKEN) == (TOKEN, False)
    assert token_for("0.0.0.0", TOKEN) == (TOKEN, False)


@pytest.mark.parametrize("token", ["short", "with space in it!", "ünïcödé-but-long-enough", ""])
def test_a_token_that_cannot_be_sent_as_a_header_or_cookie_is_refused(seller, token):
    with pytest.raises(ValueError, match="a token is 16 to 512 characters"):
        create_app(seller, token=token)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(tmp_path, *args: str, env: dict | None = None):
    """`run.py simulator` on a free port, with its first lines of output once it listens."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "run.py", "simulator", "--port", str(port), *args],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    lines = [process.stdout.readline()]
    assert "simulated BILLmanager" in lines[0], lines
    return process, port, lines


def stop(process) -> str:
    process.terminate()
    rest, _ = process.communicate(timeout=10)
    return rest


def test_run_py_listening_beyond_loopback_makes_and_prints_a_token_and_requires_it(tmp_path):
    process, port, lines = serve(tmp_path, "--host", "0.0.0.0", "--state-dir", str(tmp_path))
    try:
        lines.append(process.stdout.readline())
        token = lines[1].strip().removeprefix("control API token: ")
        base = f"http://127.0.0.1:{port}"
        assert lines[1].startswith("control API token: ") and len(token) >= 43
        refused = requests.get(f"{base}/_sim/clock", timeout=5)
        allowed = requests.get(
            f"{base}/_sim/clock", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        billing = requests.get(f"{base}/billmgr", params={"func": "pricelist.export"}, timeout=5)
    finally:
        stop(process)

    assert refused.status_code == 401 and refused.json()["error"]["type"] == "auth"
    assert allowed.status_code == 200
    assert billing.status_code == 200


def test_run_py_takes_the_token_from_the_environment_and_never_prints_it(tmp_path):
    process, port, lines = serve(tmp_path, env={"SIMULATOR_TOKEN": TOKEN})
    try:
        lines.append(process.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        refused = requests.get(f"{base}/_sim/clock", timeout=5)
        allowed = requests.get(f"{base}/_sim/clock", cookies={TOKEN_COOKIE: TOKEN}, timeout=5)
    finally:
        output = "".join(lines) + stop(process)

    assert (refused.status_code, allowed.status_code) == (401, 200)
    assert "requires the token given" in output and TOKEN not in output


def test_run_py_on_loopback_without_a_token_leaves_the_control_api_open(tmp_path):
    process, port, lines = serve(tmp_path, env={"SIMULATOR_TOKEN": ""})
    try:
        reply = requests.get(f"http://127.0.0.1:{port}/_sim/clock", timeout=5)
    finally:
        output = "".join(lines) + stop(process)

    assert reply.status_code == 200
    assert "token" not in output


def test_run_py_refuses_a_token_too_short_to_guard_anything(tmp_path):
    done = subprocess.run(
        [sys.executable, "run.py", "simulator", "--token", "secret"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 2
    assert done.stderr.startswith("error: --token: a token is 16 to 512 characters")
