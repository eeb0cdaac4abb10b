"""`SellerSide`: the seller's staff, clock, faults and records, the same in-process and over HTTP.

Every test runs twice (the `side` fixture): on the app directly, and through a served
simulator's control API; the BILLmanager API calls go to the same app in-process.
"""

from __future__ import annotations

import copy
import socket
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from xml.etree import ElementTree as ET

import flask
import pytest
import yaml

from simulator.app import create_app
from simulator.server import LocalServer
from simulator.side import (
    InProcessSide,
    SellerRefused,
    SellerSide,
    SimulatorUnreachable,
    SocketSide,
)
from simulator.world import seller_from_world
from tests.conftest import START, WORLD

URL = "http://simulator/billmgr"


def order(session, pricelist: int = 5, **params) -> int:
    """An order by the reseller account through the BILLmanager API; the new service's id."""
    data = {"func": "vds.order.param", "authinfo": "reseller:s3cret", "pricelist": pricelist}
    data |= {"period": 1, "sok": "ok", "skipbasket": "on", **params}
    doc = ET.fromstring(session.post(URL, data=data).content)
    assert doc.find("error") is None, ET.tostring(doc)
    return int(doc.findtext("id"))


def feed(session) -> list[tuple[str, str]]:
    data = {"func": "itemevent", "authinfo": "reseller:s3cret"}
    doc = ET.fromstring(session.post(URL, data=data).content)
    return [(e.findtext("type"), e.findtext("item")) for e in doc.findall("elem")]


# -- the seller's staff ----------------------------------------------------------------------


def test_activate_sets_up_an_ordered_service_and_tells_its_account(side, session):
    service_id = order(session, pricelist=7)  # setup: manual
    assert side.service(service_id)["status"] == "ordered"

    side.activate(service_id)

    service = side.service(service_id)
    assert (service["status"], service["expires"]) == ("active", "2026-02-01")
    assert feed(session) == [("open", str(service_id))]


def test_a_refusal_by_the_staff_carries_the_sellers_error_type_and_message(side, session):
    service_id = order(session)  # set up at once

    with pytest.raises(SellerRefused) as refused:
        side.activate(service_id)

    assert refused.value.type == "value"
    assert refused.value.message == f"service {service_id} is not ordered"
    assert str(refused.value) == f"value: service {service_id} is not ordered"


def test_an_unknown_service_is_refused_as_missed(side):
    with pytest.raises(SellerRefused) as refused:
        side.suspend(4242)
    assert (refused.value.type, refused.value.message) == ("missed", "no service 4242")
    with pytest.raises(SellerRefused, match="missed: no service 4242"):
        side.service(4242)


def test_a_service_id_that_is_no_number_is_refused_naming_it(side):
    with pytest.raises(SellerRefused) as refused:
        side.service("vps")
    assert refused.value.type == "control"
    assert refused.value.message == "service: expected a whole number, got 'vps'"


def test_suspend_resume_and_delete_move_the_status_and_queue_events(side, session):
    service_id = order(session)
    feed(session)

    side.suspend(service_id)
    assert side.service(service_id)["status"] == "suspended"
    side.resume(service_id)
    assert side.service(service_id)["status"] == "active"
    side.delete(service_id)

    assert side.service(service_id)["status"] == "deleted"
    assert [kind for kind, _ in feed(session)] == ["suspend", "resume", "close"]


def test_add_ip_and_remove_ip_return_the_address_they_moved(side, session):
    service_id = order(session)
    first = side.service(service_id)["ips"][0]

    added = side.add_ip(service_id)
    chosen = side.add_ip(service_id, "10.0.0.8")

    assert chosen == "10.0.0.8" and added not in (first, chosen)
    assert side.service(service_id)["ips"] == [first, added, "10.0.0.8"]
    assert side.remove_ip(service_id) == "10.0.0.8"
    assert side.remove_ip(service_id, first) == first
    assert side.service(service_id)["ips"] == [added]
    with pytest.raises(SellerRefused, match="exists"):
        side.add_ip(service_id, added)


def test_set_addon_and_set_param_show_on_the_service(side, session):
    service_id = order(session)

    side.set_addon(service_id, "ram", 2048)
    side.set_addon(service_id, "panel", "ispmanager")
    side.set_param(service_id, "hostname", "web1")

    service = side.service(service_id)
    assert service["addons"] == {"ram": 2048, "backup": False, "panel": "ispmanager"}
    assert service["params"]["hostname"] == "web1" and service["name"] == "web1"
    with pytest.raises(SellerRefused, match="value: tariff 5 has no add-on 'disk'"):
        side.set_addon(service_id, "disk", 10)


def test_topup_adds_exactly_and_balances_and_the_ledger_are_decimal(side, session):
    order(session)  # 10 EUR

    side.topup("reseller", Decimal("0.10"))
    side.topup("reseller", "0.20")

    assert side.balance("reseller") == Decimal("90.30")
    assert isinstance(side.balance("reseller"), Decimal)
    assert [(e["reason"], e["amount"]) for e in side.ledger("reseller")] == [
        ("order", Decimal("-10.00")),
        ("topup", Decimal("0.10")),
        ("topup", Decimal("0.20")),
    ]
    assert side.account("reseller")["currency"] == "EUR"
    with pytest.raises(SellerRefused, match="value: a top-up must be positive"):
        side.topup("reseller", 0)


def test_edit_tariff_replaces_the_keys_given_and_new_orders_pay_the_new_price(side, session):
    side.edit_tariff(5, prices={1: 15, 12: 150})

    order(session)

    assert side.balance("reseller") == 85
    assert side.state()["tariffs"][0]["intname"] == "vds-1"  # what was not given stays
    with pytest.raises(SellerRefused, match="missed: no tariff 99"):
        side.edit_tariff(99, prices={1: 1})


def test_create_service_returns_the_new_service_and_services_filter_by_account_and_remoteid(
    side, session
):
    ordered = order(session, remoteid="r-1")

    created = side.create_service("other", 8, remoteid="shop-7", domain="example.com")

    assert (created["account"], created["status"], created["name"]) == (
        "other",
        "active",
        "example.com",
    )
    assert [s["id"] for s in side.services()] == [ordered, created["id"]]
    assert [s["id"] for s in side.services(account="other")] == [created["id"]]
    assert [s["id"] for s in side.services(remoteid="r-1")] == [ordered]
    assert side.balance("other") == 97


# -- the clock -------------------------------------------------------------------------------


def test_advance_runs_a_delayed_setup_when_it_falls_due_and_returns_the_new_time(side, session):
    service_id = order(session, pricelist=6)  # setup: after 10m
    assert side.next_due == datetime(2026, 1, 1, 0, 10)

    assert side.advance("9m") == datetime(2026, 1, 1, 0, 9)
    assert side.service(service_id)["status"] == "ordered"
    assert side.advance(timedelta(minutes=1)) == datetime(2026, 1, 1, 0, 10)

    assert side.service(service_id)["status"] == "active"
    assert side.now == datetime(2026, 1, 1, 0, 10)
    assert side.next_due == datetime(2026, 2, 1, 0, 10)  # its expiry


def test_clock_to_moves_to_a_time_and_never_back(side, session):
    service_id = order(session)

    assert side.clock_to("2026-02-01T00:00:00") == datetime(2026, 2, 1)
    assert side.service(service_id)["status"] == "suspended"  # expired
    with pytest.raises(SellerRefused) as refused:
        side.clock_to(datetime(2026, 1, 15))
    assert refused.value.type == "value" and "cannot go back" in refused.value.message
    assert side.clock() == {
        "now": datetime(2026, 2, 1),
        "next_due": None,
        "mode": "manual",
        "speed": 0,
    }


def test_a_bad_duration_is_refused_naming_it(side):
    with pytest.raises(SellerRefused) as refused:
        side.advance("soon")
    assert refused.value.type == "control"
    assert refused.value.message.startswith("advance: expected a duration like 30s")


# -- faults and calls ------------------------------------------------------------------------


def test_a_fault_aimed_at_one_function_hits_only_its_calls_and_is_listed_until_used(side, session):
    side.fault("error", times=1, func="*.order.param")
    (queued,) = side.faults()
    assert (queued["kind"], queued["times"], queued["func"]) == ("error", 1, "*.order.param")

    feed(session)  # not aimed at: untouched
    failed = session.post(
        URL,
        data={
            "func": "vds.order.param",
            "authinfo": "reseller:s3cret",
            "pricelist": 5,
            "period": 1,
            "sok": "ok",
            "skipbasket": "on",
        },
    )

    assert failed.status_code == 500
    assert side.faults() == []
    assert side.services() == []


def test_clear_faults_drops_every_queued_fault(side):
    side.fault("down", times=3)
    side.fault("drop_events", times=2, account="reseller")

    side.clear_faults()

    assert side.faults() == []


def test_an_unknown_fault_kind_is_refused_naming_the_kinds(side):
    with pytest.raises(SellerRefused) as refused:
        side.fault("explode")
    assert refused.value.type == "control"
    assert refused.value.message.startswith("kind: unknown fault 'explode'; expected one of down")


def test_calls_tell_what_was_sent_filtered_by_function_and_cut_to_the_last(side, session):
    order(session)
    feed(session)
    feed(session)

    assert [c["func"] for c in side.calls()] == ["vds.order.param", "itemevent", "itemevent"]
    assert [c["func"] for c in side.calls(func="*.order.param")] == ["vds.order.param"]
    (last,) = side.calls(func="itemevent", last=1)
    assert last["id"] == 3 and last["params"]["authinfo"] == "reseller:***"
    side.clear_calls()
    assert side.calls() == []


# -- the world -------------------------------------------------------------------------------


def test_load_replaces_the_seller_with_a_new_world(side, session):
    order(session)
    world = copy.deepcopy(WORLD)
    world["accounts"]["reseller"]["balance"] = 7

    side.load(world, start="2026-06-01T00:00:00Z")

    assert side.services() == [] and side.calls() == []
    assert side.balance("reseller") == 7
    assert side.now == datetime(2026, 6, 1)


def test_load_takes_a_scenario_files_path_with_its_seller_section_and_start(side, tmp_path):
    scenario = {
        "name": "any",
        "start": "2026-03-01T12:00:00Z",
        "seller": {"currency": "USD", "accounts": {"shop": {"password": "pw", "balance": 5}}},
        "steps": [{"wait": "5m"}],
    }
    path = tmp_path / "story.yaml"
    path.write_text(yaml.safe_dump(scenario))

    side.load(path)

    assert side.account("shop")["currency"] == "USD" and side.balance("shop") == 5
    assert side.now == datetime(2026, 3, 1, 12)


def test_a_bad_world_is_refused_naming_the_key_and_keeps_the_old_one(side):
    with pytest.raises(SellerRefused) as refused:
        side.load({"accounts": {"x": {"balance": 1}}})

    assert refused.value.type == "control"
    assert refused.value.message == "seller.accounts.x.password: missing"
    assert side.balance("reseller") == 100


def test_a_world_file_that_is_missing_or_has_no_seller_section_is_refused_naming_it(side, tmp_path):
    with pytest.raises(SellerRefused, match="missing.yaml: cannot read"):
        side.load(tmp_path / "missing.yaml")
    plain = tmp_path / "plain.yaml"
    plain.write_text("accounts: {}\n")
    with pytest.raises(SellerRefused, match="plain.yaml: expected a mapping with a `seller`"):
        side.load(str(plain))


def test_reset_leaves_an_empty_seller(side, session):
    order(session)

    side.reset()

    assert side.services() == []
    with pytest.raises(SellerRefused, match="missed: no account 'reseller'"):
        side.balance("reseller")


# -- named snapshots -------------------------------------------------------------------------


def test_a_snapshot_saved_by_name_brings_the_seller_back_as_it_was(side, session):
    service_id = order(session)
    side.snapshot("before-topup")
    side.topup("reseller", 50)
    side.advance("1h")

    assert side.restore("before-topup") == datetime(2026, 1, 1)

    assert side.balance("reseller") == 90
    assert [s["id"] for s in side.services()] == [service_id]
    assert side.snapshots() == ["before-topup"]


def test_a_snapshot_that_is_not_there_is_refused_as_missed_and_changes_nothing(side):
    with pytest.raises(SellerRefused) as refused:
        side.restore("never-saved")

    assert (refused.value.type, refused.value.object, refused.value.status) == (
        "missed",
        "name",
        404,
    )
    assert refused.value.message == "name: no snapshot 'never-saved'"
    assert side.balance("reseller") == 100


def test_a_snapshot_name_that_is_a_path_is_refused_naming_it(side, state_dir):
    with pytest.raises(SellerRefused) as refused:
        side.snapshot("../outside")

    assert (refused.value.type, refused.value.object, refused.value.status) == (
        "control",
        "name",
        400,
    )
    assert not state_dir.parent.joinpath("outside.json").exists()


# -- the two implementations -----------------------------------------------------------------


def unguessable(state: dict) -> dict:
    """The state with each service's password (from `secrets`: no seed repeats it) checked and
    set aside."""
    for service in state["services"]:
        assert len(service.pop("password")) >= 12
    return state


def story(side) -> list:
    """A run of seller-side actions and reads, each result (or refusal) in order."""
    results = []
    steps = [
        lambda: side.load(WORLD),
        lambda: side.create_service("reseller", 7, remoteid="a"),
        lambda: side.create_service("reseller", 5, ip="10.1.1.1"),
        lambda: side.add_ip(1000),
        lambda: side.set_addon(1001, "backup", "on"),
        lambda: side.suspend(1001),
        lambda: side.suspend(1001),
        lambda: side.topup("poor", "1.005"),
        lambda: side.fault("drop_events", 2),
        lambda: side.faults(),
        lambda: side.advance("31d"),
        lambda: side.services(),
        lambda: side.ledger(),
        lambda: side.account("poor"),
        lambda: side.clock(),
        lambda: unguessable(side.state()),
        lambda: side.delete(1000),
        lambda: side.remove_ip(1000, "1.2.3.4"),
        lambda: side.edit_tariff(5, setup="sometimes"),
    ]
    for step in steps:
        try:
            results.append(step())
        except SellerRefused as refused:
            results.append(("refused", refused.type, refused.message))
    return results


def test_in_process_and_over_http_the_same_story_gives_the_same_results():
    in_process = story(InProcessSide(create_app()))
    with LocalServer(create_app(), threads=2) as server, SocketSide(server.url) as over_http:
        served = story(over_http)

    assert in_process == served
    assert sum(isinstance(r, tuple) and r[0] == "refused" for r in in_process) == 3


def test_a_simulator_that_does_not_answer_is_unreachable_in_one_line():
    with socket.socket() as bound:  # bound, never listening: the port refuses, and stays ours
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        side = SocketSide(url, timeout=2)

        with pytest.raises(SimulatorUnreachable) as unreachable:
            side.clock()

    assert str(unreachable.value) == f"no simulator answers at {url} (connection refused)"


def test_the_token_goes_as_a_bearer_header_on_every_control_call():
    app = create_app()
    seen = []
    app.before_request(lambda: seen.append(flask.request.headers.get("Authorization")))
    with LocalServer(app, threads=2) as server, SocketSide(server.url, token="t0k") as side:
        side.reset()
        side.clock()

    assert seen == ["Bearer t0k", "Bearer t0k"]


# Each refused by the control API's own checks, before anything changes.
BAD_REQUESTS = {
    "an amount past the largest": lambda side: side.topup("reseller", "1e999999999"),
    "a duration past the calendar": lambda side: side.advance("99999999999d"),
    "a time that is no time": lambda side: side.clock_to("soon"),
    "a fault that hits fewer than no calls": lambda side: side.fault("error", times=-1),
    "a key no action knows": lambda side: side.create_service("reseller", 5, colour="red"),
    "an address that is no address": lambda side: side.add_ip(1000, "10.0.0.300"),
    "a count of no calls": lambda side: side.calls(last=0),
    "a seed past 32 bits": lambda side: side.load(WORLD, seed=2**32),
    "a snapshot name that climbs out": lambda side: side.snapshot("../../etc/x"),
    "a snapshot never saved": lambda side: side.restore("nowhere"),
    "a service that is not there": lambda side: side.suspend(4242),
}


def refusals(side) -> list[tuple]:
    """Each bad request's refusal as (what, type, object, message, status); none changes a thing."""
    side.create_service("reseller", 5)
    found = []
    for what, bad in BAD_REQUESTS.items():
        before = side.state()
        with pytest.raises(SellerRefused) as refused:
            bad(side)
        assert side.state() == before, f"{what} changed the seller"
        error = refused.value
        found.append((what, error.type, error.object, error.message, error.status))
    return found


def test_a_bad_value_is_refused_the_same_way_in_process_and_over_http(tmp_path):
    def app(folder: str):
        return create_app(
            seller_from_world(copy.deepcopy(WORLD), START), state_dir=tmp_path / folder
        )

    in_process = refusals(InProcessSide(app("in_process")))
    with LocalServer(app("served"), threads=2) as server, SocketSide(server.url) as over_http:
        served = refusals(over_http)

    assert in_process == served
    by_what = {what: rest for what, *rest in in_process}
    assert by_what["an amount past the largest"][:2] == ["control", "amount"]
    assert by_what["an amount past the largest"][3] == 400
    assert by_what["a key no action knows"][1:] == [
        "colour",
        "colour: unknown key; expected one of "
        "['account', 'domain', 'hostname', 'ip', 'licname', 'name', 'period', 'remoteid', "
        "'tariff', 'username']",
        400,
    ]
    assert by_what["a count of no calls"] == [
        "control",
        "last",
        "last: expected a whole number >= 1, got '0'",
        400,
    ]
    assert by_what["a snapshot never saved"][::3] == ["missed", 404]
    assert by_what["a service that is not there"] == ["missed", "service", "no service 4242", 409]


TOKEN = "a-token-of-sixteen-or-more"


def test_a_guarded_simulator_refuses_a_side_without_its_token_as_auth_401():
    with LocalServer(create_app(token=TOKEN), threads=2) as server:
        with SocketSide(server.url) as stranger, pytest.raises(SellerRefused) as refused:
            stranger.clock()
        with SocketSide(server.url, token=TOKEN) as trusted:
            assert trusted.clock()["mode"] == "manual"

    assert (refused.value.type, refused.value.object, refused.value.status) == (
        "auth",
        "token",
        401,
    )
    assert refused.value.message.startswith("token: missing; the control API needs its token")


def test_act_does_an_action_by_its_scenario_name_and_gives_its_result(side, session):
    service = order(session, pricelist=7)  # tariff 7 waits for the staff

    added = side.act("add_ip", {"service": service, "ip": "203.0.113.99"})
    side.act("activate", {"service": service})

    assert added == {"ip": "203.0.113.99"}
    assert side.service(service)["status"] == "active"
    with pytest.raises(SellerRefused) as refused:
        side.act("activate", {"service": service})
    assert refused.value.type == "value"


def test_move_to_gives_the_clock_reading_after_the_move(side, session):
    order(session, pricelist=6)  # set up 10 minutes after the order

    reading = side.move_to(START + timedelta(minutes=5))

    assert reading["now"] == START + timedelta(minutes=5)
    assert reading["next_due"] == START + timedelta(minutes=10)
    assert reading == side.clock()


def test_faults_used_counts_what_each_kind_hit_spent_counters_too(side, session):
    side.fault("error", times=1, func="itemevent")

    session.post(URL, data={"func": "itemevent", "authinfo": "reseller:s3cret"})

    assert side.faults() == []  # spent
    assert side.faults_used()["error"] == 1 and side.faults_used()["down"] == 0


def test_the_clock_steps_feeds_and_faults_the_harness_reads_answer_as_the_control_api(
    side, session
):
    order(session, pricelist=6)  # set up 10 minutes after the order
    side.fault("error", times=2, func="vds")
    side.create_service("reseller", 5)  # an event waits on the feed
    # `SellerSide`'s own ways: through the control API's replies, times parsed from their text
    as_replied = SellerSide.move_to, SellerSide.faults

    for when in (
        START + timedelta(minutes=5, microseconds=250),
        "2026-01-01T00:07:30Z",
        datetime(2026, 1, 1, 2, 8, tzinfo=timezone(timedelta(hours=2))),  # 00:08 UTC
    ):
        reading = side.move_to(when)
        assert reading == as_replied[0](side, when) == SellerSide.clock(side)
        assert side.next_due == SellerSide.clock(side)["next_due"] == START + timedelta(minutes=10)
    assert side.faults() == as_replied[1](side) != []
    assert side.pending_events("reseller") == side.account("reseller")["pending_events"] == 1
    with pytest.raises(SellerRefused, match="missed: no account 'nobody'"):
        side.pending_events("nobody")
    with pytest.raises(SellerRefused, match="to: expected an ISO date-time, got 'soon'"):
        side.move_to("soon")
