"""The catalog: pricelist.export as real importers read it, and the order wizard's steps."""

from __future__ import annotations

import pytest

from tests.replies import nothing_changes


def addons_of(api, **params) -> dict:
    tariff = api("pricelist.export", None, pricelist=5, **params).one("pricelist")
    return {a["intname"]: a for a in tariff.all("addon")}


# -- pricelist.export --------------------------------------------------------------------------


def test_addonlimit_is_what_the_tariff_includes_and_addonmax_the_most_an_order_may_ask(api):
    ram = addons_of(api)["ram"]

    assert (ram["addonlimit"], ram["addonmax"], ram["addonmin"]) == ("1024", "8192", "0")


def test_an_integer_addon_without_a_maximum_has_no_addonmax(api, client):
    client.post(
        "/_sim/actions/edit_tariff",
        json={"id": 5, "addons": {"disk": {"id": 14, "type": "integer", "included": 20}}},
    )

    disk = addons_of(api)["disk"]

    assert disk["addonlimit"] == "20"
    assert not disk.has("addonmax")


def test_an_addon_names_the_resource_it_sells_and_its_unit_in_two_measure_tags(api):
    ram = addons_of(api)["ram"]

    assert ram.one("addon_itemtype_info")["intname"] == "mem"
    scalar, named = ram.all("measure")
    assert scalar.text() == named["id"]
    assert named["name"] == "MB"


def test_a_boolean_or_enumeration_addon_has_no_limit_or_measure(api):
    addons = addons_of(api)

    for name in ("backup", "panel"):
        assert not addons[name].has("addonlimit")
        assert not addons[name].has("measure")


def test_itemtype_is_the_numeric_product_type_with_its_intname_in_itemtype_info(api):
    tariffs = {t["id"]: t for t in api("pricelist.export", None).all("pricelist")}

    assert (tariffs["5"]["itemtype"], tariffs["5"].one("itemtype_info")["intname"]) == ("3", "vds")
    assert tariffs["8"].one("itemtype_info")["intname"] == "vhost"


def test_a_tariff_shows_description_active_hideinorder_archived_and_its_datacenter(api):
    tariff = api("pricelist.export", None, pricelist=5).one("pricelist")

    assert (tariff["active"], tariff["hideinorder"], tariff["archived"]) == ("on", "off", "off")
    assert tariff.has("description")
    assert (tariff.one("datacenter")["id"], tariff.one("datacenter")["name"]) == (
        "1",
        "Datacenter 1",
    )


def test_itemtype_filters_by_the_numeric_id_as_well_as_the_intname(api):
    by_id = [t["id"] for t in api("pricelist.export", None, itemtype=3).all("pricelist")]
    by_name = [t["id"] for t in api("pricelist.export", None, itemtype="vds").all("pricelist")]

    assert by_id == by_name == ["5", "6", "7"]


def test_elid_names_a_provider_not_a_tariff_and_filters_nothing(api):
    tariffs = api("pricelist.export", None, elid=1, onlyavailable="on").all("pricelist")

    assert [t["id"] for t in tariffs] == ["5", "6", "7", "8"]


def test_a_wrong_login_is_refused_even_where_none_is_needed(api):
    assert api("pricelist.export", None, authinfo="reseller:nope").error()[0] == "auth"


def test_every_period_carries_its_type_and_length(api):
    periods = api("pricelist.export", None, pricelist=5).one("pricelist").one("price").all("period")

    assert [(p.attr("type"), p.attr("length"), p.text()) for p in periods] == [
        ("month", "1", "monthly"),
        ("month", "3", "quarterly"),
        ("month", "12", "annual"),
    ]


def test_the_engine_imports_included_and_maximum_from_addonlimit_and_addonmax(session):
    from reseller.client import SellerClient

    client = SellerClient("http://simulator", "reseller", "s3cret", session)

    (tariff,) = client.tariffs(5)

    assert (tariff.addons["ram"].included, tariff.addons["ram"].max) == (1024, 8192)
    assert tariff.type == "vds"


# -- pricelist.export is built once per state of the catalogue ------------------------------
# Each test reads the export first, so a reply kept from before the change would show.


def exported_tariff(api, tariff: int = 5):
    return api("pricelist.export", None, pricelist=tariff).one("pricelist")


def edit_tariff(client, **changes) -> None:
    assert client.post("/_sim/actions/edit_tariff", json={"id": 5, **changes}).status_code == 200


def test_pricelist_export_shows_a_tariff_renamed_after_it_was_read(api, client):
    assert exported_tariff(api)["name"] == "VDS-1"

    edit_tariff(client, name="VDS-One", description="renamed")

    assert (exported_tariff(api)["name"], exported_tariff(api)["description"]) == (
        "VDS-One",
        "renamed",
    )


def test_pricelist_export_shows_an_addon_added_after_it_was_read(api, client):
    assert "disk" not in addons_of(api)

    edit_tariff(client, addons={"disk": {"id": 14, "type": "integer", "included": 20}})

    assert sorted(addons_of(api)) == ["disk"]


def test_pricelist_export_shows_a_price_changed_after_it_was_read(api, client):
    def monthly() -> str:
        return exported_tariff(api).one("price").all("period")[0].attr("cost")

    assert monthly() == "10"

    edit_tariff(client, prices={1: 12, 3: 27, 12: 100})

    assert monthly() == "12"


def test_pricelist_export_drops_a_period_the_tariff_no_longer_sells(api, client):
    def lengths() -> list[str]:
        return [p.attr("length") for p in exported_tariff(api).one("price").all("period")]

    assert lengths() == ["1", "3", "12"]

    edit_tariff(client, prices={1: 10, 12: 100})

    assert lengths() == ["1", "12"]


def test_pricelist_export_shows_an_os_template_added_after_it_was_read(api, client):
    def templates() -> list[str]:
        (ostempl,) = [
            p for p in exported_tariff(api).all("itemtypeparam") if p["intname"] == "ostempl"
        ]
        return [v["intname"] for v in ostempl.all("itemtypeparamvalue")]

    assert templates() == ["debian-12", "centos-7"]

    edit_tariff(client, ostempl=["debian-12", "centos-7", "ubuntu-24.04"])

    assert templates() == ["debian-12", "centos-7", "ubuntu-24.04"]


def test_pricelist_export_lists_a_tariff_the_seller_added_after_it_was_read(api, app):
    from simulator.app import seller_of
    from simulator.world import parse_tariff

    assert [t["id"] for t in api("pricelist.export", None).all("pricelist")] == ["5", "6", "7", "8"]

    seller_of(app).add_tariff(
        parse_tariff(9, {"intname": "web-2", "type": "vhost", "prices": {1: 5}}, "t")
    )

    assert [t["id"] for t in api("pricelist.export", None).all("pricelist")][-1] == "9"


@pytest.mark.parametrize("out", ["xml", "json", "sjson", "bjson", "devel"])
def test_a_read_with_sok_says_ok_and_the_next_read_without_it_gets_the_same_bytes(session, out):
    def export(**params) -> bytes:
        data = {"func": "pricelist.export", "out": out, **params}
        return session.post("http://simulator/billmgr", data=data).content

    first = export()
    with_sok = export(sok="ok")

    assert b"ok" not in first and b"ok" in with_sok
    assert export() == first


# -- the order wizard --------------------------------------------------------------------------


def test_the_first_order_step_offers_the_datacenters_and_the_tariffs_as_tariflist(api):
    form = api("vds.order")

    assert form.slist("datacenter") == ["1"]
    (tariflist,) = form.all("list")
    assert tariflist.attr("name") == "tariflist"
    rows = tariflist.all("elem")
    assert [(r["pricelist"], r["desc"]) for r in rows][0] == ("5", "VDS-1")
    assert rows[0]["price"] == "10.00 EUR / monthly"


def test_an_unknown_datacenter_is_refused_naming_it(api):
    assert api("vds.order", datacenter=7).error()[:2] == ("value", "datacenter")


def test_the_order_form_gives_templates_their_family_and_software_the_template_it_needs(api):
    form = api("vds.order.param", pricelist=5)

    (ostempl,) = [s for s in form.all("slist") if s.attr("name") == "ostempl"]
    assert [(v.attr("key"), v.attr("valuegroup")) for v in ostempl.all("val")] == [
        ("debian-12", "debian"),
        ("centos-7", "centos"),
    ]
    (recipe,) = [s for s in form.all("slist") if s.attr("name") == "recipe"]
    assert [(v.attr("key"), v.attr("depend")) for v in recipe.all("val")] == [
        ("lamp", "debian-12"),
        ("lamp", "centos-7"),
    ]


def test_the_order_form_prices_what_it_is_asked_in_its_summaries(api, client):
    with nothing_changes(client):
        form = api("vds.order.param", pricelist=5, period=3, addon_12="on")

    lists = {lst.attr("name"): lst.all("elem") for lst in form.all("list")}
    assert {r["label"]: r["cost"] for r in lists["pricelist_summary"]} == {
        "VDS-1 (quarterly)": "27.00",
        "backup": "6.00",
    }
    (total,) = lists["total_summary"]
    assert (total["cost"], total["currency"]) == ("33.00", "EUR")


def test_v2_order_pricelist_lists_each_tariff_with_its_datacenter_and_prices(api):
    form = api("v2.vds.order.pricelist")

    (pricelist,) = form.all("list")
    first = pricelist.all("elem")[0]
    assert (first["id"], first["title"]) == ("5", "VDS-1")
    assert first.one("datacenter")["id"] == "1"
    prices = [(p["period"], p["cost"], p["currency"]) for p in first.one("prices").all("price")]
    assert prices == [("1", "10.00", "EUR"), ("3", "27.00", "EUR"), ("12", "100.00", "EUR")]
    assert form.slist("datacenter") == ["1"]


@pytest.mark.parametrize("func", ["vds.order", "v2.vds.order.pricelist"])
def test_the_wizard_lists_only_tariffs_of_its_type(api, func):
    form = api(func.replace("vds", "vhost"))

    (listed,) = form.all("list")
    assert [r.all("pricelist") and r["pricelist"] or r["id"] for r in listed.all("elem")] == ["8"]


def test_a_tariffs_description_from_the_world_is_exported(api, client):
    client.post("/_sim/actions/edit_tariff", json={"id": 5, "description": "2 GB, NVMe"})

    assert api("pricelist.export", None, pricelist=5).one("pricelist")["description"] == (
        "2 GB, NVMe"
    )
