"""The simulated BILLmanager API (`/billmgr`), called in-process with `out=xml` and `out=json`."""

from __future__ import annotations

from decimal import Decimal
from xml.etree import ElementTree as ET

import pytest

from tests.replies import (
    PASSWORDS,
    URL,
    balance,
    nothing_changes,
    pending_events,
    seller_service,
)

# -- authentication --------------------------------------------------------------------------


def test_auth_with_username_and_password_opens_a_session_that_later_calls_use(api):
    auth = api("auth", None, username="reseller", password="s3cret").one("auth")

    assert auth.attr("id") == auth.text() != ""
    assert auth.attr("level") == "16"
    assert api("whoami", None, auth=auth.attr("id")).one("user").attr("name") == "reseller"


def test_auth_with_authinfo_opens_a_session(api):
    sid = api("auth", None, authinfo="other:other-pw").one("auth").attr("id")

    assert api("whoami", None, auth=sid).one("user").attr("name") == "other"


def test_each_login_gets_its_own_session_id(api):
    first = api("auth", None, username="reseller", password="s3cret").one("auth").attr("id")
    second = api("auth", None, username="reseller", password="s3cret").one("auth").attr("id")

    assert first != second


def test_session_cookie_set_by_auth_authenticates_later_calls(session):
    reply = session.get(URL, params={"func": "auth", "username": "reseller", "password": "s3cret"})
    sid = ET.fromstring(reply.content).find("auth").get("id")

    assert session.cookies.get("billmgrses5") == sid
    user = ET.fromstring(session.get(URL, params={"func": "whoami"}).content).find("user")
    assert user.get("name") == "reseller"


def test_dropping_the_session_cookie_logs_the_client_out(session):
    session.get(URL, params={"func": "auth", "username": "reseller", "password": "s3cret"})
    session.cookies.clear()

    error = ET.fromstring(session.get(URL, params={"func": "whoami"}).content).find("error")
    assert error.get("type") == "auth"


def test_auth_with_a_bad_password_is_refused_and_opens_no_session(api, session):
    doc = api("auth", None, username="reseller", password="wrong")

    assert doc.error()[0] == "auth"
    assert not doc.has("auth")
    assert "billmgrses5" not in session.cookies


def test_auth_of_an_unknown_login_is_refused(api):
    assert api("auth", None, username="nobody", password="s3cret").error()[0] == "auth"


def test_auth_without_a_password_is_refused_as_missed(api):
    assert api("auth", None, username="reseller").error()[:2] == ("missed", "password")


def test_authinfo_with_a_bad_password_is_refused_with_auth(api):
    assert api("whoami", None, authinfo="reseller:wrong").error()[0] == "auth"


def test_call_without_credentials_is_refused_with_auth(api):
    assert api("whoami", None).error()[0] == "auth"


def test_unknown_session_is_refused_with_auth(api):
    assert api("whoami", None, auth="0123456789abcdef").error()[0] == "auth"


def test_session_expires_after_an_hour_idle_on_the_simulated_clock(api, client):
    sid = api("auth", None, username="reseller", password="s3cret").one("auth").attr("id")

    client.post("/_sim/clock", json={"advance": "61m"})

    assert api("whoami", None, auth=sid).error()[0] == "auth"


def test_each_call_keeps_the_session_alive_for_another_hour(api, client):
    sid = api("auth", None, username="reseller", password="s3cret").one("auth").attr("id")

    for _ in range(3):
        client.post("/_sim/clock", json={"advance": "50m"})
        assert api("whoami", None, auth=sid).one("user").attr("name") == "reseller"


def test_expired_session_stays_dead_after_a_fresh_login(api, client):
    old = api("auth", None, username="reseller", password="s3cret").one("auth").attr("id")
    client.post("/_sim/clock", json={"advance": "2h"})
    new = api("auth", None, username="reseller", password="s3cret").one("auth").attr("id")

    assert api("whoami", None, auth=old).error()[0] == "auth"
    assert api("whoami", None, auth=new).one("user").attr("name") == "reseller"


# -- wire format -----------------------------------------------------------------------------


def test_xml_replies_are_a_doc_with_the_xml_declaration(session):
    reply = session.get(URL, params={"func": "whoami", "authinfo": "reseller:s3cret"})

    assert reply.headers["Content-Type"].startswith("text/xml")
    assert reply.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert ET.fromstring(reply.content).tag == "doc"


@pytest.mark.parametrize("out", ["json", "sjson"])
def test_json_auth_reply_maps_attributes_to_dollar_keys_and_text_to_dollar(session, out):
    reply = session.get(URL, params={"func": "auth", "authinfo": "reseller:s3cret", "out": out})
    sid = reply.cookies["billmgrses5"]

    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json() == {"doc": {"auth": {"$id": sid, "$level": "16", "$": sid}}}


def test_json_error_has_type_object_and_lang_attributes_and_a_msg_text(session):
    reply = session.get(URL, params={"func": "auth", "authinfo": "reseller:bad", "out": "json"})

    assert reply.json() == {
        "doc": {
            "error": {
                "$type": "auth",
                "$object": "",
                "$lang": "en",
                "msg": {"$": "Invalid username or password"},
            }
        }
    }


def test_json_gives_a_list_of_one_row_as_an_array_and_a_lone_element_as_an_object(session, order):
    params = {"authinfo": "reseller:s3cret", "out": "json"}
    order()
    one = session.get(URL, params={"func": "vds", **params}).json()["doc"]["elem"]
    order()
    two = session.get(URL, params={"func": "vds", **params}).json()["doc"]["elem"]
    lone = session.get(URL, params={"func": "pricelist.export", "pricelist": 5, **params})

    assert isinstance(one, list) and one[0]["id"] == {"$": "1000"}
    assert [row["id"]["$"] for row in two] == ["1000", "1001"]
    assert lone.json()["doc"]["pricelist"]["id"] == {"$": "5"}


def test_json_gives_an_empty_element_as_an_empty_object_and_an_empty_text_as_empty_dollar(
    session, order
):
    service = order()
    auth = {"authinfo": "reseller:s3cret", "out": "json"}

    ok = session.post(URL, data={"func": "vds.suspend", "elid": service, **auth}).json()
    (row,) = session.get(URL, params={"func": "vds", **auth}).json()["doc"]["elem"]

    assert ok == {"doc": {"ok": {}}}
    assert row["remoteid"] == {"$": ""}
    assert row["item_status"] == {"$orig": "3", "$color": "red", "$": "3"}


def test_legacy_manager_path_and_get_query_serve_the_same_api(session):
    reply = session.get(
        "http://simulator/manager/billmgr", params={"func": "whoami", "authinfo": "other:other-pw"}
    )

    assert ET.fromstring(reply.content).find("user").get("name") == "other"


# -- whoami, pricelist.export ----------------------------------------------------------------


def test_whoami_shows_login_level_balance_and_currency(api):
    user = api("whoami").one("user")

    assert user.text() == "reseller"
    assert (user.attr("name"), user.attr("level")) == ("reseller", "16")
    assert (user.attr("balance"), user.attr("currency")) == ("100", "EUR")


def test_whoami_of_an_admin_shows_level_29(api):
    assert api("whoami", "root").one("user").attr("level") == "29"


def test_pricelist_export_needs_no_login_and_lists_every_tariff(api):
    ids = [p["id"] for p in api("pricelist.export", None).all("pricelist")]

    assert ids == ["5", "6", "7", "8"]


def test_pricelist_export_filters_by_itemtype(api):
    tariffs = api("pricelist.export", itemtype="vhost").all("pricelist")

    assert [(t["id"], t["intname"], t.one("itemtype_info")["intname"]) for t in tariffs] == [
        ("8", "web-1", "vhost")
    ]


def test_pricelist_export_shows_prices_per_period_in_the_seller_currency(api):
    tariff = api("pricelist.export", pricelist=5).one("pricelist")
    price = tariff.one("price")

    assert (tariff["name"], tariff["intname"], tariff.one("itemtype_info")["intname"]) == (
        "VDS-1",
        "vds-1",
        "vds",
    )
    assert price.attr("currency") == "EUR"
    assert [(p.attr("type"), p.attr("length"), p.attr("cost")) for p in price.all("period")] == [
        ("month", "1", "10"),
        ("month", "3", "27"),
        ("month", "12", "100"),
    ]


def test_pricelist_export_shows_each_addon_with_its_type_limits_and_monthly_price(api):
    addons = {
        a["intname"]: a for a in api("pricelist.export", pricelist=5).one("pricelist").all("addon")
    }

    ram, backup, panel = addons["ram"], addons["backup"], addons["panel"]
    assert (ram["id"], ram["addontype"], ram["addonlimit"], ram["addonmax"]) == (
        "11",
        "2",
        "1024",
        "8192",
    )
    assert ram.one("price").one("period").attr("cost") == "0.002"
    assert (backup["id"], backup["addontype"]) == ("12", "1")
    assert backup.one("price").one("period").attr("cost") == "2"
    assert (panel["id"], panel["addontype"]) == ("13", "3")
    items = panel.one("enumeration").all("enumerationitem")
    assert [(i["id"], i["intname"], i.one("price").one("period").attr("cost")) for i in items] == [
        ("1301", "none", "0"),
        ("1302", "ispmanager", "5"),
    ]


def test_pricelist_export_lists_os_templates_and_recipes_as_itemtype_params(api):
    params = {
        p["intname"]: [v["intname"] for v in p.all("itemtypeparamvalue")]
        for p in api("pricelist.export", pricelist=5).one("pricelist").all("itemtypeparam")
    }

    assert params == {"ostempl": ["debian-12", "centos-7"], "recipe": ["lamp"]}


# -- ordering --------------------------------------------------------------------------------


def test_order_form_without_sok_offers_periods_templates_and_recipes_and_charges_nothing(
    api, client
):
    with nothing_changes(client):
        form = api("vds.order.param", pricelist=5)

    assert form["pricelist"] == "5"
    assert form.slist("period") == ["1", "3", "12"]
    assert form.slist("ostempl") == ["debian-12", "centos-7"]
    assert set(form.slist("recipe")) == {"lamp"}


def test_order_form_of_a_tariff_of_another_type_is_refused(api):
    assert api("vds.order.param", pricelist=8).error()[:2] == ("value", "pricelist")


def test_order_with_skipbasket_returns_the_id_charges_and_sets_the_service_up(api, client):
    doc = api("vds.order.param", pricelist=5, period=1, sok="ok", skipbasket="on", remoteid="r-17")

    service = seller_service(client, doc["id"])
    assert doc["id"] == "1000"
    assert service["status"] == "active"
    assert (service["expires"], service["remoteid"]) == ("2026-02-01", "r-17")
    assert len(service["ips"]) == 1
    assert service["params"] == {"ostempl": "debian-12"}
    assert service["addons"] == {"ram": 1024, "backup": False, "panel": "none"}
    assert balance(client) == Decimal("90")


def test_order_charges_the_period_price_plus_its_addons_for_as_many_months(api, client):
    doc = api(
        "vds.order.param",
        pricelist=5,
        period=3,
        sok="ok",
        skipbasket="on",
        ostempl="centos-7",
        recipe="lamp",
        addon_11=2048,
        addon_12="on",
        addon_13=1302,
    )

    service = seller_service(client, doc["id"])
    # 27 for three months, plus (1024 MB x 0.002 + 2 + 5) a month for three months: 54.144,
    # debited rounded to the cent
    assert balance(client) == Decimal("100") - Decimal("54.14")
    assert service["addons"] == {"ram": 2048, "backup": True, "panel": "ispmanager"}
    assert service["params"] == {"ostempl": "centos-7", "recipe": "lamp"}
    assert service["expires"] == "2026-04-01"


def test_order_accepts_an_enumeration_item_by_its_name(order, client):
    service = order(addon_13="ispmanager")

    assert seller_service(client, service)["addons"]["panel"] == "ispmanager"


def test_order_costing_exactly_the_balance_is_accepted(order, client):
    order(period=12)

    assert balance(client) == 0


def test_order_queues_an_open_event_naming_the_service_and_its_remoteid(order, api):
    service = order(remoteid="r-9")

    (event,) = api("itemevent").all("elem")
    assert (event["type"], event["item"], event["remoteid"]) == ("open", service, "r-9")
    assert (event["status"], event["expiredate"]) == ("2", "2026-02-01")
    assert len(event.all("ip")) == 1


def test_order_on_a_tariff_set_up_later_stays_ordered_until_then(order, api, client):
    service = order(pricelist=6)

    assert seller_service(client, service)["status"] == "ordered"
    assert api("itemevent").all("elem") == []
    client.post("/_sim/clock", json={"advance": "10m"})
    assert seller_service(client, service)["status"] == "active"
    assert [e["type"] for e in api("itemevent").all("elem")] == ["open"]


def test_order_of_a_vhost_gets_a_username_and_no_ip(api, client):
    doc = api(
        "vhost.order.param", pricelist=8, period=1, sok="ok", skipbasket="on", domain="a.example"
    )

    service = seller_service(client, doc["id"])
    assert service["ips"] == []
    assert service["params"] == {"domain": "a.example", "username": "user1000"}
    assert service["name"] == "a.example"


def test_order_refused_for_lack_of_funds_names_amount_have_and_currency(api):
    doc = api("vds.order.param", "poor", pricelist=5, period=1, sok="ok", skipbasket="on")

    error_type, _, params = doc.error()
    assert error_type == "not_enough_money"
    assert params["currency"] == "EUR"
    assert (Decimal(params["amount"]), Decimal(params["have"])) == (10, 5)


def test_order_refused_for_lack_of_funds_changes_nothing(api, client):
    with nothing_changes(client):
        doc = api("vds.order.param", "poor", pricelist=5, period=1, sok="ok", skipbasket="on")

    assert doc.error()[0] == "not_enough_money"
    assert client.get("/_sim/services").json["services"] == []


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"period": 2}, ("value", "period")),
        ({"period": "monthly"}, ("value", "period")),
        ({"pricelist": 99}, ("value", "pricelist")),
        ({"pricelist": 8}, ("value", "pricelist")),
        ({"ostempl": "windows"}, ("value", "ostempl")),
        ({"recipe": "wordpress"}, ("value", "recipe")),
        ({"addon_11": "lots"}, ("value", "addon_11")),
        ({"addon_11": 9000}, ("value", "addon_11")),
        ({"addon_12": "maybe"}, ("value", "addon_12")),
        ({"addon_13": "cpanel"}, ("value", "addon_13")),
        ({"addon_99": 1}, ("value", "addon_99")),
        ({"pricelist": ""}, ("missed", "pricelist")),
        ({"period": ""}, ("missed", "period")),
    ],
)
def test_order_with_a_bad_parameter_is_refused_naming_it_and_changes_nothing(
    api, client, params, error
):
    params = {"pricelist": 5, "period": 1, "sok": "ok", "skipbasket": "on", **params}

    with nothing_changes(client):
        doc = api("vds.order.param", **params)

    error_type, error_object, _ = doc.error()
    assert (error_type, error_object) == error


def test_value_error_carries_its_object_as_a_param_too(api):
    _, _, params = api("vds.order.param", pricelist=5, period=2, sok="ok", skipbasket="on").error()

    assert params == {"object": "period"}


# -- the service list ------------------------------------------------------------------------


def test_service_list_shows_each_service_of_the_account_with_its_status(order, api):
    service = order(remoteid="r-1")

    row = api("vds").one("elem")
    assert (row["id"], row["period"], row["remoteid"]) == (service, "1", "r-1")
    assert (row["createdate"], row["expiredate"]) == ("2026-01-01", "2026-02-01")
    assert (row["status"], row["pricelist_id"], row["pricelist"]) == ("2", "5", "VDS-1")
    assert (row["item_status"], row.one("item_status").attr("orig")) == ("2", "2")
    assert row["name"] == f"vds{service}"
    assert row["ip"].startswith("203.0.")


def test_service_list_filters_by_remoteid(order, api):
    order(remoteid="r-1")
    wanted = order(remoteid="r-2")
    order(remoteid="r-3")

    assert [row["id"] for row in api("vds", remoteid="r-2").all("elem")] == [wanted]
    assert api("vds", remoteid="r-404").all("elem") == []


def test_service_list_shows_only_the_callers_own_services_of_that_type(order, api, client):
    mine = order()
    order("other")
    client.post("/_sim/actions/create_service", json={"account": "reseller", "tariff": 8})

    assert [row["id"] for row in api("vds").all("elem")] == [mine]
    assert len(api("vhost").all("elem")) == 1


# -- vds.edit --------------------------------------------------------------------------------


def test_edit_without_sok_shows_the_service_with_its_addons_params_and_ips(order, api, client):
    service = order(addon_11=2048, addon_13=1302)
    ips = seller_service(client, service)["ips"]

    form = api("vds.edit", elid=service)
    assert (form["id"], form["expiredate"], form["item_status"]) == (service, "2026-02-01", "2")
    assert {
        (a, form.one(a).attr("intname"), form[a]) for a in ("addon_11", "addon_12", "addon_13")
    } == {
        ("addon_11", "ram", "2048"),
        ("addon_12", "backup", "off"),
        ("addon_13", "panel", "1302"),
    }
    assert {p.attr("name"): p.text() for p in form.all("param")} == {"ostempl": "debian-12"}
    assert [ip.text() for ip in form.all("ip")] == ips


def test_edit_with_sok_changes_an_addon_and_charges_the_monthly_difference(order, api, client):
    service = order(period=3)
    before = balance(client)
    api("itemevent")

    doc = api("vds.edit", elid=service, sok="ok", addon_11=2048, addon_13=1302)

    assert doc.has("ok")
    assert doc["id"] == service
    # (1024 MB x 0.002 + 5) a month for the three months of the period: 21.144, to the cent
    assert balance(client) == before - Decimal("21.14")
    assert api("vds.edit", elid=service)["addon_11"] == "2048"
    events = [(e["type"], e["name"], e["value"]) for e in api("itemevent").all("elem")]
    assert events == [("addon", "ram", "2048"), ("addon", "panel", "1302")]


def test_edit_lowering_an_addon_charges_nothing(order, api, client):
    service = order(addon_11=4096)
    before = balance(client)

    api("vds.edit", elid=service, sok="ok", addon_11=1024)

    assert balance(client) == before
    assert seller_service(client, service)["addons"]["ram"] == 1024


def test_edit_refused_for_lack_of_funds_changes_nothing(order, api, client):
    service = order(period=12)  # spends the whole balance

    with nothing_changes(client):
        doc = api("vds.edit", elid=service, sok="ok", addon_12="on")

    assert doc.error()[0] == "not_enough_money"


def test_edit_of_another_accounts_service_is_refused_as_missed(order, api):
    service = order("other")

    assert api("vds.edit", elid=service).error()[:2] == ("missed", "elid")


def test_edit_without_elid_is_refused_as_missed(api):
    assert api("vds.edit").error()[:2] == ("missed", "elid")


def test_edit_with_an_elid_that_is_not_a_number_is_refused_as_value(api):
    assert api("vds.edit", elid="abc").error()[:2] == ("value", "elid")


def test_edit_of_a_deleted_service_is_refused(order, api, client):
    service = order()
    api("vds.delete", elid=service)

    with nothing_changes(client):
        doc = api("vds.edit", elid=service, sok="ok", addon_11=2048)

    assert doc.error()[:2] == ("value", "elid")


# -- service.prolong -------------------------------------------------------------------------


def test_prolong_form_offers_the_periods_and_shows_the_expiry(order, api):
    service = order()

    form = api("service.prolong", elid=service)
    assert (form["elid"], form["expiredate"]) == (service, "2026-02-01")
    assert form.slist("period") == ["1", "3", "12"]


def test_prolong_with_sok_charges_the_period_and_moves_the_expiry(order, api, client):
    service = order(addon_12="on")
    api("itemevent")

    doc = api("service.prolong", elid=service, period=3, sok="ok")

    assert doc.one("doc")["newexpiredate"] == "2026-05-01"
    assert seller_service(client, service)["expires"] == "2026-05-01"
    assert balance(client) == Decimal("100") - Decimal("12") - Decimal("27") - 3 * Decimal("2")
    (event,) = api("itemevent").all("elem")
    assert (event["type"], event["item"], event["expiredate"]) == ("expire", service, "2026-05-01")


def test_prolong_refused_for_lack_of_funds_changes_nothing(order, api, client):
    vhost = {"pricelist": 8, "period": 1, "sok": "ok", "skipbasket": "on", "domain": "x.example"}
    service = api("vhost.order.param", "poor", **vhost)["id"]  # leaves 2 of 5

    with nothing_changes(client):
        doc = api("service.prolong", "poor", elid=service, period=1, sok="ok")

    error_type, _, params = doc.error()
    assert error_type == "not_enough_money"
    assert params["currency"] == "EUR"
    assert (Decimal(params["amount"]), Decimal(params["have"])) == (3, 2)


def test_prolong_for_a_period_the_tariff_lacks_is_refused_as_value(order, api, client):
    service = order()

    with nothing_changes(client):
        doc = api("service.prolong", elid=service, period=6, sok="ok")

    assert doc.error()[:2] == ("value", "period")


# -- suspend, resume, delete -----------------------------------------------------------------


def test_suspend_resume_and_delete_change_the_status_and_queue_events(order, api, client):
    service = order()
    api("itemevent")

    assert api("vds.suspend", elid=service).has("ok")
    assert api("vds").one("elem")["status"] == "3"
    assert api("vds.resume", elid=service).has("ok")
    assert api("vds").one("elem")["status"] == "2"
    assert api("vds.delete", elid=service, sok="ok").has("ok")
    assert api("vds").one("elem")["status"] == "4"

    events = [(e["type"], e["item"], e["status"]) for e in api("itemevent").all("elem")]
    assert events == [("suspend", service, "3"), ("resume", service, "2"), ("close", service, "4")]


def test_suspend_takes_several_elids_separated_by_comma_and_space(order, api, client):
    first, second = order(), order()

    api("vds.suspend", elid=f"{first}, {second}")

    assert [seller_service(client, s)["status"] for s in (first, second)] == ["suspended"] * 2


@pytest.mark.parametrize("func", ["vds.suspend", "vds.resume", "vds.delete"])
def test_account_that_may_not_suspend_is_refused_with_access_and_nothing_changes(
    order, api, client, func
):
    service = order("nosuspend")
    if func == "vds.resume":
        client.post("/_sim/actions/suspend", json={"service": int(service)})

    with nothing_changes(client):
        doc = api(func, "nosuspend", elid=service)

    assert doc.error()[0] == "access"


def test_suspending_a_suspended_service_is_refused_as_value(order, api, client):
    service = order()
    api("vds.suspend", elid=service)

    with nothing_changes(client):
        assert api("vds.suspend", elid=service).error()[:2] == ("value", "elid")


def test_resuming_an_active_service_is_refused_as_value(order, api):
    assert api("vds.resume", elid=order()).error()[:2] == ("value", "elid")


def test_deleting_a_deleted_service_is_refused_as_value(order, api):
    service = order()
    api("vds.delete", elid=service)

    assert api("vds.delete", elid=service).error()[:2] == ("value", "elid")


def test_suspend_of_another_accounts_service_is_refused_as_missed(order, api, client):
    service = order("other")

    with nothing_changes(client):
        assert api("vds.suspend", elid=service).error()[:2] == ("missed", "elid")


def test_resuming_a_service_its_expiry_suspended_is_refused_until_prolonged(order, api, client):
    service = order()
    client.post("/_sim/clock", json={"to": "2026-02-01T00:00:00Z"})

    assert api("vds.resume", elid=service).error()[:2] == ("value", "elid")
    api("service.prolong", elid=service, period=1, sok="ok")
    assert seller_service(client, service)["status"] == "active"


# -- service.ip, itemevent, account ----------------------------------------------------------


def test_service_ip_lists_every_address_of_the_service(order, api, client):
    service = order()
    client.post("/_sim/actions/add_ip", json={"service": int(service), "ip": "10.0.0.8"})

    rows = api("service.ip", elid=service).all("elem")
    ips = seller_service(client, service)["ips"]
    assert [(r["ip"], r["name"]) for r in rows] == [(ip, ip) for ip in ips]
    assert ips[-1] == "10.0.0.8"


def test_reading_the_event_feed_empties_it(order, api, client):
    order()

    assert len(api("itemevent").all("elem")) == 1
    assert pending_events(client) == 0
    assert api("itemevent").all("elem") == []


def test_events_increase_in_id_and_name_the_service_and_its_remoteid(order, api, client):
    first = order(remoteid="a")
    second = order(remoteid="b")
    api("vds.suspend", elid=first)
    client.post(
        "/_sim/actions/set_param",
        json={"service": int(second), "name": "hostname", "value": "web1"},
    )

    events = api("itemevent").all("elem")
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert [(e["type"], e["item"], e["remoteid"]) for e in events] == [
        ("open", first, "a"),
        ("open", second, "b"),
        ("suspend", first, "a"),
        ("param", second, "b"),
    ]
    assert (events[3]["name"], events[3]["value"]) == ("hostname", "web1")
    assert all(e["date"] == "2026-01-01 00:00:00" for e in events)


def test_each_account_reads_only_its_own_events(order, api):
    order("other")

    assert api("itemevent").all("elem") == []
    assert len(api("itemevent", "other").all("elem")) == 1


def test_account_list_is_for_admins_and_shows_every_account_with_its_balance(api):
    rows = {
        row["name"]: (row["level"], row["balance"]) for row in api("account", "root").all("elem")
    }

    assert rows["reseller"] == ("16", "100")
    assert rows["root"] == ("29", "0")
    assert set(rows) == set(PASSWORDS)


def test_account_list_is_refused_to_a_client_with_access(api):
    assert api("account").error()[:2] == ("access", "account")


# -- other errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("func", ["vds.reinstall", "nosuch", "soft.reboot"])
def test_unknown_function_is_refused_as_unknown_func_naming_it(api, client, func):
    with nothing_changes(client):
        doc = api(func)

    assert doc.error()[:2] == ("unknown_func", func)


def test_call_without_func_is_refused_as_missed(api):
    assert api("").error()[:2] == ("missed", "func")
