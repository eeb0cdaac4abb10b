"""The plugin's `reseller_engine`: the engine on a database of the test's, beside `billmanager`,
on the seller's clock; in-process and over the loopback socket alike."""

from __future__ import annotations

from datetime import datetime

import pytest

from reseller.errors import ResellerError
from tests.conftest import WORLD

BOTH_WAYS = pytest.mark.parametrize("billmanager", ["socket", "in_process"], indirect=True)
SCENARIO_WORLD = {
    "start": "2026-03-01T00:00:00Z",
    "seller": WORLD,
    "reseller": {
        "currency": "EUR",
        "clients": {"alice": {"balance": 50}},
        "modules": {"seller": {"account": "reseller", "password": "s3cret"}},
    },
}


@pytest.fixture
def connected(reseller_engine):
    """Module `seller` on account `reseller`, client alice with 50, seller tariff 7 imported."""
    reseller_engine.configure("EUR")
    reseller_engine.add_client("alice", 50)
    reseller_engine.connect("seller", "reseller", "s3cret")
    reseller_engine.import_tariff("seller", 7)
    return reseller_engine


@pytest.mark.billmanager(world=WORLD)
@BOTH_WAYS
def test_a_service_the_sellers_staff_set_up_is_active_after_the_engines_poll(
    billmanager, connected
):
    item = connected.order("alice", "7-vds-manual", 1)
    remote = connected.item(item).remote_id
    assert connected.store.latest_operation(item).state == "manual"
    assert billmanager.service(remote)["status"] == "ordered"

    billmanager.activate(remote)
    before = connected.item(item).status_name
    report = connected.cron()

    assert (before, connected.item(item).status_name) == ("ordered", "active")
    assert report.modules["seller"].error is None
    assert connected.client("alice").balance == 40
    assert billmanager.balance("reseller") == 90
    assert [c["func"] for c in billmanager.calls(func="itemevent")] == ["itemevent"]


@pytest.mark.billmanager(world=WORLD)
@BOTH_WAYS
def test_advance_runs_the_cron_at_each_tick_so_a_delayed_set_up_is_seen_in_time(
    billmanager, connected
):
    connected.import_tariff("seller", 6)  # set up by the seller 10 minutes after the order
    item = connected.order("alice", "6-vds-later", 1)

    connected.advance("5m")
    assert connected.item(item).status_name == "ordered"
    connected.advance("10m")

    assert connected.item(item).status_name == "active"
    assert billmanager.now == connected.now == datetime(2026, 1, 1, 0, 15)
    polls = [c["at"] for c in billmanager.calls(func="itemevent")]
    assert polls == ["2026-01-01 00:05:00", "2026-01-01 00:10:00", "2026-01-01 00:15:00"]


@pytest.mark.billmanager(world=SCENARIO_WORLD)
def test_a_scenario_world_sets_up_both_sides_on_its_start(billmanager, reseller_engine):
    intname = reseller_engine.import_tariff("seller", 5)

    assert reseller_engine.client("alice").balance == 50
    assert [m.url for m in reseller_engine.store.modules()] == [billmanager.api_url]
    assert reseller_engine.now == datetime(2026, 3, 1)
    assert reseller_engine.tariff(intname).prices[1] == 10


@pytest.mark.billmanager(world=SCENARIO_WORLD)
def test_engine_calls_happen_at_the_sellers_time_unless_given_one(billmanager, reseller_engine):
    billmanager.advance("1h")

    reseller_engine.topup("alice", 5)
    reseller_engine.topup("alice", 1, now=datetime(2026, 3, 2))

    dates = [e.date.replace("T", " ")[:16] for e in reseller_engine.store.expenses()]
    assert dates == ["2026-03-01 01:00", "2026-03-02 00:00"]


@pytest.mark.billmanager(world=WORLD)
@pytest.mark.parametrize("name", ["first", "second"])  # the second sees none of the first's
def test_each_test_gets_an_engine_on_a_database_of_its_own(reseller_engine, tmp_path, name):
    assert reseller_engine.store.path == str(tmp_path / "reseller.db")
    assert reseller_engine.store.clients() == []

    reseller_engine.add_client(name, 1)

    assert [c.name for c in reseller_engine.store.clients()] == [name]


@pytest.mark.billmanager(world=WORLD)
def test_a_wrong_password_is_refused_by_the_seller_and_connects_nothing(reseller_engine):
    with pytest.raises(ResellerError) as refused:
        reseller_engine.connect("seller", "reseller", "wrong")

    assert refused.value.type == "auth"
    assert reseller_engine.store.modules() == []
