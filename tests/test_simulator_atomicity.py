"""Every call is all or nothing: the seller's state changes only when the reply says it did.

Each refusal here is checked against the whole state (`/_sim/state`) before and after it.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

ME = "reseller:s3cret"
LONG_PERIODS = {"intname": "vds-any", "type": "vds", "prices": {-50: 1, -100: 0, 0: 50, 1: 10}}


@pytest.fixture
def world(world):
    world["tariffs"][9] = LONG_PERIODS
    return world


def bill(client, func: str, **params) -> ET.Element:
    reply = client.post("/billmgr", data={"func": func, "authinfo": ME, **params})
    assert reply.status_code == 200
    return ET.fromstring(reply.data)


def error_of(doc: ET.Element) -> tuple[str, str] | None:
    error = doc.find("error")
    return None if error is None else (error.get("type"), error.get("object"))


def order(client, tariff: int = 5, period: int = 1) -> ET.Element:
    return bill(
        client, "vds.order.param", pricelist=tariff, period=period, sok="ok", skipbasket="on"
    )


def ordered(client, tariff: int = 5, period: int = 1) -> int:
    doc = order(client, tariff, period)
    assert error_of(doc) is None, ET.tostring(doc)
    return int(doc.findtext("id"))


def move_clock_to(client, when: str) -> None:
    assert client.post("/_sim/clock", json={"to": when}).status_code == 200


def status(client, service: int) -> str:
    return client.get(f"/_sim/services/{service}").json["status"]


# -- dates at the calendar's end -------------------------------------------------------------


@pytest.mark.parametrize(
    "tariff, period",
    [(5, 1), (5, 3), (6, 1), (7, 1), (9, -50), (9, -100)],
    ids=["auto", "auto-3-months", "set-up-later", "manual", "day", "trial"],
)
def test_an_order_whose_period_would_end_past_9999_is_refused_with_nothing_debited(
    client, unchanged, tariff, period
):
    move_clock_to(client, "9999-12-31T12:00:00Z")

    with unchanged():
        doc = order(client, tariff, period)

    assert error_of(doc) == ("value", "period")
    assert "9999-12-31" in doc.findtext("error/msg")


def test_a_lifetime_order_on_the_last_day_is_taken_since_it_never_ends(client):
    move_clock_to(client, "9999-12-31T23:59:59Z")

    service = ordered(client, 9, 0)

    view = client.get(f"/_sim/services/{service}").json
    assert (view["status"], view["expires"]) == ("active", "")


def test_an_order_set_up_later_is_refused_if_its_set_up_falls_past_9999(client, unchanged):
    move_clock_to(client, "9999-12-31T23:55:00Z")

    with unchanged():
        doc = order(client, 6, 1)

    assert error_of(doc)[0] == "value"


def test_an_order_set_up_later_is_refused_if_the_period_from_its_set_up_ends_past_9999(
    client, unchanged
):
    move_clock_to(client, "9999-11-30T23:55:00Z")  # set up at 9999-12-01 00:05

    with unchanged():
        doc = order(client, 6, 1)

    assert error_of(doc) == ("value", "period")


def test_a_prolongation_past_9999_is_refused_with_nothing_debited(client, unchanged):
    move_clock_to(client, "9999-11-15T00:00:00Z")
    service = ordered(client)

    with unchanged():
        doc = bill(client, "service.prolong", elid=service, period=1, sok="ok")

    assert error_of(doc) == ("value", "period")


def test_staff_activating_a_service_whose_period_would_end_past_9999_is_refused(client, unchanged):
    move_clock_to(client, "9999-11-15T00:00:00Z")
    service = ordered(client, 7)
    move_clock_to(client, "9999-12-20T00:00:00Z")

    with unchanged():
        reply = client.post("/_sim/actions/activate", json={"service": service})

    assert (reply.status_code, reply.json["error"]["type"]) == (409, "value")
    assert status(client, service) == "ordered"


def test_creating_a_service_on_the_last_day_is_refused_with_nothing_debited(client, unchanged):
    move_clock_to(client, "9999-12-31T00:00:00Z")

    with unchanged():
        reply = client.post(
            "/_sim/actions/create_service", json={"account": "reseller", "tariff": 7}
        )

    assert (reply.status_code, reply.json["error"]["object"]) == (409, "period")


def test_automation_near_the_calendars_end_runs_without_a_refusal(client):
    move_clock_to(client, "9999-11-01T00:00:00Z")
    later = ordered(client, 6)
    expiring = ordered(client)

    reply = client.post("/_sim/clock", json={"to": "9999-12-31T23:59:59Z"})

    assert reply.status_code == 200
    assert [status(client, s) for s in (later, expiring)] == ["suspended", "suspended"]


# -- several ids at once ---------------------------------------------------------------------


def events(client) -> list[tuple[str, str]]:
    doc = bill(client, "itemevent")
    return [(e.findtext("type"), e.findtext("item")) for e in doc.findall("elem")]


@pytest.mark.parametrize("action", ["suspend", "delete"])
def test_an_id_named_twice_is_acted_on_once_and_the_reply_says_so(client, action):
    service = ordered(client)
    events(client)

    doc = bill(client, f"vds.{action}", elid=f"{service}, {service}")

    assert error_of(doc) is None and doc.find("ok") is not None
    assert len(events(client)) == 1
    assert status(client, service) == {"suspend": "suspended", "delete": "deleted"}[action]


def test_resume_of_an_id_named_twice_resumes_it_once(client):
    service = ordered(client)
    bill(client, "vds.suspend", elid=service)
    events(client)

    doc = bill(client, "vds.resume", elid=f"{service},{service}")

    assert error_of(doc) is None
    assert events(client) == [("resume", str(service))]


@pytest.mark.parametrize(
    "action, prepare",
    [
        ("suspend", "suspend"),  # the second is already suspended
        ("resume", None),  # the first is active, not suspended
        ("delete", "delete"),  # the second is already deleted
    ],
)
def test_several_ids_of_which_one_cannot_be_acted_on_change_none_of_them(
    client, unchanged, action, prepare
):
    first, second = ordered(client), ordered(client)
    if action == "resume":
        bill(client, "vds.suspend", elid=second)
    else:
        bill(client, f"vds.{prepare}", elid=second)

    with unchanged():
        doc = bill(client, f"vds.{action}", elid=f"{first}, {second}")

    assert error_of(doc) == ("value", "elid")


@pytest.mark.parametrize("elid", ["{mine}, 4242", "{mine}, {theirs}", "{mine}, x"])
def test_several_ids_with_an_unknown_or_anothers_one_change_none_of_them(client, unchanged, elid):
    mine = ordered(client)
    theirs = client.post(
        "/_sim/actions/create_service", json={"account": "other", "tariff": 5}
    ).json["result"]["id"]

    with unchanged():
        doc = bill(client, "vds.suspend", elid=elid.format(mine=mine, theirs=theirs))

    assert error_of(doc)[0] in ("missed", "value")
