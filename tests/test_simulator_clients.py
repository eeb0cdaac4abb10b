"""Real BILLmanager clients, replayed: each test sends what one client's code sends and reads
the reply the way that code reads it (the source is named in each section).

The clients are PHP, Ruby, Java and JavaScript as well as Python; what runs here is their
requests and their parsing, rewritten line for line where they are not Python.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import pytest

from tests.replies import URL, seller_service


@pytest.fixture
def world(world):
    tariffs = world["tariffs"]
    tariffs[9] = {"intname": "isp-lite", "name": "ISP Lite", "type": "soft", "prices": {1: 5}}
    tariffs[10] = {"intname": "isp-pro", "name": "ISP Pro", "type": "soft", "prices": {1: 9}}
    tariffs[20] = {
        "intname": "start",
        "name": "Start",
        "type": "vds",
        "prices": {1: 4.9},
        "addons": {
            "ncpu": {"id": 21, "type": "integer", "included": 2, "max": 8},
            "ram": {"id": 22, "type": "integer", "included": 2048, "max": 16384},
            "disk": {"id": 23, "type": "integer", "included": 40, "max": 400},
        },
        "ostempl": ["ubuntu-24.04"],
    }
    tariffs[154] = {
        "intname": "dns-aero",
        "type": "dnshost",
        "prices": {12: 12},
        "addons": {"zones": {"id": 155, "type": "integer", "included": 10, "max": 100}},
    }
    tariffs[7991] = {
        "intname": "cloud-1",
        "name": "Cloud Forex 1",
        "type": "instances",
        "prices": {1: 6.48},
        "ostempl": ["ubuntu-22.04", "windows-2022"],
    }
    world["accounts"]["reseller"].update(balance=1000, email="ops@reseller.example")
    return world


# -- ISPsystem's WHMCS module (460s/ispsystem_whmcs_modules,
#    servers/billmanager_noc/billmanager_noc.php): POSTs out=xml with authinfo ------------------


class Whmcs:
    def __init__(self, session):
        self.session = session

    def request(self, func: str, params: dict) -> ET.Element:
        fields = {"out": "xml", "func": func, "authinfo": "reseller:s3cret"}
        reply = self.session.post(URL, data={**fields, **{k: str(v) for k, v in params.items()}})
        return ET.fromstring(reply.content)

    @staticmethod
    def find_error(xml: ET.Element) -> str:
        error = xml.find("error")
        return f"{error.get('type')}:{error.findtext('msg')}" if error is not None else ""

    def license_order(self, serviceid: int, pricelist: int) -> str:
        order = self.request(
            "soft.order.param",
            {
                "pricelist": pricelist,
                "period": 1,
                "pid": serviceid,
                "ip": "10.10.10.10",
                "licname": "name",
                "project": 1,
                "sok": "ok",
                "skipbasket": "on",
                "remoteid": f"l{serviceid}",
                "clicked_button": "finish",
            },
        )
        assert self.find_error(order) == ""
        return order.findtext("id")  # $order_license->xpath("/doc/id")

    def get_param(self, license_id: str, tries: int = 5) -> tuple[str, str]:
        """The module polls soft.edit until /doc/lickey is set (for ever; here, `tries`)."""
        for _ in range(tries):
            reply = self.request("soft.edit", {"elid": license_id})
            assert self.find_error(reply) == ""
            if reply.findtext("lickey"):
                return reply.findtext("lickey"), reply.findtext("expiredate")
        raise AssertionError("the module would loop for ever: /doc/lickey never set")


def test_whmcs_orders_a_licence_and_finds_its_key_and_due_date(session):
    whmcs = Whmcs(session)

    license_id = whmcs.license_order(77, 9)
    lickey, duedate = whmcs.get_param(license_id)

    assert lickey and duedate == "2026-02-01"


def test_whmcs_edits_prolongs_suspends_resumes_and_gets_a_new_key(session, client):
    whmcs = Whmcs(session)
    license_id = whmcs.license_order(77, 9)
    lickey, _ = whmcs.get_param(license_id)

    edited = whmcs.request(
        "soft.edit",
        {"elid": license_id, "licname": "free.lic", "ip": "0.0.0.0", "remoteid": "l", "sok": "ok"},
    )
    prolonged = whmcs.request("service.prolong", {"elid": license_id, "period": 1, "sok": "ok"})
    suspended = whmcs.request("soft.suspend", {"elid": license_id})
    resumed = whmcs.request("soft.resume", {"elid": license_id})
    newkey = whmcs.request(
        "soft.edit", {"elid": license_id, "clicked_button": "newkey", "sok": "ok"}
    )

    assert [whmcs.find_error(x) for x in (edited, prolonged, suspended, resumed, newkey)] == [
        ""
    ] * 5
    assert prolonged.findtext("doc/newexpiredate") == "2026-03-01"  # /doc/doc/newexpiredate
    assert newkey.findtext("lickey") not in ("", None, lickey)  # $newkey_request->xpath(...)
    service = seller_service(client, license_id)
    assert (service["params"]["licname"], service["remoteid"]) == ("free.lic", "l")


def test_whmcs_reads_an_error_as_type_and_message(session):
    whmcs = Whmcs(session)

    reply = whmcs.request("soft.order.param", {"pricelist": 404, "period": 1, "sok": "ok"})

    assert whmcs.find_error(reply) == "value:no soft tariff 404"


def test_whmcs_single_sign_on_issues_a_key_and_logs_in_with_it(session):
    whmcs = Whmcs(session)
    key = "5d41402abc4b2a76b9719d911017c592" + "7d793037a0760186574b0282f2f435e7"

    assert (
        whmcs.find_error(whmcs.request("session.newkey", {"username": "reseller", "key": key}))
        == ""
    )
    # the browser is sent to ...billmgr?checkcookie=no&func=auth&username=...&key=...
    landing = session.get(f"{URL}?checkcookie=no&func=auth&username=reseller&key={key}")
    assert ET.fromstring(landing.content).find("auth").get("id")


# -- Upmind's ispmanager provider (upmind/provision-provider-software-licenses,
#    src/Providers/Ispmanager/Provider.php): POST out=bjson, lang=en, a body with no type -----


class Upmind:
    def __init__(self, session):
        self.session = session

    def make_request(self, params: dict):
        params = {"out": "bjson", "lang": "en", **params, "authinfo": "reseller:s3cret"}
        # Guzzle's 'body' => http_build_query($params): no Content-Type header
        reply = self.session.post(URL, data=urlencode(params), headers={"Content-Type": ""})
        result = json.loads(reply.content)
        if "doc" in result:
            result = result["doc"]
        error = result.get("error") or {}
        if error.get("msg"):
            msg = error["msg"]
            raise RuntimeError(msg["$"] if isinstance(msg, dict) and "$" in msg else msg)
        return result


def test_upmind_creates_a_licence_and_reads_its_key_and_package(session):
    upmind = Upmind(session)

    result = upmind.make_request(
        {
            "func": "soft.order.param",
            "pricelist": 9,
            "period": 1,
            "ip": "10.0.0.1",
            "licname": "svc-1",
            "sok": "ok",
            "skipbasket": "on",
            "remoteid": "svc-1",
            "clicked_button": "finish",
            "autoprolong": "null",
        }
    )
    data = upmind.make_request({"func": "soft.edit", "elid": result["id"]["v"]})["model"]

    assert data["lickey"]
    assert (data["licname"], data["pricelist_name"]) == ("svc-1", "ISP Lite")
    statuses = ["Unknown", "Ordered", "Active", "Suspended", "Deleted", "Processing"]
    assert statuses[int(data["status"])] == "Active"


def test_upmind_renews_changes_package_reissues_and_terminates(session, client):
    upmind = Upmind(session)
    result = upmind.make_request(
        {"func": "soft.order.param", "pricelist": 9, "period": 1, "sok": "ok", "skipbasket": "on"}
    )
    elid = result["id"]["v"]

    upmind.make_request({"func": "service.prolong", "elid": elid, "period": 1, "sok": "ok"})
    upmind.make_request(
        {"func": "service.changepricelist", "elid": elid, "pricelist": 10, "period": 1, "sok": "ok"}
    )
    upmind.make_request(
        {"func": "soft.edit", "elid": elid, "clicked_button": "newkey", "sok": "ok"}
    )
    upmind.make_request({"func": "soft.delete", "elid": elid, "sok": "ok"})

    service = seller_service(client, elid)
    assert (service["tariff"], service["status"], service["expires"]) == (
        10,
        "deleted",
        "2026-03-01",
    )


def test_upmind_reads_an_error_message(session):
    with pytest.raises(RuntimeError, match="no service 999"):
        Upmind(session).make_request({"func": "soft.edit", "elid": 999})


# -- wwwolki/ispbillmanager (isppyapi/manager.py): out=json, every row field read as `$` -------


def test_wwwolki_logs_in_and_reads_every_field_of_every_row(session):
    session.post(
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
    login = session.get(
        URL, params={"out": "json", "func": "auth", "username": "reseller", "password": "s3cret"}
    ).json()
    session_id = login["doc"]["auth"]["$id"]

    doc = session.get(URL, params={"out": "json", "func": "vds", "auth": session_id}).json()["doc"]

    assert "error" not in doc
    rows = [{key: row[key]["$"] for key in ("id", "ip", "expiredate")} for row in doc["elem"]]
    assert rows[0]["id"] == "1000"


def test_wwwolki_reads_an_error_message_as_msg_dollar(session):
    doc = session.get(URL, params={"out": "json", "func": "auth", "username": "x", "password": "y"})

    assert doc.json()["doc"]["error"]["msg"]["$"] == "Invalid username or password"


# -- pulivilizator/billmgr-addon (billmgr_addon/utils/billmgr_api.py): out=sjson, parameters in
#    a JSON body, the session in the billmgrses5 cookie ---------------------------------------


def sjson(session, method: str, func: str, **params):
    common = {"func": func, "out": "sjson", "authinfo": "reseller:s3cret"}
    if method == "GET":
        reply = session.request("GET", URL, params={**common, **params}, json={})
    else:
        reply = session.request("POST", URL, json={**common, **params})
    doc = reply.json()["doc"]
    if "error" in doc:
        raise RuntimeError(f"Error message: {doc['error']['msg']['$']}")
    assert doc, "Invalid response data format"
    return doc


def get_list(doc: dict) -> list[dict] | None:
    """BillmgrAPIResponse.get_list: rows only where p_elems is; $orig preferred over $."""
    if "p_elems" not in doc:
        return None
    items = []
    for elem in doc.get("elem", []):
        item = {}
        for name, value in elem.items():
            if "$orig" in value:
                item[name] = value["$orig"]
            elif "$" in value:
                item[name] = value["$"]
        items.append(item)
    return items


def test_billmgr_addon_keeps_alive_and_reads_discounts(session):
    assert sjson(session, "GET", "keepalive")
    doc = sjson(session, "GET", "account.discountinfo")

    promotions = [d for d in doc["list"] if d["$name"] == "promotion"]
    assert [d.get("elem", []) for d in promotions] == [[]]


def test_billmgr_addon_lists_services_with_the_raw_status(session):
    sjson(session, "POST", "vds.order.param", pricelist=5, period=1, sok="ok", skipbasket="on")

    (row,) = get_list(sjson(session, "GET", "vds"))

    assert (row["id"], row["item_status"]) == ("1000", "2")


def test_billmgr_addon_reads_an_error(session):
    with pytest.raises(RuntimeError, match="Error message: no service 5"):
        sjson(session, "POST", "vds.edit", elid=5)


# -- darky623/billmanager_parser (parser/client.py, plans.py, os_list.py): out=xjson --------


def test_billmanager_parser_reads_datacenters_plans_and_prices(session):
    params = {
        "func": "v2.vds.order.pricelist",
        "out": "xjson",
        "sfrom": "ajax",
        "authinfo": "reseller:s3cret",
    }
    data = session.get(URL, params=params).json()
    doc = data.get("doc", {})

    slists = doc.get("slist", [])
    dc_node = next(x for x in slists if isinstance(x, dict) and x.get("$name") == "datacenter")
    datacenter_ids = [int(val["$key"]) for val in dc_node.get("val", [])]
    list_nodes = doc.get("list", [])
    vds_node = next(
        (n for n in list_nodes if n.get("$name") in ("vds", "pricelist")), list_nodes[0]
    )
    plans = {}
    for elem in vds_node.get("elem", []):
        prices = elem["prices"]["price"]
        prices = [prices] if isinstance(prices, dict) else prices
        plans[int(elem["id"]["$"])] = (
            elem["title"]["$"],
            int(elem["datacenter"]["id"]["$"]),
            {int(p["period"]["$"]): p["cost"]["$"] for p in prices},
        )

    assert datacenter_ids == [1]
    assert plans[5] == ("VDS-1", 1, {1: "10.00", 3: "27.00", 12: "100.00"})
    assert plans[20][2] == {1: "4.90"}


def test_billmanager_parser_reads_the_os_list_of_a_plan(session):
    params = {
        "period_20": "1",
        "datacenter": "1",
        "fperiod": "null",
        "hide_fperiod": "off",
        "hide_flabel": "on",
        "keyvalue": "20_1",
        "func": "v2.vds.order.param",
        "sfrom": "ajax",
        "out": "xjson",
        "authinfo": "reseller:s3cret",
        "pricelist": "20",
    }
    doc = session.get(URL, params=params).json().get("doc", {})

    ostempl = next(i for i in doc.get("slist", []) if i.get("$name") == "ostempl")
    entries = [(v["$key"], v.get("$", ""), v.get("$valuegroup", "")) for v in ostempl["val"]]

    assert entries == [("ubuntu-24.04", "ubuntu-24.04", "ubuntu")]


# -- the OpenNebula ISPDriver (Ruby, S20 in the reference): out=json, the cart, and the web UI's
#    ajax format for lists and deletion ------------------------------------------------------


class LastList(HTMLParser):
    """Nokogiri's doc.xpath('//ul').last.xpath('li'), each li's last child's text."""

    def __init__(self):
        super().__init__()
        self.lists, self.depth, self.last_text = [], [], ""

    def handle_starttag(self, tag, attrs):
        if tag == "ul":
            self.lists.append([])
        elif tag == "li":
            self.last_text = ""
        self.depth.append(tag)

    def handle_data(self, data):
        self.last_text = data

    def handle_endtag(self, tag):
        self.depth.pop()
        if tag == "li":
            self.lists[-1].append(self.last_text.strip())


def test_ispdriver_orders_through_the_cart_and_finds_the_service_in_the_ajax_list(session):
    login = session.get(
        URL, params={"out": "json", "func": "auth", "username": "reseller", "password": "s3cret"}
    )
    base = {"auth": json.loads(login.content)["doc"]["auth"]["$id"], "out": "json"}
    session.get(
        URL,
        params={
            **base,
            "func": "vds.order.param",
            "period": 1,
            "newbasket": "",
            "stylesheet": "",
            "elid": "",
            "itemtype": "",
            "skipbasket": "",
            "clicked_button": "finish",
            "progressid": "false",
            "sok": "ok",
            "sfrom": "ajax",
            "pricelist": 5,
            "datacenter": 1,
            "ostempl": "debian-12",
        },
    )
    orders = session.get(URL, params={**base, "func": "order"}).json()
    basket = [el for el in orders["doc"]["list"] if el["$name"] == "openlist"][-1]["elem"][-1]
    session.get(
        URL,
        params={
            **base,
            "func": "basket",
            "elid": "",
            "stylesheet": "",
            "id": basket["id"]["$"],
            "clicked_button": "free",
            "progressid": "false",
            "sok": "ok",
            "sfrom": "ajax",
        },
    )
    listed = session.post(
        URL, data={"auth": base["auth"], "func": "vds", "sfrom": "ajax", "lang": "en"}
    )

    first = json.loads(listed.content)["content"][0]
    assert first["id"]["v"] == "1000"
    assert first["item_status"]["v"] == "Active"
    assert first["datacentername"]["v"] and first["ip"]["v"]


def test_ispdriver_reads_the_panel_login_from_the_instructions_and_deletes(session):
    order = {
        "func": "vds.order.param",
        "authinfo": "reseller:s3cret",
        "pricelist": 5,
        "period": 1,
        "sok": "ok",
        "skipbasket": "on",
    }
    session.post(URL, data=order)
    body = session.get(
        URL,
        params={
            "authinfo": "reseller:s3cret",
            "out": "json",
            "lang": "en",
            "func": "service.instruction.html",
            "elid": 1000,
        },
    )
    parser = LastList()
    parser.feed(json.loads(body.content)["doc"]["body"]["$"])
    url, username, password = parser.lists[-1]

    deleted = session.post(
        URL,
        data={
            "func": "vds.delete",
            "authinfo": "reseller:s3cret",
            "elid": 1000,
            "plid": "",
            "progressid": "_deleteundefined",
            "sfrom": "ajax",
            "lang": "en",
        },
    )

    assert url.startswith("https://") and username == "root" and password
    assert json.loads(deleted.content)["message"][0]["status"] != "error"


def test_ispdriver_reads_a_refused_deletion_from_the_warning_of_its_elid(session):
    deleted = session.post(
        URL,
        data={"func": "vds.delete", "authinfo": "reseller:s3cret", "elid": 4242, "sfrom": "ajax"},
    )

    reply = json.loads(deleted.content)
    assert reply["message"][0]["status"] == "error"
    assert reply["warning"]["4242"]["msg"]


# -- BillmgrDriver (Python, S20 in the reference): out=json, lang=en, POST ---------------------


def scalar(v):
    if isinstance(v, dict):
        return v.get("$", v)
    if isinstance(v, list) and v:
        return scalar(v[0])
    return v


class BillmgrDriver:
    def __init__(self, session):
        self.session = session

    def call(self, func: str, **params) -> dict:
        body = {
            "func": func,
            "out": "json",
            "authinfo": "reseller:s3cret",
            "lang": "en",
            **{k: str(v) for k, v in params.items()},
        }
        payload = self.session.post(URL, data=body).json()
        doc = payload.get("doc") if isinstance(payload, dict) else None
        err = doc.get("error")
        if err:
            raise RuntimeError(err.get("msg") or err)
        return doc

    def find_by_domain(self, name: str) -> dict | None:
        elems = self.call("vds").get("elem")
        if isinstance(elems, dict):
            elems = [elems]
        matched = [e for e in elems or [] if scalar(e.get("domain")) == name]
        return max(matched, key=lambda e: int(scalar(e.get("id")))) if matched else None


def test_billmgr_driver_orders_waits_for_active_with_an_ip_and_sets_the_password(session):
    driver = BillmgrDriver(session)

    driver.call(
        "vds.order.param",
        pricelist=5,
        datacenter=1,
        ostempl="debian-12",
        period="1",
        autoprolong="1",
        domain="node-1",
        skipbasket="on",
        sok="ok",
    )
    elem = driver.find_by_domain("node-1")
    driver.call(
        "service.changepassword", elid=scalar(elem["id"]), passwd="pw", confirm="pw", sok="ok"
    )

    assert str(scalar(elem["item_status"])) == "2"
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", scalar(elem["ip"]))


def test_billmgr_driver_reboots_reinstalls_and_destroys(session, client):
    driver = BillmgrDriver(session)
    driver.call(
        "vds.order.param",
        pricelist=5,
        datacenter=1,
        ostempl="debian-12",
        period="1",
        domain="node-2",
        skipbasket="on",
        sok="ok",
    )
    service = scalar(driver.find_by_domain("node-2")["id"])

    driver.call("vds.reboot", elid=service, sok="ok")
    driver.call("vds.edit", elid=service, ostempl="centos-7", sok="ok")
    driver.call("service.changepassword", elid=service, passwd="x", confirm="x", sok="ok")
    driver.call("vds.delete", elid=service, sok="ok")

    state = seller_service(client, service)
    assert (state["params"]["ostempl"], state["status"]) == ("centos-7", "deleted")


def test_billmgr_driver_reads_datacenters_plans_and_images_from_the_wizard(session):
    driver = BillmgrDriver(session)

    doc = driver.call("vds.order")
    datacenters = [v["$key"] for s in doc["slist"] if s["$name"] == "datacenter" for v in s["val"]]
    blocks = doc.get("list")
    blocks = [blocks] if isinstance(blocks, dict) else blocks
    elems = next(b for b in blocks if b.get("$name") == "tariflist")["elem"]
    plans = {scalar(e["pricelist"]): scalar(e["desc"]) for e in elems}
    form = driver.call("vds.order.param", pricelist=5, datacenter=datacenters[0], period="1")
    images = [v["$key"] for s in form["slist"] if s["$name"] == "ostempl" for v in s["val"]]

    assert datacenters == ["1"]
    assert plans["5"] == "VDS-1" and plans["20"] == "Start"
    assert images == ["debian-12", "centos-7"]


# -- denozordec/vps-tracker (apps/api/src/services/billmanager/*.ts): GET out=bjson ----------


def elem_to_object(elem: dict) -> dict:
    return {k: "" if v is None else str(v) for k, v in elem.items()}


def test_vps_tracker_maps_the_bjson_vds_list(session):
    session.post(
        URL,
        data={
            "func": "vds.order.param",
            "authinfo": "reseller:s3cret",
            "pricelist": 5,
            "period": 3,
            "sok": "ok",
            "skipbasket": "on",
            "domain": "vps.example.com",
        },
    )
    data = session.get(
        URL, params={"authinfo": "reseller:s3cret", "out": "bjson", "func": "vds"}
    ).json()
    assert not data.get("error")

    elems = data["elem"] if isinstance(data.get("elem"), list) else []
    item = elem_to_object(elems[0])
    status = {1: "active", 2: "active", 3: "paused", 4: "archived", 5: "active"}[
        int(item.get("item_status_orig") or item["item_status"])
    ]
    cost = float(re.sub(r"[^\d.-]", "", item["cost"]))

    assert status == "active"
    assert cost == 9.0  # 27 for three months
    assert (item["domain"], item["datacentername"], item["ostempl"]) == (
        "vps.example.com",
        "Datacenter 1",
        "debian-12",
    )
    assert item["expiredate"][:10] == "2026-04-01"


def test_vps_tracker_reads_tariffs_and_datacenters_from_the_bjson_order_step(session):
    data = session.get(
        URL,
        params={
            "authinfo": "reseller:s3cret",
            "out": "bjson",
            "func": "vds.order",
            "plid": "",
            "sfrom": "ajax",
        },
    ).json()

    list_node = data.get("list") or (data.get("doc") or {}).get("list") or data
    tariflist = list_node.get("tariflist") or list_node.get("pricelist") or []
    slist = list_node.get("slist") or data.get("slist") or {}
    items = [elem_to_object(e) for e in tariflist]

    assert [(i["pricelist"], i["order_available"]) for i in items][0] == ("5", "on")
    assert [(dc["k"], dc["v"]) for dc in slist["datacenter"]] == [("1", "Datacenter 1")]


# -- a Zomro client (TypeScript, S20 in the reference): BILLmanager 6's new cart -------------


def test_zomro_orders_an_instance_through_the_new_cart_and_finds_it(session):
    def zomro(func: str, **params):
        data = session.post(URL, data={"func": func, "auth": token, "out": "json", **params}).json()
        assert not data["doc"].get("error"), data
        return data["doc"]

    auth = session.post(URL, data={"func": "auth", "authinfo": "reseller:s3cret", "out": "json"})
    token = auth.json()["doc"]["auth"]["$id"]
    form = zomro("v2.instances.order.param", pricelist=7991, period=1)
    os_list = next(s for s in form["slist"] if s["$name"] == "instances_os")
    vals = os_list["val"] if isinstance(os_list["val"], list) else [os_list["val"]]
    windows = next(v for v in vals if "windows" in v["$"].lower())["$key"]

    step1 = zomro(
        "v2.instances.order.param",
        order_period=1,
        licence_agreement="on",
        use_ssh_key="off",
        pricelist=7991,
        servername="fx-1",
        password="Aa1!pw",
        instances_os=windows,
        order_count=1,
        force_use_new_cart="on",
        sok="ok",
    )
    lineitem = step1["lineitem.id"]["$"]
    zomro("cartorder.create.confirm", elid=lineitem, paymethod_id=0, sok="ok")
    elems = zomro("instances")["elem"]
    newest = max(elems, key=lambda e: int(e["id"]["$"]))
    details = zomro("instances.edit", elid=newest["id"]["$"])

    assert details["status"]["$"] == "2"
    assert details["ip"]["$"]
    assert details["name"]["$"] == "fx-1"


# -- a VPN hub's price importer (S19, vpnhub provider_plans/billmanager.py): XML, no login ---


def test_a_price_importer_reads_cpu_ram_and_disk_from_the_addons(session):
    query = urlencode(
        {"func": "pricelist.export", "out": "xml", "itemtype": "vds", "onlyavailable": "on"}
    )
    root = ET.fromstring(session.get(f"{URL}?{query}").content)

    plans = {}
    for pl in root.findall("pricelist"):
        if pl.findtext("active") != "on" or "on" in {
            pl.findtext("hideinorder"),
            pl.findtext("archived"),
        }:
            continue
        if pl.findtext("itemtype_info/intname") != "vds":
            continue
        monthly = next(
            p
            for p in pl.find("price").findall("period")
            if p.get("type") == "month" and p.get("length") == "1"
        )
        specs = {}
        for addon in pl.findall("addon"):
            intname = addon.findtext("addon_itemtype_info/intname") or addon.findtext("intname")
            try:
                limit = float(addon.findtext("addonlimit") or "")
            except ValueError:
                continue
            unit = next(
                (m.findtext("name") for m in addon.findall("measure") if m.findtext("name")), ""
            )
            specs[intname.lower()] = (limit, unit.lower())
        plans[pl.findtext("id")] = (float(monthly.get("cost")), specs)

    cost, specs = plans["20"]
    assert cost == 4.9
    assert specs == {"ncpu": (2.0, "unit"), "mem": (2048.0, "mb"), "disc": (40.0, "gb")}


# -- datahata's calculators (JavaScript, S19): JSON, no login, elid=1 --------------------------


def test_a_price_calculator_filters_tariffs_by_numeric_itemtype(session):
    url = f"{URL}?func=pricelist.export&elid=1&out=json&onlyavailable=on"
    type_of_service = session.get(url).json()["doc"]["pricelist"]

    vps = [i for i in type_of_service if i["itemtype"]["$"] == "3"]
    base_sum = float(vps[0]["price"]["period"][0]["$cost"])

    assert base_sum == 10.0
    assert vps[0]["addon"][0]["id"]["$"] == "11"


# -- lepus.su (PHP, S19): JSON, pricelist=<id> gives one tariff as an object -------------------


def test_a_billing_reads_one_tariffs_period_price_by_position(session):
    url = (
        f"{URL}?authinfo=reseller:s3cret&out=json&func=pricelist.export&onlyavailable=on"
        f"&pricelist=5"
    )
    arr = session.get(url).json()

    assert arr["doc"]["pricelist"]["price"]["period"][1]["$cost"] == "27"


# -- a DNS hosting migration script (Python 2, S20 in the reference): the admin's user list,
#    su, and an order paid through the basket --------------------------------------------------


def test_dns_migration_orders_dns_hosting_through_the_basket(session):
    admin = f"{URL}?authinfo=root:toor&out=json&sform=ajax"
    users = session.get(admin + "&func=user").json()["doc"]["elem"]
    ids = {client["email"]["$"]: client["account_id"]["$"] for client in users}
    session.get(admin + "&func=account.su&elid=1")

    user = f"{URL}?authinfo=reseller:s3cret"
    before = session.get(user + "&out=json&func=dnshost").json()
    session.get(
        user + "&out=json&addon_155=100&autoprolong=12&clicked_button=finish&datacenter=1"
        "&func=dnshost.order.param&itemtype=&newbasket=&&period=12&pricelist=154"
        "&progressid=false&skipbasket=&sok=ok&stylesheet="
    )
    basket = session.get(user + "&out=json&func=basket").json()
    cart_id = basket["doc"]["list"][0]["elem"][1]["id"]["$"]
    session.get(
        user
        + "&out=json&clicked_button=free&func=basket&id="
        + cart_id
        + "&progressid=false&sok=ok&stylesheet="
    )
    listed = session.get(user + "&out=json&func=dnshost").json()
    sid = listed["doc"]["elem"][0]["id"]["$"]
    edit = session.get(
        user + f"&out=json&elid={sid}&elname=DNS%20Aero%20%23{sid}&func=dnshost.edit&plid=&"
    ).json()

    assert ids["ops@reseller.example"] == "1"
    assert "elem" not in before["doc"]
    assert listed["doc"]["elem"][0]["item_status"]["$color"] == "green"
    assert edit["doc"]["username"]["$"] and edit["doc"]["password"]["$"]


# -- small JavaScript front ends (S20): out=bjson login, and a balance bot's whoami -----------


def test_a_front_end_logs_in_with_bjson_and_reads_the_session_from_model(session):
    bill = session.get(
        URL, params={"out": "bjson", "func": "auth", "username": "reseller", "password": "s3cret"}
    ).json()
    refused = session.get(
        URL, params={"out": "bjson", "func": "auth", "username": "reseller", "password": "no"}
    ).json()

    assert not bill.get("error") and len(bill["model"]["auth"]) == 32
    assert refused["error"]["msg"] == "Invalid username or password"


def test_a_balance_bot_reads_the_balance_from_whoami(session):
    doc = session.get(
        URL, params={"authinfo": "reseller:s3cret", "out": "json", "func": "whoami"}
    ).json()["doc"]

    assert float(doc["user"]["$balance"]) == 1000
