"""The control API answers bad input with a 4xx JSON error naming the key and value, never a 500.

Whatever is refused changes nothing: the whole state (`/_sim/state`) is compared around it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ENDPOINTS = ["reset", "clock", "faults", "actions/topup", "snapshot", "restore"]


def error(reply) -> dict:
    """The JSON error of a refused control call."""
    assert reply.is_json, reply.data[:200]
    return reply.json["error"]


def refused(reply, status: int, key: str) -> str:
    """Assert a refusal with `status` naming `key` first; its message."""
    assert reply.status_code == status, reply.data[:300]
    found = error(reply)
    assert found["object"] == key, found
    assert found["msg"].startswith(f"{key}:") or key in found["msg"], found
    return found["msg"]


def balance(client, login: str = "reseller") -> Decimal:
    return Decimal(client.get(f"/_sim/accounts/{login}").json["balance"])


# -- bodies that are not JSON objects --------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "data, content_type",
    [
        (b"world=", "application/x-www-form-urlencoded"),
        (b'{"world": {}}', "text/plain"),
        (b"", None),
        (b"{not json", "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"reset"', "application/json"),
        (b'{"seed": ' + b"9" * 5000 + b"}", "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ],
    ids=[
        "form",
        "text-plain",
        "no-body",
        "broken",
        "bad-utf8",
        "list",
        "string",
        "huge-int",
        "deep",
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_and_changes_nothing(
    client, unchanged, path, data, content_type
):
    headers = {"Content-Type": content_type} if content_type else {}
    with unchanged():
        reply = client.post(f"/_sim/{path}", data=data, headers=headers)

    assert reply.status_code in (400, 415), reply.data[:300]
    assert error(reply)["object"] == "body"


def test_reset_with_a_misspelled_key_is_refused_and_keeps_the_seller(client, unchanged):
    with unchanged():
        reply = client.post("/_sim/reset", json={"wrld": {"currency": "USD"}})

    msg = refused(reply, 400, "wrld")
    assert "['seed', 'start', 'world']" in msg
    assert balance(client) == 100


@pytest.mark.parametrize(
    "path, body, key",
    [
        ("reset", {"world": {}, "sed": 1}, "sed"),
        ("clock", {"advnce": "5m"}, "advnce"),
        ("faults", {"kind": "down", "times": 1, "acount": "x"}, "acount"),
        ("actions/topup", {"account": "reseller", "amount": 5, "currency": "USD"}, "currency"),
        ("actions/suspend", {"service": 1000, "reason": "x"}, "reason"),
        ("actions/create_service", {"account": "reseller", "tariff": 5, "prise": 1}, "prise"),
        ("actions/edit_tariff", {"id": 5, "type": "dedic"}, "type"),
        ("snapshot", {"name": "x", "path": "/tmp/x"}, "path"),
        ("restore", {"name": "x", "path": "/tmp/x"}, "path"),
    ],
)
def test_an_unknown_key_is_refused_by_name_and_changes_nothing(client, unchanged, path, body, key):
    with unchanged():
        reply = client.post(f"/_sim/{path}", json=body)

    refused(reply, 400, key)


# -- values out of range or of the wrong kind ------------------------------------------------


@pytest.mark.parametrize("amount", ["1e999999999", 1e308, "1e13", "1000000000000.01", "NaN"])
def test_topup_of_an_amount_beyond_any_balance_is_refused_naming_it(client, unchanged, amount):
    with unchanged():
        reply = client.post("/_sim/actions/topup", json={"account": "reseller", "amount": amount})

    refused(reply, 400, "amount")


def test_topup_of_the_largest_amount_is_taken(client):
    reply = client.post(
        "/_sim/actions/topup", json={"account": "reseller", "amount": "1000000000000"}
    )

    assert reply.status_code == 200
    assert balance(client) == Decimal("1000000000100")


@pytest.mark.parametrize("advance", ["99999999999d", "9" * 5000 + "d", "999999999999s"])
def test_advancing_the_clock_past_the_calendar_is_refused_naming_the_key(
    client, unchanged, advance
):
    with unchanged():
        reply = client.post("/_sim/clock", json={"advance": advance})

    msg = refused(reply, 400, "advance")
    assert len(msg) < 300


@pytest.mark.parametrize(
    "body, key",
    [
        ({"advance": "1d"}, "advance"),
        ({"to": "10000-01-01T00:00:00"}, "to"),
        ({"to": "9999-12-31T23:30:00-01:00"}, "to"),
    ],
)
def test_a_clock_past_the_year_9999_is_refused_and_stays_where_it_was(client, body, key):
    client.post("/_sim/clock", json={"to": "9999-12-31T12:00:00Z"})

    reply = client.post("/_sim/clock", json=body)

    refused(reply, 400, key)
    assert client.get("/_sim/clock").json["now"] == "9999-12-31 12:00:00"


def test_the_clock_takes_to_or_advance_not_both(client, unchanged):
    with unchanged():
        reply = client.post("/_sim/clock", json={"to": "2026-02-01T00:00:00Z", "advance": "5m"})

    refused(reply, 400, "to")


def test_a_time_with_an_offset_is_read_as_the_utc_time_it_names(client):
    reply = client.post("/_sim/clock", json={"to": "2026-01-02T05:00:00+05:00"})

    assert reply.json["now"] == "2026-01-02 00:00:00"


@pytest.mark.parametrize(
    "path, body, key",
    [
        ("reset", {"seed": "x"}, "seed"),
        ("reset", {"seed": [1]}, "seed"),
        ("reset", {"seed": -1}, "seed"),
        ("reset", {"seed": 2**40}, "seed"),
        ("reset", {"seed": True}, "seed"),
        ("reset", {"start": 5}, "start"),
        ("reset", {"world": [1]}, "seller"),
        ("clock", {"advance": ["5m"]}, "advance"),
        ("clock", {"to": {"at": 1}}, "to"),
        ("faults", {"kind": ["down"], "times": 1}, "kind"),
        ("faults", {"kind": "down", "times": 1.5}, "times"),
        ("actions/topup", {"account": ["reseller"], "amount": 5}, "account"),
        ("actions/topup", {"account": "reseller", "amount": True}, "amount"),
        ("actions/topup", {"account": "reseller"}, "amount"),
        ("actions/add_ip", {"service": 1000, "ip": 5}, "ip"),
        ("actions/add_ip", {"service": 1000, "ip": "not-an-ip"}, "ip"),
        ("actions/add_ip", {"service": [1000]}, "service"),
        ("actions/add_ip", {"service": "9" * 5000}, "service"),
        ("actions/set_param", {"service": 1000, "name": {}, "value": "x"}, "name"),
        ("actions/set_param", {"service": 1000, "name": " ", "value": "x"}, "name"),
        ("actions/create_service", {"account": "reseller", "tariff": 5, "remoteid": 7}, "remoteid"),
        ("actions/create_service", {"account": "reseller", "tariff": 5, "domain": []}, "domain"),
        ("actions/create_service", {"account": 5, "tariff": 5}, "account"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_naming_the_key_and_changes_nothing(
    client, session, unchanged, path, body, key
):
    session.post(
        "http://simulator/billmgr",
        data={"func": "vds.order.param", "authinfo": "reseller:s3cret", "pricelist": 5}
        | {"period": 1, "sok": "ok", "skipbasket": "on"},
    )
    with unchanged():
        reply = client.post(f"/_sim/{path}", json=body)

    assert reply.status_code == 400, reply.data[:300]
    found = error(reply)
    assert found["object"].startswith(key), found
    assert len(found["msg"]) < 400, "a message quotes a long value cut short"


def test_set_param_of_a_list_value_is_refused_as_a_value_error(client, session, unchanged):
    session.post(
        "http://simulator/billmgr",
        data={"func": "vds.order.param", "authinfo": "reseller:s3cret", "pricelist": 5}
        | {"period": 1, "sok": "ok", "skipbasket": "on"},
    )
    with unchanged():
        reply = client.post(
            "/_sim/actions/set_param", json={"service": 1000, "name": "x", "value": [1]}
        )

    assert (reply.status_code, error(reply)["type"]) == (409, "value")


@pytest.mark.parametrize("last", ["abc", "0", "-3", "1.5", "9" * 50])
def test_the_call_log_refuses_a_last_that_is_not_a_count(client, last):
    refused(client.get(f"/_sim/calls?last={last}"), 400, "last")


# -- paths and methods -----------------------------------------------------------------------


def test_an_unknown_control_path_is_a_json_404(client):
    reply = client.get("/_sim/nothing/here")

    assert reply.status_code == 404
    assert error(reply)["object"] == "path"


def test_a_wrong_method_is_a_json_405_that_says_what_is_allowed(client, unchanged):
    with unchanged():
        reply = client.delete("/_sim/reset")

    assert reply.status_code == 405
    assert error(reply)["object"] == "path"
    assert "POST" in reply.headers["Allow"]


def test_an_unknown_action_is_refused_naming_it(client):
    msg = refused(client.post("/_sim/actions/reboot", json={}), 400, "action")

    assert "'reboot'" in msg and "topup" in msg


# -- any body at all -------------------------------------------------------------------------

ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["5m", "1d", "2026-02-01T00:00:00Z", "down", "x/../y", "1e999999999"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
KEYS = {
    "reset": ["world", "start", "seed"],
    "clock": ["to", "advance"],
    "faults": ["kind", "times", "func", "account"],
    "snapshot": ["name"],
    "restore": ["name"],
}


@settings(
    max_examples=settings().max_examples * 8,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(sorted(KEYS)),
    data=st.data(),
)
def test_any_json_body_gets_a_json_answer_below_500_and_a_refusal_changes_nothing(
    client, path, data
):
    keys = st.sampled_from(KEYS[path]) | st.text(max_size=6)
    body = data.draw(st.dictionaries(keys, ANY_JSON, max_size=3), label="body")
    before = client.get("/_sim/state").json

    reply = client.post(f"/_sim/{path}", json=body)

    assert reply.status_code in (200, 400, 404, 409), (reply.status_code, reply.data[:300])
    assert reply.is_json
    if reply.status_code != 200:
        assert client.get("/_sim/state").json == before
        assert reply.json["error"]["msg"]
