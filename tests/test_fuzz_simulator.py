"""Every function of the simulated BILLmanager, fuzzed: a `doc.error` or a document, never a 500.

Parameters are missing, empty, huge, of the wrong kind, unicode (control characters too),
another account's ids, SQL and markup. Whatever comes, the reply is HTTP 200 with a document
that parses, in XML and in JSON, and a refusal is one of BILLmanager's error types, never
the simulator's own `internal` (a bug). The control API answers 400 or 409, never a 500.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.app import create_app
from simulator.control import ACTIONS
from simulator.functions import REGISTRY
from simulator.world import seller_from_world
from tests.end_to_end import OTHER_PASSWORD, PASSWORD, SELLER_WORLD, START

# Every function; of those declared per product type, the VPS's and the licence's copies (the
# others run the same builders).
FUNCS = sorted(name for name, fn in REGISTRY.items() if fn.type in (None, "vds", "soft"))
ERROR_TYPES = {"auth", "access", "value", "missed", "exists", "not_enough_money", "unknown_func"}
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "1.5",
    "1e9",
    "9" * 5000,
    "NaN",
    "on",
    "1000, 1001",
    "1000,,x",
    "' or 1=1 --",
    "1; DROP TABLE item",
    "<b>&amp;</b>]]>",
    '"><script>alert(1)</script>',
    "ünïcødé ✓ 名前",
    "\x00\x01\x1b[31m",
    "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    "%00%ff",
    "x" * 100_000,
]
KEYS = [
    "elid",
    "pricelist",
    "period",
    "sok",
    "skipbasket",
    "ostempl",
    "recipe",
    "domain",
    "hostname",
    "remoteid",
    "itemtype",
    "addon_11",
    "addon_12",
    "addon_13",
    "addon_x",
    "addon_99999999999999999999",
    "ip",
    "auth",
    "username",
    "password",
    "passwd",
    "confirm",
    "key",
    "id",
    "clicked_button",
    "paymethod_id",
    "order_period",
    "autoprolong",
    "datacenter",
    "p_cnt",
    "p_num",
    "su",
    "subject",
    "message",
    "licname",
]
values = st.one_of(st.sampled_from(NASTY), st.text(max_size=30), st.integers().map(str))
params = st.dictionaries(st.sampled_from(KEYS), values, max_size=8)


def world_with_services():
    """The shared world, with a service of each account (the other one's to be poked at)."""
    seller = seller_from_world(SELLER_WORLD, START)
    accounts = {login: seller.accounts[login] for login in ("reseller", "shop")}
    for login, account in accounts.items():
        seller.order(account, "vds", 5, 1, remoteid=f"{login}-1")
        seller.order(account, "vhost", 8, 1)
    return seller


APP = create_app(world_with_services())
CLIENT = APP.test_client()
LOGINS = {
    "reseller": f"reseller:{PASSWORD}",
    "shop": f"shop:{OTHER_PASSWORD}",
    "wrong": "reseller:nope",
    "nobody": "",
}


def parsed(reply, out: str):
    """The reply's document; fails the test if it is not a well-formed one."""
    assert reply.status_code == 200, (reply.status_code, reply.data[:300])
    if out == "json":
        document = json.loads(reply.data)
        assert set(document) == {"doc"}, document
        error = document["doc"].get("error")
        return error.get("$type") if error else None
    root = ET.fromstring(reply.data)
    assert root.tag == "doc"
    error = root.find("error")
    return error.get("type") if error is not None else None


def fuzz_budget() -> settings:
    base = settings()
    return settings(
        base,
        max_examples=base.max_examples * 3,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


@pytest.mark.parametrize("func", FUNCS)
@fuzz_budget()
@given(
    fields=params,
    who=st.sampled_from(sorted(LOGINS)),
    out=st.sampled_from(["xml", "json"]),
    method=st.sampled_from(["post", "get"]),
)
def test_every_function_answers_fuzzed_parameters_with_a_document_never_a_500(
    func, fields, who, out, method
):
    data = {**fields, "func": func, "out": out}
    if LOGINS[who]:
        data["authinfo"] = LOGINS[who]
    send = CLIENT.post if method == "post" else CLIENT.get
    reply = send("/billmgr", data=data) if method == "post" else send("/billmgr", query_string=data)
    error = parsed(reply, out)
    assert error is None or error in ERROR_TYPES, f"{func} answered error type {error!r}"


# Hypothesis mixes in string constants of the modules loaded so far, so which tests ran
# before (one xdist worker's share, say) decides whether a real name such as `vds` comes up:
# the filter leaves every declared function out, whatever was loaded.
@fuzz_budget()
@given(
    func=st.one_of(st.sampled_from(NASTY), st.text(max_size=40)).filter(
        lambda f: f.strip() not in REGISTRY
    ),
    out=st.sampled_from(["xml", "json"]),
)
def test_an_unknown_or_garbage_function_name_is_refused_with_a_document(func, out):
    reply = CLIENT.post("/billmgr", data={"func": func, "out": out, "authinfo": LOGINS["shop"]})
    error = parsed(reply, out)
    assert error in ERROR_TYPES


CONTROL_VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just([]),
    st.just({}),
)


# Good values for what each action reads, so fuzzing one or two of them reaches deep.
CONTROL_KEYS = {
    "service": st.sampled_from([1000, 1002]),
    "account": st.sampled_from(["reseller", "shop"]),
    "amount": st.sampled_from([1, "2.50"]),
    "addon": st.sampled_from(["ram", "backup", "panel"]),
    "value": st.sampled_from([2048, True, "ispmanager"]),
    "name": st.sampled_from(["hostname"]),
    "ip": st.sampled_from(["10.0.0.9"]),
    "id": st.sampled_from([5, 7, 8]),
    "tariff": st.sampled_from([5, 8]),
    "period": st.sampled_from([1, 12]),
    "addons": st.just({"ram": {"id": 11, "type": "integer"}}),
    "prices": st.just({1: 10}),
    "ostempl": st.just(["debian-12"]),
    "setup": st.sampled_from(["auto", "manual"]),
}
READS = {
    "add_ip": ("service", "ip"),
    "remove_ip": ("service", "ip"),
    "set_addon": ("service", "addon", "value"),
    "set_param": ("service", "name", "value"),
    "topup": ("account", "amount"),
    "edit_tariff": ("id", "addons", "prices", "ostempl", "setup", "name"),
    "create_service": ("account", "tariff", "period", "ip", "name"),
}


def control_bodies(action: str):
    """Good values for every key the action reads, one or two of them replaced by junk."""
    keys = READS.get(action, ("service",))
    good = st.fixed_dictionaries({key: CONTROL_KEYS[key] for key in keys})
    spoiled = st.dictionaries(st.sampled_from(keys), CONTROL_VALUES, min_size=1, max_size=2)
    dropped = st.sets(st.sampled_from(keys), max_size=1)
    return st.tuples(good, spoiled, dropped).map(
        lambda parts: {k: v for k, v in {**parts[0], **parts[1]}.items() if k not in parts[2]}
    )


@pytest.mark.parametrize("action", sorted(ACTIONS))
@fuzz_budget()
@given(data=st.data())
def test_every_control_action_answers_bad_bodies_with_400_or_409_never_a_500(action, data):
    body = data.draw(control_bodies(action), label="body")
    app = create_app(world_with_services())
    reply = app.test_client().post(f"/_sim/actions/{action}", json=body)
    assert reply.status_code in (200, 400, 409), (reply.status_code, reply.data[:500])
    assert "error" in reply.get_json() or reply.status_code == 200
