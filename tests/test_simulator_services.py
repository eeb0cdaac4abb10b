"""A client's services beyond ordering: list columns and paging, reinstall, reboot, passwords,
tariff changes, instructions, tickets, and `<ok/>` after every action."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

import simulator.functions.services as rows_kept
from simulator.model import SellerError, period_end
from tests.replies import balance, ledger, nothing_changes, seller_service

ORIGINAL = rows_kept.row_xml


@pytest.fixture
def world(world):
    world["tariffs"][11] = {
        "intname": "vds-2",
        "name": "VDS-2",
        "type": "vds",
        "prices": {1: 20, 3: 54},
        "ostempl": ["debian-12"],
    }
    world["tariffs"][12] = {"intname": "dns-1", "type": "dnshost", "prices": {1: 1}}
    return world


# -- list columns and paging -------------------------------------------------------------------


def test_a_service_row_has_cost_datacenter_autoprolong_and_status_columns(api, order):
    order(period=3)

    row = api("vds").one("elem")
    assert row["cost"] == "9.00 EUR / month"
    assert (row["datacentername"], row["autoprolong"], row["status_msg"]) == (
        "Datacenter 1",
        "off",
        "Active",
    )
    assert (row["item_status"], row.one("item_status").attr("color")) == ("2", "green")


@pytest.mark.parametrize(("action", "color"), [("suspend", "red"), ("delete", "gray")])
def test_item_status_color_follows_the_status(api, order, action, color):
    api(f"vds.{action}", elid=order())

    assert api("vds").one("elem").one("item_status").attr("color") == color


def _renamed_tariff(api, client, seller, service):
    client.post("/_sim/actions/edit_tariff", json={"id": 5, "name": "VDS-1 renamed"})


def _new_hostname(api, client, seller, service):  # as a snapshot or the staff may
    seller.services[int(service)].params["hostname"] = "renamed.example"


def _new_address(api, client, seller, service):
    seller.services[int(service)].ips[:] = ["10.9.8.7"]


CHANGES = {
    "status": (lambda api, client, seller, service: api("vds.suspend", elid=service), "3"),
    "expiredate": (
        lambda api, client, seller, service: api(
            "service.prolong", elid=service, period=1, sok="ok"
        ),
        "2026-03-01",
    ),
    "autoprolong": (
        lambda api, client, seller, service: api("vds.edit", elid=service, autoprolong=1, sok="ok"),
        "1",
    ),
    "cost": (
        lambda api, client, seller, service: api("vds.edit", elid=service, addon_12="on", sok="ok"),
        "12.00 EUR / month",
    ),
    "ostempl": (
        lambda api, client, seller, service: api(
            "vds.edit", elid=service, ostempl="centos-7", sok="ok"
        ),
        "centos-7",
    ),
    "pricelist": (_renamed_tariff, "VDS-1 renamed"),
    "name": (_new_hostname, "renamed.example"),
    "ip": (_new_address, "10.9.8.7"),
}


@pytest.mark.parametrize("column", CHANGES)
def test_a_list_read_again_shows_a_change_to_its_service_since(api, client, order, seller, column):
    service = order()
    change, shown = CHANGES[column]
    before = api("vds").one("elem")[column]  # read once: its row as it was is kept

    change(api, client, seller, service)

    assert before != shown
    assert api("vds").one("elem")[column] == shown


@pytest.mark.parametrize("out", ["xml"])  # the rows kept are XML
def test_a_list_read_after_one_of_its_services_changed_writes_that_row_anew_and_no_other(
    api, order, monkeypatch
):
    services = [order() for _ in range(3)]
    monkeypatch.setattr(rows_kept, "WRITTEN_ROWS_KEPT", 4)
    api("vds")  # every row written and kept
    written = []
    monkeypatch.setattr(rows_kept, "row_xml", lambda row: written.append(row) or ORIGINAL(row))

    for _ in range(4):
        api("service.prolong", elid=services[0], period=1, sok="ok")
        api("vds")

    assert [dict((c[0], c[1]) for c in row)["id"] for row in written] == [services[0]] * 4


@pytest.mark.parametrize("out", ["xml"])  # the rows kept are XML
def test_a_list_shows_a_change_made_in_place_to_a_param_a_snapshot_gave_as_a_list(
    api, order, seller
):
    params = seller.services[int(order())].params
    params["ostempl"] = ["debian-12"]
    api("vds")

    params["ostempl"][0] = "centos-7"

    assert api("vds").one("elem")["ostempl"] == "['centos-7']"


def test_an_unpaged_list_is_whole_and_its_metadata_says_so(api, order):
    for _ in range(3):
        order()

    doc = api("vds")

    assert len(doc.all("elem")) == 3
    assert (doc["p_elems"], doc["p_num"], doc["p_cnt"]) == ("3", "1", "3")


def test_p_cnt_and_p_num_page_the_list(api, order):
    ids = [order() for _ in range(5)]

    page = api("vds", p_cnt=2, p_num=2)

    assert [r["id"] for r in page.all("elem")] == ids[2:4]
    assert (page["p_elems"], page["p_num"], page["p_cnt"]) == ("5", "2", "2")
    assert [r["id"] for r in api("vds", p_cnt=2).all("elem")] == ids[:2]
    assert [r["id"] for r in api("vds", p_cnt=2, p_num=3).all("elem")] == ids[4:]
    assert api("vds", p_cnt=2, p_num=9).all("elem") == []


@pytest.mark.parametrize(("name", "value"), [("p_cnt", "0"), ("p_num", "-1"), ("p_cnt", "ten")])
def test_a_bad_page_is_refused_naming_it(api, order, name, value):
    order()

    assert api("vds", **{name: value}).error()[:2] == ("value", name)


def test_a_paged_read_of_the_feed_takes_only_its_page_off_the_feed(api, order):
    for _ in range(3):
        order()

    first = api("itemevent", p_cnt=2)
    rest = api("itemevent")

    assert len(first.all("elem")) == 2 and first["p_elems"] == "3"
    assert len(rest.all("elem")) == 1
    assert api("itemevent").all("elem") == []


def test_service_ip_lists_each_address_with_its_gateway(api, order):
    (row,) = api("service.ip", elid=order()).all("elem")

    assert row["gateway"] == row["ip"].rsplit(".", 1)[0] + ".1"


# -- reinstall, reboot, passwords --------------------------------------------------------------


def test_editing_with_another_template_reinstalls_the_server(api, client, order):
    service = order()
    api("service.changepassword", elid=service, passwd="old-pw", confirm="old-pw", sok="ok")
    api("itemevent")

    doc = api("vds.edit", elid=service, ostempl="centos-7", sok="ok")

    assert doc.has("ok")
    assert seller_service(client, service)["params"]["ostempl"] == "centos-7"
    (event,) = api("itemevent").all("elem")
    assert (event["type"], event["name"], event["value"]) == ("param", "ostempl", "centos-7")
    body = api("service.instruction.html", elid=service)["body"]
    assert "old-pw" not in body and "Password" in body


def test_editing_with_the_same_template_reinstalls_nothing(api, order):
    service = order()
    api("itemevent")

    api("vds.edit", elid=service, ostempl="debian-12", sok="ok")

    assert api("itemevent").all("elem") == []


@pytest.mark.parametrize(
    ("ostempl", "suspend", "error"),
    [("windows", False, ("value", "ostempl")), ("centos-7", True, ("value", "elid"))],
)
def test_a_reinstall_that_cannot_be_done_changes_nothing(
    api, client, order, ostempl, suspend, error
):
    service = order()
    if suspend:
        api("vds.suspend", elid=service)

    with nothing_changes(client):
        doc = api("vds.edit", elid=service, ostempl=ostempl, addon_12="on", sok="ok")

    assert doc.error()[:2] == error


def test_reboot_answers_ok_for_a_running_server_and_changes_nothing(api, client, order):
    service = order()

    with nothing_changes(client):
        doc = api("vds.reboot", elid=service, sok="ok")
        hard = api("service.hardreboot", elid=service)

    assert doc.has("ok") and hard.has("ok")


def test_reboot_of_a_suspended_server_is_refused(api, order):
    service = order()
    api("vds.suspend", elid=service)

    assert api("vds.reboot", elid=service).error()[:2] == ("value", "elid")


@pytest.mark.parametrize("func", ["service.changepassword", "service.set_password"])
def test_changing_the_password_sets_the_servers_root_password(api, order, func):
    service = order()

    doc = api(func, elid=service, passwd="n3w-pass", confirm="n3w-pass", sok="ok")

    assert doc.has("ok")
    assert "n3w-pass" in api("service.instruction.html", elid=service)["body"]


def test_a_password_and_a_different_confirmation_are_refused(api, client, order):
    service = order()

    with nothing_changes(client):
        doc = api("service.changepassword", elid=service, passwd="a", confirm="b", sok="ok")

    assert doc.error()[:2] == ("value", "confirm")


def test_a_password_change_without_a_password_is_refused_as_missed(api, order):
    doc = api("service.changepassword", elid=order(), sok="ok")

    assert doc.error()[:2] == ("missed", "passwd")


def test_instructions_come_as_html_in_body(api, order):
    body = api("service.instruction.html", elid=order())["body"]

    assert body.startswith("<p>") and "<ul>" in body and "203.0." in body


# -- changing tariff ---------------------------------------------------------------------------


def test_a_tariff_change_charges_the_difference_for_the_time_left(api, client, order):
    service = order()  # 10 for January
    client.post("/_sim/clock", json={"to": "2026-01-16T12:00:00Z"})  # half of it is left

    doc = api("service.changepricelist", elid=service, pricelist=11, sok="ok")

    assert doc.has("ok")
    assert Decimal(doc["amount"]) == Decimal("5.00")
    assert balance(client) == Decimal("85.00")
    assert ledger(client)[-1]["reason"] == "changepricelist"
    changed = seller_service(client, service)
    assert (changed["tariff"], changed["expires"]) == (11, "2026-02-01")
    assert api("vds").one("elem")["pricelist"] == "VDS-2"


def test_a_tariff_change_to_a_cheaper_tariff_charges_and_refunds_nothing(api, client, order):
    service = api("vds.order.param", pricelist=11, period=1, sok="ok", skipbasket="on")["id"]

    api("service.changepricelist", elid=service, pricelist=5, sok="ok")

    assert balance(client) == 80
    assert seller_service(client, service)["tariff"] == 5


def test_a_tariff_change_keeps_the_addons_the_new_tariff_has(api, client, order):
    service = order(addon_11=2048)
    client.post(
        "/_sim/actions/edit_tariff",
        json={"id": 11, "addons": {"ram": {"id": 21, "type": "integer", "max": 4096}}},
    )

    api("service.changepricelist", elid=service, pricelist=11, sok="ok")

    assert seller_service(client, service)["addons"] == {"ram": 2048}


def test_the_next_prolongation_is_at_the_new_tariffs_price(api, client, order):
    service = order()
    api("service.changepricelist", elid=service, pricelist=11, sok="ok")
    before = balance(client)

    api("service.prolong", elid=service, period=1, sok="ok")

    assert before - balance(client) == 20


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"pricelist": 8}, ("value", "pricelist")),
        ({"pricelist": 5}, ("value", "pricelist")),
        ({"pricelist": 11, "period": 12}, ("value", "period")),
        ({"pricelist": ""}, ("missed", "pricelist")),
    ],
)
def test_a_tariff_change_that_cannot_be_made_changes_nothing(api, client, order, params, error):
    service = order()

    with nothing_changes(client):
        doc = api("service.changepricelist", elid=service, sok="ok", **params)

    assert doc.error()[:2] == error


def test_a_tariff_change_the_balance_cannot_pay_changes_nothing(api, client, order):
    client.post("/_sim/actions/topup", json={"account": "poor", "amount": 10})
    service = order("poor")  # leaves 5; VDS-2 costs 10 more for the whole month left

    with nothing_changes(client):
        doc = api("service.changepricelist", "poor", elid=service, pricelist=11, sok="ok")

    assert doc.error()[0] == "not_enough_money"


def test_the_tariff_change_form_offers_the_tariffs_of_the_services_type(api, order):
    form = api("service.changepricelist", elid=order())

    assert form.slist("pricelist") == ["5", "6", "7", "11"]


# -- tickets and DNS hosting -------------------------------------------------------------------


def test_a_ticket_opened_appears_in_the_ticket_list(api):
    doc = api("ticket.edit", subject="Slow disk", message="It is slow", sok="ok")

    assert doc.has("ok")
    (row,) = api("ticket").all("elem")
    assert (row["id"], row["subject"], row["status"]) == (doc["id"], "Slow disk", "open")
    assert api("ticket", "other").all("elem") == []


def test_a_ticket_needs_a_subject(api, client):
    with nothing_changes(client):
        doc = api("ticket.edit", message="?", sok="ok")

    assert doc.error()[:2] == ("missed", "subject")


def test_dns_hosting_is_listed_and_its_form_gives_the_panel_login(api):
    doc = api("dnshost.order.param", pricelist=12, period=1, sok="ok", skipbasket="on")

    (row,) = api("dnshost").all("elem")
    form = api("dnshost.edit", elid=doc["id"])
    assert row["id"] == doc["id"]
    assert form["username"] == f"user{doc['id']}" and len(form["password"]) >= 8


# -- ok ----------------------------------------------------------------------------------------

SOK_CALLS = [
    ("vds.edit", {"addon_12": "on"}),
    ("service.prolong", {"period": 1}),
    ("service.changepassword", {"passwd": "x1", "confirm": "x1"}),
    ("service.changepricelist", {"pricelist": 11}),
    ("vds.reboot", {}),
    ("vds.suspend", {}),
    ("vds.delete", {}),
]


@pytest.mark.parametrize(("func", "params"), SOK_CALLS)
def test_every_successful_sok_reply_says_ok(api, order, func, params):
    doc = api(func, elid=order(), sok="ok", **params)

    assert doc.has("ok") and not doc.has("error")


def test_a_refused_sok_call_has_no_ok(api, order):
    doc = api("service.prolong", elid=order(), period=6, sok="ok")

    assert doc.has("error") and not doc.has("ok")


def test_prolongation_gives_the_new_expiry_in_a_nested_doc_after_ok(api, order):
    doc = api("service.prolong", elid=order(), period=1, sok="ok")

    assert doc.has("ok")
    assert doc.one("doc")["newexpiredate"] == "2026-03-01"


@pytest.mark.parametrize("func", ["whoami", "vds", "order", "pricelist.export"])
def test_a_function_that_only_shows_says_ok_too_when_sent_sok(api, func):
    doc = api(func, sok="ok")

    assert doc.has("ok") and not doc.has("error")


def test_a_service_is_found_by_its_account_and_its_current_remoteid_only(seller):
    reseller, other = seller.accounts["reseller"], seller.accounts["other"]
    first = seller.order(reseller, "vds", 5, 1, remoteid="a")
    seller.order(other, "vds", 5, 1, remoteid="a")
    second = seller.order(reseller, "vhost", 8, 1, remoteid="b")
    assert seller.services_of(reseller) == [first, second]
    assert seller.services_of(reseller, "vds", "a") == [first]
    seller.set_remoteid(first, "c")
    assert seller.services_of(reseller, remoteid="a") == []
    assert seller.services_of(reseller, remoteid="c") == [first]
    del seller.services[first.id]
    assert seller.services_of(reseller) == [second]
    assert seller.services_of(reseller, remoteid="c") == []


@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
    st.integers(min_value=1, max_value=200_000),
)
def test_a_period_of_months_ends_where_dateutil_counts_the_calendar_months(start, months):
    try:
        expected = start + relativedelta(months=months)
    except ValueError:  # past 9999-12-31
        with pytest.raises(SellerError):
            period_end(start, months)
        return
    assert period_end(start, months) == expected


def test_a_month_from_the_31st_ends_on_the_last_day_of_a_shorter_month():
    assert period_end(datetime(2024, 1, 31, 12), 1) == datetime(2024, 2, 29, 12)
    assert period_end(datetime(2026, 1, 31), 1) == datetime(2026, 2, 28)
    assert period_end(datetime(2026, 3, 31), 3) == datetime(2026, 6, 30)


def test_services_of_one_tariff_with_other_add_ons_each_list_their_own_cost(api, order):
    plain, bigger = order(), order(addon_11=2048, remoteid="big")

    costs = {row["id"]: row["item_cost"] for row in api("vds").all("elem")}

    assert costs[plain] != costs[bigger]
    assert costs[bigger] == api("vds", remoteid="big").one("elem")["item_cost"]


def test_a_list_shows_a_tariffs_new_price_on_the_next_call(api, order, seller):
    order()
    assert api("vds").one("elem")["cost"] == "10.00 EUR / month"

    seller.tariffs[5].prices[1] = Decimal(12)

    assert api("vds").one("elem")["cost"] == "12.00 EUR / month"
