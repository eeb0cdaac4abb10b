"""Accounts on the simulated seller: who may call what, and what one account sees of another.

A wrong password, an expired session and a client calling an administrator's function are
refused. Whatever one account calls, with whatever ids, it never sees or touches another
account's services, balance or events.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from simulator.app import create_app, seller_of
from simulator.sessions import SESSION_IDLE
from simulator.world import seller_from_world
from tests.end_to_end import OTHER_PASSWORD, PASSWORD, SELLER_WORLD, START

ME = f"reseller:{PASSWORD}"
THEM = f"shop:{OTHER_PASSWORD}"


def world() -> dict:
    section = copy.deepcopy(SELLER_WORLD)
    section["accounts"]["root"] = {"password": "toor", "level": "admin"}
    return section


def app_with_services():
    """Two client accounts with a VDS and a web site each, and their events still queued."""
    seller = seller_from_world(world(), START)
    for login in ("reseller", "shop"):
        seller.order(seller.accounts[login], "vds", 5, 1, remoteid=f"{login}-vds")
        seller.order(seller.accounts[login], "vhost", 8, 1, remoteid=f"{login}-web")
    return create_app(seller)


def call(client, authinfo: str | None = None, **params) -> dict:
    data = {"out": "json", **params}
    if authinfo:
        data["authinfo"] = authinfo
    reply = client.post("/billmgr", data=data)
    assert reply.status_code == 200
    return json.loads(reply.data)["doc"]


def rows(document: dict) -> list[dict]:
    """A list's `elem` rows: JSON gives one row as a map, several as a list."""
    found = document.get("elem", [])
    return found if isinstance(found, list) else [found]


def error_type(document: dict) -> str | None:
    return document["error"]["$type"] if "error" in document else None


def test_a_wrong_password_is_refused_and_opens_no_session():
    client = app_with_services().test_client()
    assert error_type(call(client, "reseller:wrong", func="whoami")) == "auth"
    assert error_type(call(client, "reseller:", func="whoami")) == "auth"
    assert error_type(call(client, f"nobody:{PASSWORD}", func="whoami")) == "auth"
    refused = client.post(
        "/billmgr", data={"func": "auth", "username": "reseller", "password": "x"}
    )
    assert b'type="auth"' in refused.data
    assert "billmgrses5" not in refused.headers.get("Set-Cookie", "")


def test_a_session_left_idle_past_the_hour_is_refused_and_a_used_one_lives_on():
    app = app_with_services()
    client = app.test_client()
    reply = client.post(
        "/billmgr", data={"func": "auth", "username": "reseller", "password": PASSWORD}
    )
    session = reply.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    clock = app.test_client()
    for _ in range(3):  # used every 50 minutes, it never idles an hour
        clock.post("/_sim/clock", json={"advance": "50m"})
        assert error_type(call(client, func="whoami", auth=session)) is None
    clock.post("/_sim/clock", json={"advance": f"{SESSION_IDLE.seconds // 60 + 1}m"})
    assert error_type(call(client, func="whoami", auth=session)) == "auth"
    assert error_type(call(client, func="itemevent", auth=session)) == "auth"
    assert seller_of(app).feeds["reseller"], "a refused poll must not empty the feed"


def test_a_client_calling_an_administrators_function_is_refused():
    client = app_with_services().test_client()
    assert error_type(call(client, ME, func="account")) == "access"
    assert error_type(call(client, func="account")) == "auth"
    accounts = call(client, "root:toor", func="account")
    assert {e["name"]["$"] for e in accounts["elem"]} >= {"reseller", "shop"}


def state_of(app, login: str) -> tuple:
    """Everything of one account: its balance, its services in full, its queued events."""
    seller = seller_of(app)
    services = sorted(
        (s.id, s.status, s.expires, s.remoteid, tuple(sorted(s.addons.items())), tuple(s.ips))
        for s in seller.services.values()
        if s.account == login
    )
    events = [(e.id, e.type, e.service) for e in seller.feeds[login]]
    ledger = [(e.id, e.amount) for e in seller.ledger if e.account == login]
    return seller.accounts[login].balance, services, events, ledger


FUNCS = ["vds.edit", "vds.suspend", "vds.resume", "vds.delete", "service.prolong", "service.ip"]
FUNCS += ["vhost.edit", "vhost.delete", "vds", "vhost", "itemevent", "whoami", "vds.order.param"]


@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(FUNCS),
            st.sampled_from(["1000", "1001", "1002", "1003", "1000, 1002", "1003,1001", "9999"]),
            st.sampled_from(["", "ok"]),
            st.sampled_from([None, "1", "12", "reseller-vds"]),
        ),
        min_size=1,
        max_size=15,
    )
)
def test_one_account_never_sees_or_touches_anothers_services_balance_or_events(calls):
    app = app_with_services()
    client = app.test_client()
    mine = {s.id for s in seller_of(app).services.values() if s.account == "reseller"}
    before = state_of(app, "reseller")
    for func, elid, sok, extra in calls:
        params = {"func": func, "elid": elid, "sok": sok, "skipbasket": "on", "pricelist": "5"}
        if extra is not None:
            params.update(period=extra, remoteid=extra)
        document = call(client, THEM, **params)
        shown = json.dumps(document)
        for service in mine:
            for field in ("id", "elid", "item"):
                assert f'"{field}": {{"$": "{service}"}}' not in shown, (func, shown[:300])
        if error_type(document) is None:  # a refusal may echo what it was sent
            assert "reseller-vds" not in shown and "reseller-web" not in shown, shown[:300]
        assert f'"{PASSWORD}"' not in shown
        if func == "whoami":
            assert document["user"]["$name"] == "shop"
    assert state_of(app, "reseller") == before
    assert not {int(e["item"]["$"]) for e in rows(call(client, THEM, func="itemevent"))} & mine


def test_each_account_polls_only_its_own_events():
    app = app_with_services()
    client = app.test_client()
    seller = seller_of(app)
    theirs = {s.id for s in seller.services.values() if s.account == "shop"}
    mine_before = list(seller.feeds["reseller"])
    events = rows(call(client, THEM, func="itemevent"))
    assert events
    assert {int(e["item"]["$"]) for e in events} <= theirs
    assert seller.feeds["reseller"] == mine_before
    seller.advance_to(START + timedelta(days=40))  # expiries suspend everyone's services
    events = rows(call(client, THEM, func="itemevent"))
    assert events
    assert {int(e["item"]["$"]) for e in events} <= theirs
