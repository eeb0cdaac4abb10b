"""Software licences: the key a licence gets at set-up, a new key on request, saving its fields."""

from __future__ import annotations

import re

import pytest

from tests.replies import nothing_changes, seller_service

KEY = re.compile(r"^[0-9A-F]{4}(-[0-9A-F]{4}){7}$")
LICENCE = {"pricelist": 9, "period": 1, "sok": "ok", "skipbasket": "on"}


@pytest.fixture
def world(world):
    world["tariffs"][9] = {
        "intname": "isp-lite",
        "name": "ISP Lite",
        "type": "soft",
        "prices": {1: 5},
    }
    world["tariffs"][10] = {
        "intname": "isp-pro",
        "name": "ISP Pro",
        "type": "soft",
        "prices": {1: 9},
        "setup": "manual",
    }
    return world


@pytest.fixture
def licence(api):
    """Order a licence for licname `shop` on 10.0.0.5; its id."""

    def place(**params) -> str:
        doc = api("soft.order.param", **{**LICENCE, "licname": "shop", "ip": "10.0.0.5", **params})
        assert not doc.has("error"), doc.error()
        return doc["id"]

    return place


def test_the_licence_form_shows_key_name_and_ip_as_fields_of_their_own(api, licence):
    form = api("soft.edit", elid=licence())

    assert KEY.match(form["lickey"])
    assert (form["licname"], form["ip"]) == ("shop", "10.0.0.5")
    assert (form["pricelist_name"], form["status"]) == ("ISP Lite", "2")
    assert (form["createdate"], form["expiredate"]) == ("2026-01-01", "2026-02-01")


def test_a_licence_set_up_by_hand_has_no_key_until_the_seller_sets_it_up(api, client, licence):
    service = licence(pricelist=10)

    assert api("soft.edit", elid=service)["lickey"] == ""
    client.post("/_sim/actions/activate", json={"service": int(service)})
    assert KEY.match(api("soft.edit", elid=service)["lickey"])


def test_newkey_issues_another_key_and_answers_it(api, licence):
    service = licence()
    old = api("soft.edit", elid=service)["lickey"]

    doc = api("soft.edit", elid=service, clicked_button="newkey", sok="ok")

    assert doc.has("ok")
    assert KEY.match(doc["lickey"]) and doc["lickey"] != old
    assert api("soft.edit", elid=service)["lickey"] == doc["lickey"]


def test_a_new_key_is_reported_on_the_feed(api, licence):
    service = licence()
    api("itemevent")

    key = api("soft.edit", elid=service, clicked_button="newkey", sok="ok")["lickey"]

    (event,) = api("itemevent").all("elem")
    assert (event["type"], event["name"], event["value"]) == ("param", "lickey", key)


def test_saving_the_licence_keeps_its_new_name_ip_and_remoteid(api, client, licence):
    service = licence()
    api("itemevent")

    doc = api("soft.edit", elid=service, licname="blog", ip="10.0.0.9", remoteid="l42", sok="ok")

    assert doc.has("ok")
    form = api("soft.edit", elid=service)
    assert (form["licname"], form["ip"], form["remoteid"]) == ("blog", "10.0.0.9", "l42")
    assert [r["id"] for r in api("soft", remoteid="l42").all("elem")] == [service]
    changed = {(e["name"], e["value"]) for e in api("itemevent").all("elem")}
    assert changed == {("licname", "blog"), ("ip", "10.0.0.9")}
    assert seller_service(client, service)["remoteid"] == "l42"


def test_a_deleted_licence_cannot_get_a_new_key(api, client, licence):
    service = licence()
    api("soft.delete", elid=service, sok="ok")

    with nothing_changes(client):
        doc = api("soft.edit", elid=service, clicked_button="newkey", sok="ok")

    assert doc.error()[:2] == ("value", "elid")


def test_the_engine_reads_a_licences_name_and_ip_as_its_parameters(session, licence):
    from reseller.client import SellerClient

    service = int(licence())
    seller = SellerClient("http://simulator", "reseller", "s3cret", session)

    (listed,) = seller.services("soft")
    full = seller.service("soft", service)

    for remote in (listed, full):
        assert (remote.params["licname"], remote.params["ip"]) == ("shop", "10.0.0.5")
        assert remote.ips == []
