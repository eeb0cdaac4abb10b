"""The control API (`/_sim`): reset, clock and automation, seller-side actions, faults, logs."""

from __future__ import annotations

import json
from decimal import Decimal
from xml.etree import ElementTree as ET

import pytest
import requests

from simulator.app import seller_of

URL = "http://simulator/billmgr"
PASSWORDS = {"reseller": "s3cret", "other": "other-pw", "nosuspend": "pw", "poor": "pw"}


def bill(session, func: str, user: str = "reseller", **params) -> ET.Element:
    """A BILLmanager call as `user`; transport failures raise as they would for a client."""
    params.setdefault("authinfo", f"{user}:{PASSWORDS[user]}")
    reply = session.post(URL, data={"func": func, **params})
    reply.raise_for_status()
    return ET.fromstring(reply.content)


def order(session, user: str = "reseller", **params) -> int:
    params = {"pricelist": 5, "period": 1, "sok": "ok", "skipbasket": "on", **params}
    doc = bill(session, "vds.order.param", user, **params)
    assert doc.find("error") is None, ET.tostring(doc)
    return int(doc.findtext("id"))


def read_events(session, user: str = "reseller") -> list[dict]:
    """One read of the event feed, each event as a dict of its fields."""
    return [
        {child.tag: child.text or "" for child in elem} | {"ips": elem.findall("ip")}
        for elem in bill(session, "itemevent", user).findall("elem")
    ]


def kinds(events: list[dict]) -> list[tuple[str, int]]:
    return [(e["type"], int(e["item"])) for e in events]


def sim(client, method: str, path: str, /, **body):
    """A control call that must succeed; its JSON."""
    reply = client.open(f"/_sim/{path}", method=method, json=body if method == "POST" else None)
    assert reply.status_code == 200, reply.json
    return reply.json


def act(client, name: str, /, **body):
    return sim(client, "POST", f"actions/{name}", **body)["result"]


def service(client, service_id: int) -> dict:
    return sim(client, "GET", f"services/{service_id}")


def balance(client, login: str = "reseller") -> Decimal:
    return Decimal(sim(client, "GET", f"accounts/{login}")["balance"])


def add_fault(client, kind: str, times: int) -> dict:
    return sim(client, "POST", "faults", kind=kind, times=times)


def pending_faults(client) -> dict:
    return sim(client, "GET", "faults")["pending"]


def state(client) -> dict:
    return sim(client, "GET", "state")


# -- reset -----------------------------------------------------------------------------------


def test_reset_replaces_the_whole_world_and_restarts_the_clock(client, session):
    order(session)
    world = {"currency": "USD", "accounts": {"reseller": {"password": "s3cret", "balance": 7}}}

    reply = sim(client, "POST", "reset", world=world, start="2026-03-01T12:00:00Z")

    assert reply == {"now": "2026-03-01 12:00:00"}
    assert sim(client, "GET", "services") == {"services": []}
    assert sim(client, "GET", "accounts/reseller")["currency"] == "USD"
    assert balance(client) == 7
    assert client.get("/_sim/accounts/other").status_code == 409
    assert bill(session, "pricelist.export").findall("pricelist") == []


def test_reset_without_a_world_leaves_an_empty_seller(client, app):
    sim(client, "POST", "reset")

    assert seller_of(app).accounts == {}
    assert sim(client, "GET", "clock")["now"] == "2026-01-01 00:00:00"


def test_reset_installs_a_new_seller_rather_than_editing_the_old_one(client, app, seller):
    sim(client, "POST", "reset", world={})

    assert seller_of(app) is not seller
    assert "reseller" in seller.accounts


def test_reset_with_a_bad_world_names_the_bad_key_and_keeps_the_old_world(client):
    world = {"accounts": {"x": {"balance": 1}}}

    reply = client.post("/_sim/reset", json={"world": world})

    assert reply.status_code == 400
    assert reply.json["error"]["msg"].startswith("seller.accounts.x.password: missing")
    assert balance(client) == 100


# -- the clock and the seller's automation ---------------------------------------------------


def test_clock_shows_the_time_and_when_automation_is_next_due(client, session):
    assert sim(client, "GET", "clock") == {
        "now": "2026-01-01 00:00:00",
        "next_due": None,
        "mode": "manual",
        "speed": 0,
    }
    order(session)
    assert sim(client, "GET", "clock")["next_due"] == "2026-02-01 00:00:00"


def test_clock_advances_by_a_duration_or_to_a_time(client):
    assert sim(client, "POST", "clock", advance="90s")["now"] == "2026-01-01 00:01:30"
    assert sim(client, "POST", "clock", advance="2h")["now"] == "2026-01-01 02:01:30"
    assert sim(client, "POST", "clock", to="2026-01-05T00:00:00Z")["now"] == "2026-01-05 00:00:00"


def test_clock_refuses_to_go_back(client):
    sim(client, "POST", "clock", advance="1d")

    reply = client.post("/_sim/clock", json={"to": "2026-01-01T00:00:00Z"})

    assert reply.status_code == 409
    assert reply.json["error"]["type"] == "value"
    assert sim(client, "GET", "clock")["now"] == "2026-01-02 00:00:00"


@pytest.mark.parametrize("body", [{"advance": "5 minutes"}, {"advance": "-5m"}, {"to": "soon"}, {}])
def test_clock_refuses_a_bad_duration_or_time_with_400(client, body):
    reply = client.post("/_sim/clock", json=body)

    assert reply.status_code == 400
    assert sim(client, "GET", "clock")["now"] == "2026-01-01 00:00:00"


def test_service_set_up_after_a_delay_becomes_active_then_with_its_open_event(client, session):
    service_id = order(session, pricelist=6)
    assert sim(client, "GET", "clock")["next_due"] == "2026-01-01 00:10:00"

    sim(client, "POST", "clock", advance="9m")
    assert service(client, service_id)["status"] == "ordered"
    assert read_events(session) == []

    sim(client, "POST", "clock", advance="1m")
    view = service(client, service_id)
    assert (view["status"], view["opened"]) == ("active", "2026-01-01 00:10:00")
    assert len(view["ips"]) == 1
    (event,) = read_events(session)
    assert (event["type"], event["date"], event["status"]) == ("open", "2026-01-01 00:10:00", "2")


def test_service_reaching_its_expiry_unpaid_is_suspended_with_its_event(client, session):
    service_id = order(session, remoteid="r-1")
    read_events(session)

    sim(client, "POST", "clock", to="2026-01-31T23:59:59Z")
    assert service(client, service_id)["status"] == "active"
    sim(client, "POST", "clock", advance="1s")

    assert service(client, service_id)["status"] == "suspended"
    (event,) = read_events(session)
    assert (event["type"], event["item"], event["remoteid"]) == ("suspend", str(service_id), "r-1")
    assert event["date"] == "2026-02-01 00:00:00"


def test_automation_runs_in_time_order_within_one_long_advance(client, session):
    first = order(session)
    later = order(session, pricelist=6)

    sim(client, "POST", "clock", advance="40d")

    events = read_events(session)
    assert [(e["type"], int(e["item"]), e["date"]) for e in events] == [
        ("open", first, "2026-01-01 00:00:00"),
        ("open", later, "2026-01-01 00:10:00"),
        ("suspend", first, "2026-02-01 00:00:00"),
        ("suspend", later, "2026-02-01 00:10:00"),
    ]
    assert [int(e["id"]) for e in events] == sorted(int(e["id"]) for e in events)
    assert sim(client, "GET", "clock")["now"] == "2026-02-10 00:00:00"
    assert sim(client, "GET", "clock")["next_due"] is None


def test_prolonged_service_is_not_suspended_at_its_old_expiry(client, session):
    service_id = order(session)
    bill(session, "service.prolong", elid=service_id, period=1, sok="ok")

    sim(client, "POST", "clock", to="2026-02-15T00:00:00Z")
    assert service(client, service_id)["status"] == "active"
    sim(client, "POST", "clock", to="2026-03-01T00:00:00Z")
    assert service(client, service_id)["status"] == "suspended"


# -- seller-side actions ---------------------------------------------------------------------


def test_activate_sets_up_a_manually_set_up_service(client, session):
    service_id = order(session, pricelist=7)
    sim(client, "POST", "clock", advance="1d")
    assert service(client, service_id)["status"] == "ordered"

    act(client, "activate", service=service_id)

    view = service(client, service_id)
    assert (view["status"], view["expires"]) == ("active", "2026-02-02")
    assert len(view["ips"]) == 1
    assert kinds(read_events(session)) == [("open", service_id)]


def test_activate_of_an_active_service_is_refused(client, session):
    service_id = order(session)

    reply = client.post("/_sim/actions/activate", json={"service": service_id})

    assert reply.status_code == 409
    assert reply.json["error"]["type"] == "value"


def test_staff_suspend_resume_and_delete_queue_their_events(client, session):
    service_id = order(session)
    read_events(session)

    act(client, "suspend", service=service_id)
    assert service(client, service_id)["status"] == "suspended"
    act(client, "resume", service=service_id)
    assert service(client, service_id)["status"] == "active"
    act(client, "delete", service=service_id)
    assert service(client, service_id)["status"] == "deleted"

    events = read_events(session)
    assert [(e["type"], e["status"]) for e in events] == [
        ("suspend", "3"),
        ("resume", "2"),
        ("close", "4"),
    ]


@pytest.mark.parametrize("name", ["activate", "suspend", "resume", "delete", "add_ip"])
def test_action_on_an_unknown_service_is_refused_as_missed(client, name):
    reply = client.post(f"/_sim/actions/{name}", json={"service": 4242})

    assert reply.status_code == 409
    assert reply.json["error"]["type"] == "missed"


def test_add_ip_adds_a_new_address_and_queues_its_event(client, session):
    service_id = order(session)
    read_events(session)

    ip = act(client, "add_ip", service=service_id)["ip"]

    ips = service(client, service_id)["ips"]
    assert len(ips) == 2 and ips[-1] == ip
    (event,) = read_events(session)
    assert (event["type"], event["name"], event["value"]) == ("ip_add", "ip", ip)
    assert [e.text for e in event["ips"]] == ips


def test_add_ip_takes_a_given_address(client, session):
    service_id = order(session)

    assert act(client, "add_ip", service=service_id, ip="10.0.0.8") == {"ip": "10.0.0.8"}
    assert service(client, service_id)["ips"][-1] == "10.0.0.8"


def test_add_ip_of_an_address_already_on_the_service_is_refused_as_exists(client, session):
    service_id = order(session)
    ip = service(client, service_id)["ips"][0]
    before = state(client)

    reply = client.post("/_sim/actions/add_ip", json={"service": service_id, "ip": ip})

    assert reply.status_code == 409
    assert (reply.json["error"]["type"], reply.json["error"]["object"]) == ("exists", "ip")
    assert state(client) == before


def test_remove_ip_removes_the_latest_address_or_a_given_one(client, session):
    service_id = order(session)
    first = service(client, service_id)["ips"][0]
    act(client, "add_ip", service=service_id, ip="10.0.0.8")
    act(client, "add_ip", service=service_id, ip="10.0.0.9")
    read_events(session)

    assert act(client, "remove_ip", service=service_id) == {"ip": "10.0.0.9"}
    assert act(client, "remove_ip", service=service_id, ip=first) == {"ip": first}

    assert service(client, service_id)["ips"] == ["10.0.0.8"]
    events = read_events(session)
    assert [(e["type"], e["value"]) for e in events] == [("ip_del", "10.0.0.9"), ("ip_del", first)]


def test_remove_ip_of_an_address_not_on_the_service_is_refused(client, session):
    service_id = order(session)

    reply = client.post("/_sim/actions/remove_ip", json={"service": service_id, "ip": "1.2.3.4"})

    assert reply.status_code == 409
    assert reply.json["error"]["type"] == "value"
    assert len(service(client, service_id)["ips"]) == 1


def test_set_addon_changes_the_value_without_charging_and_queues_its_event(client, session):
    service_id = order(session)
    read_events(session)
    before = balance(client)

    act(client, "set_addon", service=service_id, addon="ram", value=2048)
    act(client, "set_addon", service=service_id, addon="panel", value="ispmanager")
    act(client, "set_addon", service=service_id, addon="backup", value=True)

    assert service(client, service_id)["addons"] == {
        "ram": 2048,
        "panel": "ispmanager",
        "backup": True,
    }
    assert balance(client) == before
    events = read_events(session)
    assert [(e["type"], e["name"], e["value"]) for e in events] == [
        ("addon", "ram", "2048"),
        ("addon", "panel", "1302"),
        ("addon", "backup", "on"),
    ]


def test_set_addon_of_an_addon_the_tariff_lacks_is_refused(client, session):
    service_id = order(session)

    reply = client.post(
        "/_sim/actions/set_addon", json={"service": service_id, "addon": "disk", "value": 5}
    )

    assert reply.status_code == 409
    assert (reply.json["error"]["type"], reply.json["error"]["object"]) == ("value", "addon")


def test_set_param_sets_a_parameter_names_the_service_and_queues_its_event(client, session):
    service_id = order(session)
    read_events(session)

    act(client, "set_param", service=service_id, name="hostname", value="web1")

    assert service(client, service_id)["params"]["hostname"] == "web1"
    assert bill(session, "vds").find("elem").findtext("name") == "web1"
    (event,) = read_events(session)
    assert (event["type"], event["name"], event["value"]) == ("param", "hostname", "web1")


def test_topup_adds_to_the_balance_and_to_the_ledger(client):
    act(client, "topup", account="reseller", amount="50.25")

    assert balance(client) == Decimal("150.25")
    (entry,) = sim(client, "GET", "ledger")["ledger"]
    assert (entry["account"], entry["amount"], entry["reason"]) == ("reseller", "50.25", "topup")


@pytest.mark.parametrize(("amount", "status"), [(0, 409), (-5, 400), ("lots", 400)])
def test_topup_of_a_non_positive_or_bad_amount_is_refused(client, amount, status):
    reply = client.post("/_sim/actions/topup", json={"account": "reseller", "amount": amount})

    assert reply.status_code == status
    assert balance(client) == 100


def test_topup_of_an_unknown_account_is_refused_as_missed(client):
    reply = client.post("/_sim/actions/topup", json={"account": "nobody", "amount": 5})

    assert (reply.status_code, reply.json["error"]["type"]) == (409, "missed")


def test_edit_tariff_replaces_the_keys_given_and_keeps_the_rest(client, session):
    act(client, "edit_tariff", id=5, prices={1: 12, 6: 60}, ostempl=["debian-12"])

    tariff = bill(session, "pricelist.export", pricelist=5).find("pricelist")
    periods = [(p.get("length"), p.get("cost")) for p in tariff.find("price").findall("period")]
    assert periods == [("1", "12"), ("6", "60")]
    ostempl = tariff.find("itemtypeparam").findall("itemtypeparamvalue")
    assert [v.findtext("intname") for v in ostempl] == ["debian-12"]
    assert [a.findtext("intname") for a in tariff.findall("addon")] == ["ram", "backup", "panel"]
    order(session)
    assert balance(client) == 88


def test_a_service_whose_period_its_tariff_no_longer_sells_still_lists_without_a_cost(
    client, session
):
    service_id = order(session, period=3)
    act(client, "edit_tariff", id=5, prices={1: 12})

    rows = bill(session, "vds").findall("elem")
    row = next(r for r in rows if r.findtext("id") == str(service_id))
    assert (row.findtext("period"), row.findtext("cost"), row.findtext("item_cost")) == (
        "3",
        "",
        "",
    )


def test_edit_tariff_keeps_enumeration_item_ids_stable(client, session):
    panel = {"id": 13, "type": "enumeration", "items": {"cpanel": 9, "ispmanager": 6, "none": 0}}

    act(client, "edit_tariff", id=5, addons={"panel": panel})

    tariff = bill(session, "pricelist.export", pricelist=5).find("pricelist")
    items = tariff.find("addon").find("enumeration").findall("enumerationitem")
    assert {i.findtext("intname"): i.findtext("id") for i in items} == {
        "cpanel": "1303",
        "ispmanager": "1302",
        "none": "1301",
    }


def test_edit_tariff_of_an_unknown_tariff_or_with_an_unknown_key_is_refused(client):
    assert client.post("/_sim/actions/edit_tariff", json={"id": 99}).status_code == 409
    reply = client.post("/_sim/actions/edit_tariff", json={"id": 5, "colour": "red"})
    assert reply.status_code == 400
    assert "colour" in reply.json["error"]["msg"]


def test_create_service_buys_a_service_on_the_seller_directly(client, session):
    view = act(client, "create_service", account="reseller", tariff=5, period=1, ip="10.0.0.9")

    assert (view["status"], view["remoteid"], view["ips"]) == ("active", "", ["10.0.0.9"])
    assert view["expires"] == "2026-02-01"
    assert balance(client) == 90
    (entry,) = sim(client, "GET", "ledger")["ledger"]
    assert (entry["reason"], entry["service"]) == ("create_service", view["id"])
    assert Decimal(entry["amount"]) == -10
    assert kinds(read_events(session)) == [("open", view["id"])]
    assert [int(e.findtext("id")) for e in bill(session, "vds").findall("elem")] == [view["id"]]


def test_create_service_sets_up_at_once_even_on_a_tariff_set_up_later(client):
    for tariff in (6, 7):
        view = act(client, "create_service", account="reseller", tariff=tariff)
        assert view["status"] == "active"
    assert sim(client, "POST", "clock", advance="1h")["next_due"] == "2026-02-01 00:00:00"


def test_create_service_names_the_service_by_its_hostname(client):
    view = act(client, "create_service", account="reseller", tariff=5, hostname="web7")

    assert view["name"] == "web7"


def test_create_service_names_the_service_as_told(client, session):
    view = act(client, "create_service", account="reseller", tariff=5, name="web1")

    assert view["name"] == "web1"
    assert bill(session, "vds").find("elem").findtext("name") == "web1"


def test_create_service_without_funds_is_refused_and_changes_nothing(client):
    before = state(client)

    reply = client.post("/_sim/actions/create_service", json={"account": "poor", "tariff": 5})

    assert (reply.status_code, reply.json["error"]["type"]) == (409, "not_enough_money")
    assert state(client) == before


def test_unknown_action_or_missing_argument_is_a_400_naming_it(client):
    reply = client.post("/_sim/actions/reboot", json={"service": 1000})
    assert reply.status_code == 400 and "reboot" in reply.json["error"]["msg"]

    reply = client.post("/_sim/actions/suspend", json={})
    assert reply.status_code == 400 and "service" in reply.json["error"]["msg"]


# -- views: services, accounts, ledger, state, call log --------------------------------------


def test_services_view_lists_and_filters_by_account_and_remoteid(client, session):
    mine = order(session, remoteid="r-1")
    theirs = order(session, "other", remoteid="r-2")

    every = sim(client, "GET", "services")["services"]
    assert [s["id"] for s in every] == [mine, theirs]
    assert [s["id"] for s in sim(client, "GET", "services?account=other")["services"]] == [theirs]
    assert [s["id"] for s in sim(client, "GET", "services?remoteid=r-1")["services"]] == [mine]
    view = service(client, mine)
    assert (view["account"], view["tariff"], view["tariff_intname"]) == ("reseller", 5, "vds-1")
    assert (view["type"], view["period"], view["opened"]) == ("vds", 1, "2026-01-01 00:00:00")


def test_unknown_service_view_is_refused_as_missed(client):
    reply = client.get("/_sim/services/4242")

    assert (reply.status_code, reply.json["error"]["type"]) == (409, "missed")


def test_account_view_shows_balance_level_rights_and_pending_events(client, session):
    order(session, "nosuspend")

    view = sim(client, "GET", "accounts/nosuspend")
    assert Decimal(view.pop("balance")) == 90
    assert view == {
        "login": "nosuspend",
        "currency": "EUR",
        "level": 16,
        "can_suspend": False,
        "pending_events": 1,
        "failed_logins": 0,
    }
    assert sim(client, "GET", "accounts/root")["level"] == 29


def test_ledger_records_every_debit_with_its_reason_and_service(client, session):
    service_id = order(session, period=3)
    bill(session, "service.prolong", elid=service_id, period=1, sok="ok")
    bill(session, "vds.edit", elid=service_id, addon_12="on", sok="ok")
    order(session, "other")

    entries = sim(client, "GET", "ledger?account=reseller")["ledger"]
    assert [(Decimal(e["amount"]), e["reason"], e["service"]) for e in entries] == [
        (-27, "order", service_id),
        (-10, "prolong", service_id),
        (-6, "addon", service_id),
    ]
    assert len(sim(client, "GET", "ledger")["ledger"]) == 4


def test_state_shows_the_whole_seller(client, session):
    service_id = order(session)

    whole = state(client)
    assert whole["now"] == {"__datetime__": "2026-01-01T00:00:00"}
    assert [s["id"] for s in whole["services"]] == [service_id]
    assert {a["login"] for a in whole["accounts"]} == {
        "reseller",
        "other",
        "nosuspend",
        "poor",
        "root",
    }
    assert [e["type"] for e in whole["feeds"]] == ["open"]
    assert len(whole["ledger"]) == 1


def test_call_log_records_each_call_with_passwords_masked(client, session):
    session.post(URL, data={"func": "auth", "username": "reseller", "password": "s3cret"})
    bill(session, "whoami")

    calls = sim(client, "GET", "calls")["calls"]
    assert [(c["func"], c["account"], c["status"], c["result"]) for c in calls] == [
        ("auth", "reseller", 200, "ok"),
        ("whoami", "reseller", 200, "ok"),
    ]
    assert calls[0]["params"]["password"] == "***"
    assert calls[1]["params"]["authinfo"] == "reseller:***"
    assert "s3cret" not in json.dumps(calls)
    assert "<user" in calls[1]["reply"]


def test_call_log_gives_the_last_calls_and_can_be_cleared(client, session):
    for func in ("whoami", "vds", "itemevent"):
        bill(session, func)

    assert [c["func"] for c in sim(client, "GET", "calls?last=2")["calls"]] == ["vds", "itemevent"]
    assert sim(client, "DELETE", "calls") == {"calls": []}
    assert sim(client, "GET", "calls") == {"calls": []}


def test_call_log_names_the_account_of_a_refused_call(client, session):
    bill(session, "vds.order.param", "poor", pricelist=5, period=1, sok="ok", skipbasket="on")

    (call,) = sim(client, "GET", "calls")["calls"]
    assert (call["account"], call["result"]) == ("poor", "not_enough_money")


# -- snapshots -------------------------------------------------------------------------------


def test_snapshot_restores_the_state_it_saved(client, session):
    service_id = order(session, remoteid="r-1", addon_13=1302)
    act(client, "add_ip", service=service_id, ip="10.0.0.8")
    act(client, "edit_tariff", id=5, prices={1: 11, 3: 30})
    add_fault(client, "drop_events", 1)
    sim(client, "POST", "clock", advance="3h")
    saved = state(client)

    assert sim(client, "POST", "snapshot", name="three-hours") == {
        "ok": True,
        "name": "three-hours",
    }
    order(session)
    act(client, "topup", account="other", amount=5)
    sim(client, "POST", "clock", advance="1d")
    assert sim(client, "POST", "restore", name="three-hours") == {
        "ok": True,
        "name": "three-hours",
        "now": "2026-01-01 03:00:00",
    }

    assert state(client) == saved
    assert pending_faults(client) == {"drop_events": 1}


def test_restored_seller_keeps_its_automation_and_ids_going(client, session):
    expiring = order(session)
    later = order(session, pricelist=6)
    sim(client, "POST", "snapshot", name="two-orders")
    sim(client, "POST", "reset")

    sim(client, "POST", "restore", name="two-orders")
    new = order(session)
    sim(client, "POST", "clock", advance="32d")

    assert new == later + 1
    assert [service(client, s)["status"] for s in (expiring, later, new)] == ["suspended"] * 3
    assert kinds(read_events(session)) == [
        ("open", expiring),
        ("open", new),
        ("open", later),
        ("suspend", expiring),
        ("suspend", new),
        ("suspend", later),
    ]


def test_sessions_do_not_survive_a_restore(client, session):
    reply = session.post(URL, data={"func": "auth", "username": "reseller", "password": "s3cret"})
    sid = ET.fromstring(reply.content).find("auth").get("id")
    sim(client, "POST", "snapshot", name="logged-in")

    sim(client, "POST", "restore", name="logged-in")

    doc = ET.fromstring(session.post(URL, data={"func": "whoami", "auth": sid}).content)
    assert doc.find("error").get("type") == "auth"


# -- faults: list, add, clear ----------------------------------------------------------------


def test_faults_are_queued_listed_and_cleared(client):
    add_fault(client, "down", 2)
    add_fault(client, "down", 1)
    reply = add_fault(client, "reorder_events", 1)

    assert reply["pending"] == {"down": 3, "reorder_events": 1}
    assert pending_faults(client) == {"down": 3, "reorder_events": 1}
    assert sim(client, "DELETE", "faults")["pending"] == {}
    assert pending_faults(client) == {}


@pytest.mark.parametrize(
    "body",
    [{"kind": "flood", "times": 1}, {"kind": "down", "times": -1}, {"kind": "down", "times": "2"}],
)
def test_a_bad_fault_is_refused_with_400(client, body):
    assert client.post("/_sim/faults", json=body).status_code == 400
    assert pending_faults(client) == {}


@pytest.mark.parametrize("kind", ["down", "error", "slow", "lose_reply", "drop_events"])
def test_fault_with_times_zero_is_a_no_op(client, session, kind):
    add_fault(client, kind, 0)

    assert pending_faults(client) == {}
    service_id = order(session)
    assert kinds(read_events(session)) == [("open", service_id)]
    assert sim(client, "GET", "faults")["used"][kind] == 0


def test_faults_never_touch_the_control_api(client):
    add_fault(client, "down", 1)
    add_fault(client, "error", 1)

    sim(client, "GET", "services")
    sim(client, "POST", "clock", advance="1m")
    act(client, "topup", account="reseller", amount=1)

    assert pending_faults(client) == {"down": 1, "error": 1}


# -- faults: down, error, slow ---------------------------------------------------------------


def test_down_refuses_the_connection_for_as_many_calls_as_its_times(client, session):
    add_fault(client, "down", 2)

    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            bill(session, "whoami")
    assert bill(session, "whoami").find("user").get("name") == "reseller"
    assert sim(client, "GET", "faults")["used"]["down"] == 2


@pytest.mark.parametrize(
    "params",
    [
        {"func": "pricelist.export"},
        {"func": "auth", "username": "reseller", "password": "s3cret"},
        {"func": "auth", "username": "reseller", "password": "wrong"},
        {"func": "whoami", "authinfo": "reseller:wrong"},
        {"func": "vds.reboot", "authinfo": "reseller:s3cret"},
        {"func": "", "authinfo": "reseller:s3cret"},
        {"func": "vds", "authinfo": "reseller:s3cret"},
    ],
)
def test_down_counts_any_call_even_one_that_would_be_refused(client, session, params):
    add_fault(client, "down", 1)

    with pytest.raises(requests.ConnectionError):
        session.post(URL, data=params)

    assert pending_faults(client) == {}


def test_down_on_an_order_places_nothing(client, session):
    add_fault(client, "down", 1)
    before = state(client)

    with pytest.raises(requests.ConnectionError):
        order(session)

    assert state(client) | {"faults": None} == before | {"faults": None}


def test_error_answers_500_and_does_nothing(client, session):
    add_fault(client, "error", 1)
    before = state(client)

    reply = session.post(
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

    assert reply.status_code == 500
    assert state(client) | {"faults": None} == before | {"faults": None}
    assert pending_faults(client) == {}
    assert order(session) == 1000


def test_slow_times_out_and_does_nothing(client, session):
    service_id = order(session)
    add_fault(client, "slow", 1)
    before = state(client)

    with pytest.raises(requests.ReadTimeout):
        bill(session, "vds.suspend", elid=service_id)

    assert state(client) | {"faults": None} == before | {"faults": None}
    assert service(client, service_id)["status"] == "active"


def test_itemevent_read_that_fails_leaves_the_events_on_the_feed(client, session):
    service_id = order(session)
    add_fault(client, "down", 1)
    add_fault(client, "error", 1)
    add_fault(client, "slow", 1)

    with pytest.raises(requests.ConnectionError):
        read_events(session)
    with pytest.raises(requests.HTTPError):
        read_events(session)
    with pytest.raises(requests.ReadTimeout):
        read_events(session)

    assert kinds(read_events(session)) == [("open", service_id)]


# -- faults: lose_reply ----------------------------------------------------------------------


def test_lose_reply_places_the_order_and_loses_the_reply(client, session):
    add_fault(client, "lose_reply", 1)

    with pytest.raises(requests.ConnectionError):
        order(session, remoteid="r-5")

    (placed,) = sim(client, "GET", "services?remoteid=r-5")["services"]
    assert placed["status"] == "active"
    assert balance(client) == 90
    assert kinds(read_events(session)) == [("open", placed["id"])]
    assert pending_faults(client) == {}


@pytest.mark.parametrize(
    ("func", "params", "took_effect"),
    [
        ("vds.suspend", {}, lambda view: view["status"] == "suspended"),
        ("vds.delete", {"sok": "ok"}, lambda view: view["status"] == "deleted"),
        ("vds.edit", {"sok": "ok", "addon_11": 2048}, lambda view: view["addons"]["ram"] == 2048),
        ("service.prolong", {"sok": "ok", "period": 1}, lambda v: v["expires"] == "2026-03-01"),
    ],
)
def test_lose_reply_counts_each_state_changing_call_which_still_takes_effect(
    client, session, func, params, took_effect
):
    service_id = order(session)
    add_fault(client, "lose_reply", 1)

    with pytest.raises(requests.ConnectionError):
        bill(session, func, elid=service_id, **params)

    assert took_effect(service(client, service_id))
    assert pending_faults(client) == {}


def test_lose_reply_counts_a_resume(client, session):
    service_id = order(session)
    bill(session, "vds.suspend", elid=service_id)
    add_fault(client, "lose_reply", 1)

    with pytest.raises(requests.ConnectionError):
        bill(session, "vds.resume", elid=service_id)

    assert service(client, service_id)["status"] == "active"


def test_lose_reply_is_not_used_by_calls_that_change_nothing(client, session):
    service_id = order(session)
    add_fault(client, "lose_reply", 1)

    session.post(URL, data={"func": "auth", "username": "reseller", "password": "s3cret"})
    bill(session, "whoami")
    bill(session, "pricelist.export")
    bill(session, "vds")
    bill(session, "vds.order.param", pricelist=5)
    bill(session, "vds.edit", elid=service_id)
    bill(session, "service.prolong", elid=service_id)
    bill(session, "service.ip", elid=service_id)
    bill(session, "itemevent")

    assert pending_faults(client) == {"lose_reply": 1}


def test_lose_reply_is_not_used_by_a_refused_call_whose_refusal_arrives(client, session):
    add_fault(client, "lose_reply", 1)

    doc = bill(session, "vds.order.param", "poor", pricelist=5, period=1, sok="ok", skipbasket="on")

    assert doc.find("error").get("type") == "not_enough_money"
    assert pending_faults(client) == {"lose_reply": 1}


def test_call_faults_in_force_together_are_tried_down_error_slow_then_lose_reply(client, session):
    for kind in ("lose_reply", "slow", "error", "down"):
        add_fault(client, kind, 1)

    with pytest.raises(requests.ConnectionError):
        order(session)
    with pytest.raises(requests.HTTPError):
        order(session)
    with pytest.raises(requests.ReadTimeout):
        order(session)
    with pytest.raises(requests.ConnectionError):
        order(session)
    order(session)

    results = [c["result"] for c in sim(client, "GET", "calls")["calls"]]
    assert results == ["down", "error", "slow", "lose_reply", "ok"]
    assert len(sim(client, "GET", "services")["services"]) == 2


def test_a_read_with_down_and_lose_reply_in_force_uses_only_down(client, session):
    add_fault(client, "lose_reply", 1)
    add_fault(client, "down", 1)

    with pytest.raises(requests.ConnectionError):
        bill(session, "whoami")
    bill(session, "whoami")

    assert pending_faults(client) == {"lose_reply": 1}


# -- faults on the event feed ----------------------------------------------------------------


def make_events(client, session, count: int) -> list[int]:
    """Queue `count` events on the reseller's feed; their service ids in order."""
    service_id = order(session)
    for n in range(count - 1):
        act(client, "set_param", service=service_id, name=f"p{n}", value=str(n))
    return [service_id] * count


def test_drop_events_loses_one_reads_events_for_good(client, session):
    add_fault(client, "drop_events", 1)
    make_events(client, session, 2)

    assert read_events(session) == []
    assert pending_faults(client) == {}
    assert read_events(session) == []
    act(client, "topup", account="reseller", amount=1)
    act(client, "add_ip", service=1000, ip="10.0.0.8")
    assert [e["type"] for e in read_events(session)] == ["ip_add"]


@pytest.mark.parametrize("kind", ["drop_events", "duplicate_events", "reorder_events"])
def test_an_empty_read_uses_up_no_feed_fault(client, session, kind):
    add_fault(client, kind, 1)

    assert read_events(session) == []
    assert read_events(session, "other") == []
    assert pending_faults(client) == {kind: 1}


def test_feed_faults_are_not_used_by_other_calls(client, session):
    add_fault(client, "duplicate_events", 1)

    order(session)
    bill(session, "vds")

    assert pending_faults(client) == {"duplicate_events": 1}


def test_duplicate_events_delivers_each_event_of_one_read_twice(client, session):
    add_fault(client, "duplicate_events", 1)
    make_events(client, session, 3)

    ids = [int(e["id"]) for e in read_events(session)]
    assert ids == [1, 1, 2, 2, 3, 3]
    make_events(client, session, 1)
    assert [int(e["id"]) for e in read_events(session)] == [4]


def test_reorder_events_delivers_one_reads_events_shuffled(client, session):
    add_fault(client, "reorder_events", 1)
    make_events(client, session, 6)

    ids = [int(e["id"]) for e in read_events(session)]
    assert sorted(ids) == [1, 2, 3, 4, 5, 6]
    assert ids != sorted(ids)
    assert pending_faults(client) == {}


def test_feed_faults_in_force_together_all_apply_to_the_same_read(client, session):
    add_fault(client, "duplicate_events", 1)
    add_fault(client, "reorder_events", 2)
    make_events(client, session, 4)

    ids = [int(e["id"]) for e in read_events(session)]

    assert sorted(ids) == [1, 1, 2, 2, 3, 3, 4, 4]
    assert ids != sorted(ids)
    assert pending_faults(client) == {"reorder_events": 1}


def test_drop_events_with_other_feed_faults_drops_the_read_and_uses_them_all(client, session):
    for kind in ("drop_events", "duplicate_events", "reorder_events"):
        add_fault(client, kind, 1)
    make_events(client, session, 2)

    assert read_events(session) == []
    assert pending_faults(client) == {}


def test_feed_faults_count_reads_per_call_not_per_account(client, session):
    add_fault(client, "drop_events", 1)
    order(session, "other")
    order(session)

    assert read_events(session, "other") == []
    assert len(read_events(session)) == 1


# -- faults aimed at a function or an account ------------------------------------------------


def aim(client, kind: str, times: int = 1, **aimed) -> dict:
    return sim(client, "POST", "faults", kind=kind, times=times, **aimed)


def test_a_fault_aimed_at_a_function_leaves_every_other_call_alone(client, session):
    aim(client, "down", func="service.prolong")

    service_id = order(session)
    bill(session, "whoami")
    with pytest.raises(requests.ConnectionError):
        bill(session, "service.prolong", elid=service_id, period=1, sok="ok")

    assert pending_faults(client) == {}
    assert service(client, service_id)["expires"] == "2026-02-01"


def test_a_function_pattern_matches_any_run_of_characters(client, session):
    aim(client, "error", 2, func="*.order.param")

    bill(session, "pricelist.export")
    for _ in range(2):
        with pytest.raises(requests.HTTPError):
            order(session)
    order(session)

    assert sim(client, "GET", "faults")["used"]["error"] == 2


def test_a_fault_aimed_at_an_account_hits_only_that_accounts_calls(client, session):
    aim(client, "down", account="other")

    bill(session, "whoami")  # reseller's
    with pytest.raises(requests.ConnectionError):
        bill(session, "whoami", user="other")
    bill(session, "whoami", user="other")


def test_an_account_fault_also_meets_calls_in_that_accounts_session(client, session):
    reply = session.post(URL, data={"func": "auth", "username": "other", "password": "other-pw"})
    sid = ET.fromstring(reply.content).find("auth").get("id")
    aim(client, "down", account="other", func="whoami")

    with pytest.raises(requests.ConnectionError):
        session.post(URL, data={"func": "whoami", "auth": sid})


def test_each_fault_step_keeps_its_own_count_and_the_oldest_goes_first(client, session):
    first = aim(client, "down", 1, func="whoami")["faults"][0]
    aim(client, "down", 2)

    with pytest.raises(requests.ConnectionError):
        bill(session, "whoami")  # both aim at it: the older one is used up
    queued = sim(client, "GET", "faults")["faults"]
    assert [(f["func"], f["times"]) for f in queued] == [(None, 2)]
    assert first["id"] not in [f["id"] for f in queued]


def test_kinds_are_tried_in_order_down_error_slow_lose_reply(client, session):
    aim(client, "lose_reply", func="vds.order.param")
    aim(client, "error", func="vds.order.param")

    with pytest.raises(requests.HTTPError):
        order(session)  # error wins; nothing ordered
    assert sim(client, "GET", "services")["services"] == []
    with pytest.raises(requests.ConnectionError):
        order(session)  # now the lost reply: ordered
    assert len(sim(client, "GET", "services")["services"]) == 1


def test_lose_reply_aimed_at_the_feed_counts_empty_reads_and_loses_the_events(client, session):
    aim(client, "lose_reply", 2, func="itemevent")

    with pytest.raises(requests.ConnectionError):
        read_events(session)  # empty, yet it counts
    order(session)
    with pytest.raises(requests.ConnectionError):
        read_events(session)  # the open event handed over and forgotten
    assert read_events(session) == []
    assert sim(client, "GET", "faults")["used"]["lose_reply"] == 2


def test_lose_reply_not_aimed_at_the_feed_leaves_its_reads_alone(client, session):
    aim(client, "lose_reply")
    bought = act(client, "create_service", account="reseller", tariff=5)["id"]

    assert kinds(read_events(session)) == [("open", bought)]
    assert read_events(session) == []
    assert pending_faults(client) == {"lose_reply": 1}


def test_feed_faults_aimed_at_an_account_shape_only_its_reads(client, session):
    aim(client, "drop_events", account="other")
    mine = order(session)
    order(session, user="other")

    assert kinds(read_events(session)) == [("open", mine)]
    assert read_events(session, user="other") == []
    assert pending_faults(client) == {}


@pytest.mark.parametrize(
    "body, key",
    [
        ({"kind": "drop_events", "times": 1, "func": "vds"}, "func"),
        ({"kind": "down", "times": 1, "func": ""}, "func"),
        ({"kind": "down", "times": 1, "account": ["x"]}, "account"),
    ],
)
def test_a_badly_aimed_fault_is_refused_naming_the_key(client, body, key):
    reply = client.post("/_sim/faults", json=body)

    assert reply.status_code == 400
    assert reply.json["error"]["msg"].startswith(f"{key}:")
    assert pending_faults(client) == {}


def test_aimed_faults_survive_a_snapshot(client):
    aim(client, "slow", 3, func="vds.*", account="other")
    sim(client, "POST", "snapshot", name="aimed")
    sim(client, "DELETE", "faults")

    sim(client, "POST", "restore", name="aimed")

    (fault,) = sim(client, "GET", "faults")["faults"]
    assert (fault["kind"], fault["times"], fault["func"], fault["account"]) == (
        "slow",
        3,
        "vds.*",
        "other",
    )
