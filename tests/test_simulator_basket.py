"""Ordering through the cart: an order without `skipbasket` waits, paying it orders for real."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.replies import balance, ledger, nothing_changes, seller_service, services

CART_ORDER = {"pricelist": 5, "period": 1, "sok": "ok", "clicked_button": "finish"}


@pytest.fixture
def to_cart(api):
    """Put a VDS-1 order in the caller's cart; its line item id."""

    def put(user: str = "reseller", **params) -> str:
        doc = api("vds.order.param", user, **{**CART_ORDER, **params})
        assert not doc.has("error"), doc.error()
        return doc["lineitem.id"]

    return put


def cart_rows(api, func: str = "basket", user: str = "reseller"):
    (openlist,) = api(func, user).all("list")
    assert openlist.attr("name") == "openlist"
    return openlist.all("elem")


def test_an_order_without_skipbasket_goes_to_the_cart_and_costs_nothing(api, client, to_cart):
    doc = api("vds.order.param", **CART_ORDER, remoteid="r-1")

    assert doc.has("ok") and doc.has("basket") and doc.has("lineitem.id")
    assert services(client) == []
    assert balance(client) == 100
    assert api("itemevent").all("elem") == []


def test_the_cart_lists_itself_then_each_order_in_it_as_openlist(api, to_cart):
    first, second = to_cart(), to_cart(period=3)

    rows = cart_rows(api)
    assert [r["id"] for r in rows[1:]] == [first, second]
    assert rows[0]["cost"] == "37.00"
    assert [r["cost"] for r in rows[1:]] == ["10.00", "27.00"]
    assert [r["id"] for r in cart_rows(api, "order")] == [r["id"] for r in rows]


@pytest.mark.parametrize("button", ["free", "pay"])
def test_paying_the_cart_orders_each_service_as_skipbasket_does(api, client, to_cart, button):
    line = to_cart(remoteid="r-7", ostempl="centos-7")

    paid = api("basket", id=line, clicked_button=button, sok="ok")

    assert paid.has("ok")
    (service_id,) = [n.text() for n in paid.all("id")]
    service = seller_service(client, service_id)
    assert (service["status"], service["remoteid"]) == ("active", "r-7")
    assert service["params"]["ostempl"] == "centos-7"
    assert balance(client) == 90
    assert [(e["amount"], e["reason"]) for e in ledger(client)] == [("-10.00", "order")]
    (event,) = api("itemevent").all("elem")
    assert (event["type"], event["item"], event["remoteid"]) == ("open", service_id, "r-7")
    assert cart_rows(api) == []


def test_the_cart_is_paid_by_its_own_id_too(api, client, to_cart):
    to_cart()
    cart = cart_rows(api)[0]["id"]

    api("basket", id=cart, clicked_button="free", sok="ok")

    assert len(services(client)) == 1


def test_a_cart_the_balance_cannot_pay_is_refused_whole_and_changes_nothing(api, client, to_cart):
    line = to_cart("poor")
    to_cart("poor")

    with nothing_changes(client):
        doc = api("basket", "poor", id=line, clicked_button="free", sok="ok")

    error_type, _, params = doc.error()
    assert error_type == "not_enough_money"
    assert Decimal(params["amount"]) == 20


def test_deleting_a_line_takes_it_out_of_the_cart(api, to_cart):
    first, second = to_cart(), to_cart()

    api("basket", id=first, clicked_button="delete", sok="ok")

    assert [r["id"] for r in cart_rows(api)[1:]] == [second]


def test_another_accounts_cart_line_is_not_found(api, client, to_cart):
    line = to_cart("other")

    with nothing_changes(client):
        doc = api("basket", id=line, clicked_button="free", sok="ok")

    assert doc.error()[:2] == ("missed", "id")


def test_an_order_for_the_cart_is_checked_as_any_order(api, client):
    with nothing_changes(client):
        doc = api("vds.order.param", **CART_ORDER, ostempl="windows")

    assert doc.error()[:2] == ("value", "ostempl")


def test_a_cart_line_whose_tariff_lost_its_period_is_refused_when_paid(api, client, to_cart):
    line = to_cart(period=3)
    client.post("/_sim/actions/edit_tariff", json={"id": 5, "prices": {1: 10}})

    doc = api("basket", id=line, clicked_button="free", sok="ok")

    assert doc.error()[:2] == ("value", "period")
    assert services(client) == []


# -- BILLmanager 6: line items and cartorder.create.confirm ------------------------------------


def test_v2_order_param_puts_a_line_item_in_the_cart_and_confirm_pays_it(api, client):
    doc = api("v2.vds.order.param", pricelist=5, order_period=3, sok="ok", clicked_button="order")
    line = doc["lineitem.id"]
    assert services(client) == []

    paid = api("cartorder.create.confirm", elid=line, paymethod_id=0, sok="ok")

    assert paid.has("ok")
    assert seller_service(client, paid["id"])["period"] == 3
    assert balance(client) == 73


def test_force_use_new_cart_starts_the_cart_afresh(api, to_cart):
    to_cart()

    doc = api(
        "v2.vds.order.param",
        pricelist=5,
        order_period=1,
        sok="ok",
        force_use_new_cart="on",
    )

    assert [r["id"] for r in cart_rows(api)[1:]] == [doc["lineitem.id"]]


def test_confirm_with_a_payment_method_other_than_the_balance_is_refused(api, client, to_cart):
    line = to_cart()

    with nothing_changes(client):
        doc = api("cartorder.create.confirm", elid=line, paymethod_id=3, sok="ok")

    assert doc.error()[:2] == ("value", "paymethod_id")


def test_v2_order_with_skipbasket_is_paid_at_once(api, client):
    doc = api("v2.vds.order.param", pricelist=5, order_period=1, sok="ok", skipbasket="on")

    assert seller_service(client, doc["id"])["status"] == "active"


# -- ok and selects that say none --------------------------------------------------------------


def test_an_order_paid_at_once_says_ok_and_gives_the_id(api):
    doc = api("vds.order.param", pricelist=5, period=1, sok="ok", skipbasket="on")

    assert doc.has("ok")
    assert doc["id"] == "1000"


@pytest.mark.parametrize("value", ["null", ""])
def test_recipe_null_means_no_recipe(api, client, value):
    doc = api("vds.order.param", pricelist=5, period=1, sok="ok", skipbasket="on", recipe=value)

    assert "recipe" not in seller_service(client, doc["id"])["params"]


def test_ostempl_null_gets_the_tariffs_first_template(api, client):
    doc = api("vds.order.param", pricelist=5, period=1, sok="ok", skipbasket="on", ostempl="null")

    assert seller_service(client, doc["id"])["params"]["ostempl"] == "debian-12"


@pytest.mark.parametrize(("sent", "kept"), [("null", "off"), ("off", "off"), ("3", "3")])
def test_autoprolong_is_a_period_or_null_for_off(api, sent, kept):
    doc = api("vds.order.param", pricelist=5, period=1, sok="ok", skipbasket="on", autoprolong=sent)

    assert api("vds").one("elem")["autoprolong"] == kept
    assert doc.has("id")


def test_autoprolong_for_a_period_the_tariff_lacks_is_refused(api, client):
    with nothing_changes(client):
        doc = api(
            "vds.order.param", pricelist=5, period=1, sok="ok", skipbasket="on", autoprolong=6
        )

    assert doc.error()[:2] == ("value", "autoprolong")


def test_a_service_with_autoprolong_is_renewed_at_expiry_from_the_balance(api, client):
    api("vds.order.param", pricelist=5, period=1, sok="ok", skipbasket="on", autoprolong=1)
    api("itemevent")

    client.post("/_sim/clock", json={"to": "2026-02-01T00:00:00Z"})

    (row,) = api("vds").all("elem")
    assert (row["status"], row["expiredate"]) == ("2", "2026-03-01")
    assert balance(client) == 80
    assert [e["type"] for e in api("itemevent").all("elem")] == ["expire"]


def test_a_service_autoprolong_cannot_pay_is_suspended_at_expiry(api, client):
    vhost = {"pricelist": 8, "period": 1, "sok": "ok", "skipbasket": "on", "domain": "x.example"}
    api("vhost.order.param", "poor", **vhost, autoprolong=1)  # leaves 2 of 5; renewing costs 3

    client.post("/_sim/clock", json={"to": "2026-02-01T00:00:00Z"})

    assert api("vhost", "poor").one("elem")["status"] == "3"
    assert balance(client, "poor") == 2


def test_a_datacenter_the_tariff_is_not_sold_in_is_refused(api, client):
    with nothing_changes(client):
        doc = api("vds.order.param", pricelist=5, period=1, sok="ok", skipbasket="on", datacenter=2)

    assert doc.error()[:2] == ("value", "datacenter")
