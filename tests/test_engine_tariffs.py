"""Tariffs: import from the seller, `pricelist.sync`, and the operator's own prices."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from reseller.client import SellerClient
from reseller.engine import Engine
from tests.helpers import PASSWORD, SIM_WORLD, URL, dump, order, refused

ADDONS = SIM_WORLD["tariffs"][5]["addons"]


def view(store, intname: str) -> dict:
    """A tariff as the operator sees it: prices, add-ons, items and templates."""
    plan = store.tariff(intname)
    return {
        "prices": plan.prices,
        "addons": {n: "enabled" if s.enabled else "disabled" for n, s in plan.addons.items()},
        "addon_prices": {
            n: s.items if s.type == "enumeration" else s.price for n, s in plan.addons.items()
        },
        "ostempl": plan.values("ostempl"),
        "recipe": plan.values("recipe"),
    }


def module_values(store, param: str) -> set[str]:
    """The values of `param` the processing module holds (`paramvalue`), from the store's dump:
    the store has no method that reads them back."""
    row = re.compile(r'^INSERT INTO "paramvalue" VALUES\(\d+,\'(\w+)\',\'([^\']*)\'\);$')
    found = (row.match(line) for line in store.dump())
    return {m.group(2) for m in found if m and m.group(1) == param}


@pytest.fixture
def bare(store, http):
    """An engine with no main currency, no rates and a module `seller`."""
    bare = Engine(store, lambda url, login, password: SellerClient(url, login, password, http))
    bare.connect("seller", URL, "reseller", PASSWORD, [], None)
    return bare


def edit(sim, **changes) -> None:
    sim.act("edit_tariff", id=5, **changes)


# -- import ----------------------------------------------------------------------------------


def test_a_tariff_is_imported_as_seller_id_dash_intname_with_prices_converted(
    engine,
    module,
    sim,
    store,
):
    assert engine.import_tariff(module, 5, sim.now) == "5-vds-1"

    plan = store.tariff("5-vds-1")
    assert (plan.name, plan.itemtype, plan.remote_id, plan.currency) == (
        "VDS-1",
        "vds",
        5,
        "EUR",
    )
    assert view(store, "5-vds-1")["prices"] == {
        1: Decimal("11.00"),
        3: Decimal("29.70"),
        12: Decimal("110.00"),
    }


def test_every_addon_is_imported_enabled_with_converted_prices_and_its_items(tariff, store):
    seen = view(store, tariff)

    assert seen["addons"] == {"ram": "enabled", "backup": "enabled", "panel": "enabled"}
    assert seen["addon_prices"] == {
        "ram": Decimal("0.0022"),
        "backup": Decimal("2.20"),
        "panel": {"none": Decimal("0.00"), "ispmanager": Decimal("5.50")},
    }
    ram = store.tariff(tariff).addons["ram"]
    assert (ram.remote_id, ram.included, ram.max) == (11, 1024, 8192)


def test_os_templates_are_held_by_the_module_and_assigned_to_each_tariff_that_has_them(
    engine,
    tariff,
    sim,
    store,
):
    engine.import_tariff("seller", 7, sim.now)

    assert view(store, "5-vds-1")["ostempl"] == ["debian-12", "centos-7"]
    assert view(store, "7-vds-2")["ostempl"] == ["debian-12"]
    assert view(store, "5-vds-1")["recipe"] == ["lamp"]
    assert module_values(store, "ostempl") == {"debian-12", "centos-7"}


def test_a_tariff_in_the_main_currency_keeps_its_prices(engine, module, sim, store):
    engine.configure(currency="EUR")

    engine.import_tariff(module, 5, sim.now)

    assert view(store, "5-vds-1")["prices"][3] == Decimal("27.00")


def test_without_a_rate_for_the_sellers_currency_nothing_is_imported(bare, sim, store):
    bare.configure(currency="USD")

    with refused(store, "no_rate") as caught:
        bare.import_tariff("seller", 5, sim.now)

    assert "no exchange rate from EUR to USD" in caught.value.message


def test_without_a_main_currency_nothing_is_imported(bare, sim, store):
    with refused(store, "no_rate") as caught:
        bare.import_tariff("seller", 5, sim.now)

    assert "no main currency" in caught.value.message


def test_a_tariff_whose_periods_differ_from_the_order_periods_is_refused_naming_them(
    engine,
    module,
    sim,
    store,
):
    engine.configure(order_periods=[1, 3, 6])

    with refused(store, "period") as caught:
        engine.import_tariff(module, 5, sim.now)

    assert "missing [6]" in caught.value.message and "extra [12]" in caught.value.message


def test_a_tariff_with_exactly_the_order_periods_is_imported(engine, module, sim):
    engine.configure(order_periods=[12, 3, 1])

    assert engine.import_tariff(module, 5, sim.now) == "5-vds-1"


@pytest.mark.parametrize(
    ("module_name", "remote_id", "error"),
    [("seller", 99, "unknown"), ("nowhere", 5, "unknown"), ("seller", 5, "exists")],
)
def test_an_import_of_a_missing_or_imported_tariff_is_refused(
    engine,
    tariff,
    sim,
    store,
    module_name,
    remote_id,
    error,
):
    with refused(store, error):
        engine.import_tariff(module_name, remote_id, sim.now)


def test_an_import_while_the_seller_is_down_is_unavailable_and_writes_nothing(
    engine,
    module,
    sim,
    store,
):
    sim.fault("down")

    with refused(store, "unavailable"):
        engine.import_tariff(module, 5, sim.now)


# -- sync ------------------------------------------------------------------------------------


def test_a_sync_with_nothing_new_changes_nothing(engine, tariff, sim, store):
    before = dump(store)

    assert engine.sync_tariff(tariff, sim.now) == []
    assert dump(store) == before


def test_a_new_seller_addon_is_created_disabled_and_a_removed_one_deleted(
    engine,
    tariff,
    sim,
    store,
):
    addons = {k: v for k, v in ADDONS.items() if k != "backup"}
    edit(sim, addons={**addons, "disk": {"id": 14, "type": "integer", "unit_price": 1}})

    changes = engine.sync_tariff(tariff, sim.now)

    assert changes == ["add-on disk created, disabled", "add-on backup deleted"]
    assert view(store, tariff)["addons"] == {
        "ram": "enabled",
        "panel": "enabled",
        "disk": "disabled",
    }
    assert view(store, tariff)["addon_prices"]["disk"] == Decimal("1.1000")


def test_a_sync_keeps_the_prices_of_existing_addons(engine, tariff, sim, store):
    engine.set_price(tariff, addons={"backup": 3})
    edit(sim, addons={**ADDONS, "backup": {"id": 12, "type": "boolean", "price": 9}})

    assert engine.sync_tariff(tariff, sim.now) == []
    assert view(store, tariff)["addon_prices"]["backup"] == Decimal(3)


def test_a_sync_creates_new_enumeration_items_priced_and_deletes_removed_ones(
    engine,
    tariff,
    sim,
    store,
):
    panel = {"id": 13, "type": "enumeration", "items": {"ispmanager": 5, "cpanel": 10}}
    edit(sim, addons={**ADDONS, "panel": panel})

    changes = engine.sync_tariff(tariff, sim.now)

    assert changes == ["panel item cpanel created", "panel item none deleted"]
    assert view(store, tariff)["addon_prices"]["panel"] == {
        "ispmanager": Decimal("5.50"),
        "cpanel": Decimal("11.00"),
    }
    items = store.tariff(tariff).addons["panel"].item_ids
    assert items["cpanel"] != items["ispmanager"]


def test_a_sync_adds_new_templates_and_unassigns_removed_ones(engine, tariff, sim, store):
    edit(sim, ostempl=["debian-12", "ubuntu-24"], recipes=[])

    changes = engine.sync_tariff(tariff, sim.now)

    assert changes == ["ostempl ubuntu-24 added", "ostempl centos-7 removed", "recipe lamp removed"]
    assert view(store, tariff)["ostempl"] == ["debian-12", "ubuntu-24"]
    assert view(store, tariff)["recipe"] == []
    assert "ubuntu-24" in module_values(store, "ostempl")


def test_a_second_sync_changes_nothing(engine, tariff, sim, store):
    panel = {"id": 13, "type": "enumeration", "items": {"cpanel": 10}}
    edit(sim, ostempl=["ubuntu-24"], addons={"panel": panel, "disk": {"id": 14}})
    engine.sync_tariff(tariff, sim.now)
    after_first = dump(store)

    assert engine.sync_tariff(tariff, sim.now) == []
    assert dump(store) == after_first


def test_an_order_may_use_a_template_the_sync_added_but_not_one_it_removed(
    engine,
    tariff,
    sim,
    store,
):
    edit(sim, ostempl=["debian-12", "ubuntu-24"])
    engine.sync_tariff(tariff, sim.now)

    order(engine, sim, ostempl="ubuntu-24")
    with refused(store, "value") as caught:
        order(engine, sim, ostempl="centos-7")
    assert "centos-7" in caught.value.message


def test_a_sync_of_an_unknown_tariff_is_refused(engine, tariff, sim, store):
    with refused(store, "unknown"):
        engine.sync_tariff("5-vds-9", sim.now)


def test_a_sync_while_the_seller_is_down_is_unavailable_and_changes_nothing(
    engine,
    tariff,
    sim,
    store,
):
    edit(sim, ostempl=["ubuntu-24"])
    sim.fault("error")

    with refused(store, "unavailable"):
        engine.sync_tariff(tariff, sim.now)


# -- the operator's prices -------------------------------------------------------------------


def test_the_operator_sets_period_addon_and_item_prices(engine, tariff, store):
    engine.set_price(
        tariff, prices={2: 19, 1: "12.50"}, addons={"backup": 3, "panel": {"ispmanager": 6}}
    )

    seen = view(store, tariff)
    assert seen["prices"] == {
        1: Decimal("12.50"),
        2: Decimal(19),
        3: Decimal("29.70"),
        12: Decimal("110.00"),
    }
    assert seen["addon_prices"]["backup"] == Decimal(3)
    assert seen["addon_prices"]["panel"]["ispmanager"] == Decimal(6)


@pytest.mark.parametrize(
    ("prices", "addons", "error", "named"),
    [
        ({2: 19}, {"gpu": 1}, "unknown", "gpu"),
        ({2: 19}, {"panel": {"cpanel": 1}}, "unknown", "cpanel"),
        ({2: "nineteen"}, None, "value", "nineteen"),
        ({2: -19}, None, "value", "-19"),
        ({"two": 19}, None, "value", "two"),
        ({2: 19}, {"backup": "free"}, "value", "free"),
        ({2: 19}, {"backup": -1}, "value", "-1"),
    ],
)
def test_a_bad_price_is_refused_naming_it_and_no_price_changes(
    engine,
    tariff,
    store,
    prices,
    addons,
    error,
    named,
):
    with refused(store, error) as caught:
        engine.set_price(tariff, prices=prices, addons=addons)

    assert named in caught.value.message


def test_a_price_for_an_unknown_tariff_is_refused(engine, tariff, store):
    with refused(store, "unknown"):
        engine.set_price("9-nothing", prices={1: 1})


def test_a_new_seller_enumeration_is_created_disabled_with_its_items(engine, tariff, sim, store):
    os_panel = {"id": 15, "type": "enumeration", "items": {"plesk": 8, "cpanel": 10}}
    edit(sim, addons={**ADDONS, "os_panel": os_panel})

    assert engine.sync_tariff(tariff, sim.now) == ["add-on os_panel created, disabled"]
    assert view(store, tariff)["addons"]["os_panel"] == "disabled"
    assert view(store, tariff)["addon_prices"]["os_panel"] == {
        "plesk": Decimal("8.80"),
        "cpanel": Decimal("11.00"),
    }


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"rates": {"EUR": "lots"}}, "rate of EUR: 'lots' is not an amount"),
        ({"rates": {"EUR": 0}}, "rate of EUR: must be above 0"),
        ({"rates": {"EUR": -1.1}}, "rate of EUR: -1.1 is negative"),
        ({"currency": "EUR", "order_periods": [1, "x"]}, "order periods"),
    ],
)
def test_a_bad_setting_is_refused_and_none_of_the_settings_change(engine, store, settings, named):
    with refused(store, "value") as caught:
        engine.configure(**settings)

    assert named in caught.value.message


# -- the tariff as the cron reads it (by id, kept between reads) -----------------------------


def by_id(store, intname: str) -> dict:
    """A tariff as a prolongation or an event reads it: by the id its services hold."""
    plan = store.tariff_by_id(store.tariff(intname).id)
    return {
        "prices": plan.prices,
        "addons": sorted(plan.addons),
        "ostempl": plan.values("ostempl"),
    }


def test_a_price_the_operator_sets_is_what_the_next_read_by_id_shows(engine, tariff, store):
    by_id(store, tariff)

    engine.set_price(tariff, prices={1: "12.50"})

    assert by_id(store, tariff)["prices"][1] == Decimal("12.50")


def test_a_sync_is_what_the_next_read_by_id_shows(engine, tariff, sim, store):
    by_id(store, tariff)
    addons = {k: v for k, v in ADDONS.items() if k != "backup"}
    edit(sim, addons=addons, ostempl=["debian-12", "ubuntu-24"])

    engine.sync_tariff(tariff, sim.now)

    seen = by_id(store, tariff)
    assert seen["addons"] == ["panel", "ram"]
    assert seen["ostempl"] == ["debian-12", "ubuntu-24"]


def test_an_imported_tariff_is_read_by_its_id(engine, module, sim, store):
    assert store.tariff_by_id(1) is None

    engine.import_tariff(module, 5, sim.now)

    assert store.tariff_by_id(store.tariff("5-vds-1").id).intname == "5-vds-1"


def test_a_price_change_rolled_back_is_not_shown_by_a_read_by_id(engine, tariff, store):
    before = by_id(store, tariff)
    plan = store.tariff(tariff)

    with pytest.raises(RuntimeError), store.atomic():
        store.set_prices(plan.id, {1: Decimal(99)})
        assert by_id(store, tariff)["prices"][1] == Decimal(99)
        raise RuntimeError("undone")

    assert by_id(store, tariff) == before


def test_a_price_another_process_sets_is_what_the_next_read_by_id_shows(tmp_path):
    from reseller.store import Store

    path = str(tmp_path / "engine.db")
    mine, other = Store(path), Store(path)
    try:
        plan_id = mine.add_tariff("5-vds-1", "VDS-1", "vds", 1, 5, "EUR")
        mine.set_prices(plan_id, {1: Decimal(11)})
        assert mine.tariff_by_id(plan_id).prices == {1: Decimal(11)}

        other.set_prices(plan_id, {1: Decimal(12)})

        assert mine.tariff_by_id(plan_id).prices == {1: Decimal(12)}
    finally:
        mine.close()
        other.close()
