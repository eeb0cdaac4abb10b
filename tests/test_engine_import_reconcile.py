"""Service import and assign, and reconcile: the seller's services read and drift repaired."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reseller.client import SellerClient
from reseller.engine import Engine
from reseller.errors import SellerUnavailable
from tests.helpers import RESELLER, active, connect, dump, order, refused, remote_of


@pytest.fixture
def sim_world(sim_world) -> dict:
    """The engine tests' seller, with a dedicated server tariff too."""
    sim_world["tariffs"][10] = {"intname": "dedic-1", "type": "dedic", "prices": {1: 10}}
    return sim_world


def bought(sim, tariff: int = 5, **params) -> int:
    """A service bought on the seller directly by the reseller's account; its seller id."""
    return sim.act("create_service", account="reseller", tariff=tariff, **params)["id"]


def listed(engine, sim, itemtype: str = "vds", mask: str = "*") -> list[int]:
    return [row["remote_id"] for row in engine.import_services("seller", itemtype, mask, sim.now)]


def alice(engine) -> Decimal:
    return engine.client("alice").balance


# -- service import --------------------------------------------------------------------------


def test_the_import_lists_the_sellers_services_of_a_type_by_name_mask(engine, module, sim, store):
    web1, web2 = bought(sim, hostname="web1"), bought(sim, hostname="web2")
    bought(sim, hostname="db1")
    bought(sim, tariff=8, domain="web.example")

    assert listed(engine, sim, mask="web*") == [web1, web2]
    assert [r["name"] for r in store.listed_services()] == ["web1", "web2"]
    assert store.items() == []


@pytest.mark.parametrize(
    ("module_name", "itemtype", "error"),
    [("seller", "domain", "value"), ("nowhere", "vds", "unknown")],
)
def test_an_import_of_an_unknown_type_or_module_is_refused(
    engine, module, sim, store, module_name, itemtype, error
):
    with refused(store, error):
        engine.import_services(module_name, itemtype, "*", sim.now)


def test_an_import_while_the_seller_is_down_is_unavailable_and_changes_nothing(
    engine, module, sim, store
):
    bought(sim)
    sim.fault("down")

    with refused(store, "unavailable"):
        engine.import_services("seller", "vds", "*", sim.now)


def test_an_assigned_service_copies_the_sellers_and_charges_no_one(engine, module, sim, store):
    remote = bought(sim, ip="10.0.0.9", hostname="web1")
    sim.act("set_addon", service=remote, addon="panel", value="ispmanager")
    sim.act("suspend", service=remote)
    listed(engine, sim)
    seller_balance = sim.balance()

    item = engine.assign(remote, "alice", sim.now)

    service = store.item(item)
    assert (service.remote_id, service.status, service.expiredate, service.period) == (
        remote,
        3,
        "2026-02-01",
        1,
    )
    assert store.tariff_by_id(service.pricelist).intname == "5-vds-1"
    assert store.item(item).addons == {"ram": "1024", "backup": "off", "panel": "ispmanager"}
    assert store.item(item).ips == ["10.0.0.9"]
    assert store.item(item).params["hostname"] == "web1"
    assert alice(engine) == 500 and store.expenses() == []
    assert sim.balance() == seller_balance
    assert store.operations(item) == []


def test_events_of_an_assigned_service_are_applied_to_it(engine, module, sim, store):
    remote = bought(sim)
    listed(engine, sim)
    item = engine.assign(remote, "alice", sim.now)

    sim.act("suspend", service=remote)
    engine.checkevent("seller", sim.now)

    assert store.item(item).status == 3


def test_a_service_already_linked_cannot_be_assigned_again(engine, module, sim, store):
    remote = bought(sim)
    listed(engine, sim)
    engine.assign(remote, "alice", sim.now)

    with refused(store, "exists") as caught:
        engine.assign(remote, "bob", sim.now)

    assert "already linked" in caught.value.message


def test_a_vps_whose_ip_a_local_service_has_cannot_be_assigned(engine, tariff, sim, store):
    item = active(engine, sim)
    (ip,) = store.item(item).ips
    remote = bought(sim, ip=ip)
    listed(engine, sim)

    with refused(store, "exists") as caught:
        engine.assign(remote, "alice", sim.now)

    assert f"service {item} already has IP {ip}" in caught.value.message


def test_a_vps_whose_ip_only_a_deleted_service_had_can_be_assigned(engine, tariff, sim, store):
    item = active(engine, sim)
    (ip,) = store.item(item).ips
    engine.change_status(item, "close", sim.now)
    engine.checkevent("seller", sim.now)
    remote = bought(sim, ip=ip)
    listed(engine, sim)

    assert store.item(engine.assign(remote, "alice", sim.now)).remote_id == remote


def test_web_hosting_whose_username_a_local_service_has_cannot_be_assigned(
    engine, module, sim, store
):
    first, second = bought(sim, tariff=8), bought(sim, tariff=8)
    listed(engine, sim, "vhost")
    engine.assign(first, "alice", sim.now)
    username = sim.service(first)["params"]["username"]
    sim.act("set_param", service=second, name="username", value=username)

    with refused(store, "exists") as caught:
        engine.assign(second, "alice", sim.now)

    assert f"username {username}" in caught.value.message


def test_a_licence_for_the_same_ip_and_name_cannot_be_assigned_but_another_can(
    engine, module, sim, store
):
    first = bought(sim, tariff=9, ip="10.0.0.5", licname="isp-1")
    same = bought(sim, tariff=9, ip="10.0.0.5", licname="isp-1")
    other = bought(sim, tariff=9, ip="10.0.0.5", licname="isp-2")
    listed(engine, sim, "soft")
    engine.assign(first, "alice", sim.now)

    with refused(store, "exists") as caught:
        engine.assign(same, "alice", sim.now)

    assert "licence isp-1 on 10.0.0.5" in caught.value.message
    assert engine.assign(other, "alice", sim.now)


# -- what is already ours: the remoteid our order sent, and the duplicate rule by type --------


def test_a_service_our_order_made_whose_reply_was_lost_is_neither_listed_nor_assignable(
    engine, tariff, sim, store
):
    sim.fault("lose_reply")
    item = order(engine, sim)
    (remote,) = (s["id"] for s in sim.services())
    assert store.item(item).remote_id is None

    assert listed(engine, sim) == []
    with refused(store, "exists") as caught:
        engine.assign(remote, "bob", sim.now)

    assert f"ordered by this reseller for service {item}" in caught.value.message
    sim.advance("1m")
    engine.run_due(sim.now)
    assert store.item(item).remote_id == remote
    assert len(sim.services()) == 1 and len(sim.calls("vds.order.param")) == 1
    assert [i.id for i in store.items()] == [item]


def test_a_service_our_order_made_stays_ours_after_the_order_gave_up(engine, tariff, sim, store):
    sim.fault("lose_reply")
    item = order(engine, sim)
    (remote,) = (s["id"] for s in sim.services())
    # every look-up of the lost order fails until the operation gives up, outcome unknown
    sim.post("/faults", {"kind": "error", "times": 1000, "func": "vds"})
    operation = store.latest_operation(item)
    while operation.state == "running":
        sim.to(operation.next_try)
        engine.run_due(sim.now)
        operation = store.latest_operation(item)
    assert (operation.state, operation.outcome) == ("failed", "unknown")
    sim.clear_faults()

    assert listed(engine, sim) == []
    with refused(store, "exists") as caught:
        engine.assign(remote, "bob", sim.now)

    assert f"ordered by this reseller for service {item}" in caught.value.message


def test_a_remoteid_that_names_our_service_on_another_module_is_not_ours_there(
    engine, tariff, sim, store
):
    item = active(engine, sim)
    connect(engine, sim, name="second", login="second", password="second-pw")
    theirs = sim.act("create_service", account="second", tariff=7, remoteid=str(item))["id"]

    rows = engine.import_services("second", "vds", "*", sim.now)

    assert [row["remote_id"] for row in rows] == [theirs]
    assert store.item(engine.assign(theirs, "bob", sim.now)).remote_id == theirs


@pytest.mark.parametrize("itemtype", ["vds", "dedic"])
def test_a_server_sharing_an_ip_with_one_of_ours_is_neither_listed_nor_assignable(
    engine, module, sim, store, itemtype
):
    """A dedicated server is told apart by its IP addresses, as a VPS is."""
    seller_tariff = 5 if itemtype == "vds" else 10
    intname = engine.import_tariff("seller", seller_tariff, sim.now)
    item = active(engine, sim, tariff=intname)
    (ip,) = store.item(item).ips
    same, other = bought(sim, seller_tariff, ip=ip), bought(sim, seller_tariff, ip="10.9.9.9")

    assert listed(engine, sim, itemtype) == [other]
    with refused(store, "exists") as caught:
        engine.assign(same, "alice", sim.now)

    assert ip in caught.value.message and f"service {item}" in caught.value.message
    assert store.item(engine.assign(other, "alice", sim.now)).ips == ["10.9.9.9"]


def test_web_hosting_with_the_username_of_a_hosting_account_we_ordered_is_not_assignable(
    engine, module, sim, store
):
    """The seller gives a hosting account its username when it sets it up, and only its full
    form shows it: the engine learns it from the seller for its own services too."""
    engine.import_tariff("seller", 8, sim.now)
    item = order(engine, sim, tariff="8-web-1", domain_name="shop.example")
    engine.checkevent("seller", sim.now)
    username = sim.service(remote_of(engine, item))["params"]["username"]
    copy, namesake = bought(sim, tariff=8), bought(sim, tariff=8, domain="shop.example")
    sim.act("set_param", service=copy, name="username", value=username)

    assert listed(engine, sim, "vhost") == [namesake]
    with refused(store, "exists") as caught:
        engine.assign(copy, "alice", sim.now)

    assert f"username {username}" in caught.value.message
    assert engine.assign(namesake, "alice", sim.now)  # one domain, its own username


def licence_we_ordered(engine, sim) -> int:
    """A licence alice ordered for 10.0.0.5 under the name isp-1, set up by the seller."""
    engine.import_tariff("seller", 9, sim.now)
    item = order(engine, sim, tariff="9-isp-lite", ip="10.0.0.5", licname="isp-1")
    engine.checkevent("seller", sim.now)
    return item


def test_a_licence_we_ordered_for_an_ip_cannot_be_assigned_again_but_one_for_another_can(
    engine, module, sim, store
):
    item = licence_we_ordered(engine, sim)
    same = bought(sim, tariff=9, ip="10.0.0.5", licname="isp-1")
    moved = bought(sim, tariff=9, ip="10.0.0.6", licname="isp-1")

    with refused(store, "exists") as caught:
        engine.assign(same, "alice", sim.now)

    assert f"service {item} already has licence isp-1 on 10.0.0.5" in caught.value.message
    assert engine.assign(moved, "alice", sim.now)


def test_the_import_leaves_out_a_licence_for_the_ip_and_name_of_one_we_ordered(
    engine, module, sim, store
):
    licence_we_ordered(engine, sim)
    bought(sim, tariff=9, ip="10.0.0.5", licname="isp-1")
    moved = bought(sim, tariff=9, ip="10.0.0.6", licname="isp-1")

    assert listed(engine, sim, "soft") == [moved]


@pytest.mark.parametrize(("remote", "client"), [(999, "alice"), (None, "carol")])
def test_an_assign_of_an_unknown_service_or_to_an_unknown_client_is_refused(
    engine, module, sim, store, remote, client
):
    remote = remote or bought(sim)
    listed(engine, sim)

    with refused(store, "unknown"):
        engine.assign(remote, client, sim.now)


def test_an_assign_whose_tariff_cannot_be_imported_writes_nothing(engine, module, sim, store):
    engine.configure(order_periods=[1])
    remote = bought(sim)
    listed(engine, sim)

    with refused(store, "period"):
        engine.assign(remote, "alice", sim.now)


# -- reconcile -------------------------------------------------------------------------------


def test_reconcile_repairs_a_service_whose_events_were_lost_and_completes_its_order(
    engine, tariff, sim, store
):
    item = order(engine, sim)
    sim.fault("drop_events")
    engine.checkevent("seller", sim.now)
    assert store.item(item).status == 1

    report = engine.reconcile("seller", sim.now)

    service, remote = store.item(item), sim.service(remote_of(engine, item))
    assert (service.status, service.expiredate) == (2, remote["expires"])
    assert store.item(item).ips == remote["ips"]
    assert store.latest_operation(item).state == "done"
    assert f"service {item}: status ordered -> active" in report
    assert any("(open) done" in line for line in report)


def test_reconcile_repairs_status_addons_and_ips_changed_by_the_seller(engine, tariff, sim, store):
    item = active(engine, sim)
    remote = remote_of(engine, item)
    sim.act("suspend", service=remote)
    sim.act("add_ip", service=remote, ip="10.0.0.8")
    sim.act("set_addon", service=remote, addon="ram", value=4096)
    sim.fault("drop_events")
    engine.checkevent("seller", sim.now)

    report = engine.reconcile("seller", sim.now)

    assert store.item(item).status == 3
    assert store.item(item).addons["ram"] == "4096"
    assert store.item(item).ips == sim.service(remote)["ips"]
    assert [line.split(": ")[1].split(" ")[0] for line in report] == ["status", "add-on", "IPs"]


@pytest.mark.parametrize(
    ("do", "kind"),
    [
        (lambda e, i, now: e.change_status(i, "suspend", now), "suspend"),
        (lambda e, i, now: e.prolong(i, 1, now), "prolong"),
        (lambda e, i, now: e.set_addons(i, {"backup": "on"}, now), "setparam"),
    ],
)
def test_reconcile_completes_an_operation_whose_confirming_event_was_lost(
    engine, tariff, sim, store, do, kind
):
    item = active(engine, sim)
    operation = do(engine, item, sim.now)
    sim.fault("drop_events")
    engine.checkevent("seller", sim.now)
    assert store.operation(operation).state == "manual"

    report = engine.reconcile("seller", sim.now)

    assert store.operation(operation).state == "done"
    assert f"service {item}: operation {operation} ({kind}) done" in report
    remote = sim.service(remote_of(engine, item))
    assert store.item(item).expiredate == remote["expires"]


def test_a_second_reconcile_finds_nothing_and_changes_nothing(engine, tariff, sim, store):
    item = active(engine, sim)
    sim.act("suspend", service=remote_of(engine, item))
    sim.fault("drop_events")
    engine.checkevent("seller", sim.now)
    engine.reconcile("seller", sim.now)
    before = dump(store)

    assert engine.reconcile("seller", sim.now) == []
    assert dump(store) == before


def test_a_reconcile_while_the_seller_is_down_is_unavailable_and_changes_nothing(
    engine, tariff, sim, store
):
    item = active(engine, sim)
    sim.act("suspend", service=remote_of(engine, item))
    sim.fault("drop_events")
    engine.checkevent("seller", sim.now)
    sim.fault("down")

    with refused(store, "unavailable"):
        engine.reconcile("seller", sim.now)


class FailsOnSecondRead(SellerClient):
    """A seller that stops answering after it has shown one service in full."""

    reads = 0

    def service(self, type, service_id):
        FailsOnSecondRead.reads += 1
        if FailsOnSecondRead.reads == 2:
            raise SellerUnavailable("cannot reach the seller: connection reset")
        return super().service(type, service_id)


def test_a_reconcile_cut_off_half_way_changes_nothing(store, http, sim):
    engine = Engine(
        store, lambda url, login, password: FailsOnSecondRead(url, login, password, http)
    )
    engine.configure(RESELLER["currency"], RESELLER["rates"])
    engine.add_client("alice", 500)
    connect(engine, sim)
    engine.import_tariff("seller", 5, sim.now)
    first, second = active(engine, sim), active(engine, sim)
    for item in (first, second):
        sim.act("suspend", service=remote_of(engine, item))
    sim.fault("drop_events")
    engine.checkevent("seller", sim.now)
    FailsOnSecondRead.reads = 0

    with refused(store, "unavailable"):
        engine.reconcile("seller", sim.now)


def test_a_linked_service_the_seller_no_longer_shows_is_reported(engine, tariff, sim, store):
    item = active(engine, sim)
    store.update_item(item, remote_id=999)

    (line,) = engine.reconcile("seller", sim.now)

    assert line.startswith(f"service {item}: seller service 999 unreadable (missed")


def test_a_reconcile_of_an_unknown_module_is_refused(engine, module, sim, store):
    with refused(store, "unknown"):
        engine.reconcile("nowhere", sim.now)


# -- lost polls and the daily reconcile --------------------------------------------------------


def lose_next_poll(sim, kind: str = "lose_reply") -> None:
    """The next read of the feed: the seller hands its events over and the reply is lost
    (`lose_reply`), or no reply comes before the timeout (`slow`)."""
    sim.post("/faults", {"kind": kind, "times": 1, "func": "itemevent"})


def test_a_poll_whose_reply_was_lost_leaves_its_mark_and_the_next_poll_reconciles_first(
    engine, tariff, sim, store
):
    item = order(engine, sim)
    lose_next_poll(sim)
    with pytest.raises(SellerUnavailable):
        engine.checkevent("seller", sim.now)
    assert store.poll_is_open(store.module("seller").id)
    assert store.item(item).status == 1  # the feed handed its event over, and it never came
    calls = len(sim.calls())

    report = engine.checkevent("seller", sim.now)

    assert f"service {item}: status ordered -> active" in report.reconciled
    assert (report.fetched, report.applied) == (0, 0)
    assert store.item(item).status == 2
    assert store.latest_operation(item).state == "done"
    assert not store.poll_is_open(store.module("seller").id)
    funcs = [c["func"] for c in sim.calls()[calls:] if c["func"] != "auth"]
    assert funcs.index("vds.edit") < funcs.index("itemevent")
    assert engine.checkevent("seller", sim.now).reconciled is None


@pytest.mark.parametrize("kind", ["lose_reply", "slow"])
def test_the_cron_tick_after_a_lost_or_timed_out_poll_reconciles_that_module_first(
    engine, tariff, sim, store, kind
):
    item = active(engine, sim)
    sim.act("suspend", service=remote_of(engine, item))
    lose_next_poll(sim, kind)

    failed = engine.cron(sim.now).modules["seller"]
    sim.advance("5m")
    tick = engine.cron(sim.now).modules["seller"]

    assert failed.error and failed.events is None
    assert f"service {item}: status active -> suspended" in (tick.events.reconciled or [])
    assert "reconciled first" in tick.events.summary()
    assert store.item(item).status == 3


def test_the_cron_reconciles_every_module_at_the_first_tick_of_each_day(engine, tariff, sim, store):
    connect(engine, sim, name="second", login="second", password="second-pw")
    item = active(engine, sim)
    sim.act("suspend", service=remote_of(engine, item))
    sim.fault("drop_events")
    engine.checkevent("seller", sim.now)  # the suspension's event is lost for good

    sim.to(sim.now.replace(hour=23, minute=55))
    evening = engine.cron(sim.now)
    sim.advance("5m")
    midnight = engine.cron(sim.now)
    sim.advance("5m")
    after = engine.cron(sim.now)

    assert [t.reconciled for t in evening.modules.values()] == [None, None]
    assert store.item(item).status == 3
    assert f"service {item}: status active -> suspended" in midnight.modules["seller"].reconciled
    assert midnight.modules["second"].reconciled == []
    assert [t.reconciled for t in after.modules.values()] == [None, None]


def test_a_day_whose_midnight_tick_was_missed_is_reconciled_at_its_first_tick(
    engine, tariff, sim, store
):
    item = active(engine, sim)
    sim.act("suspend", service=remote_of(engine, item))
    sim.fault("drop_events")
    engine.checkevent("seller", sim.now)

    sim.to(sim.now.replace(day=3, hour=7, minute=35))  # the engine was down for two days
    first = engine.cron(sim.now).modules["seller"]
    sim.advance("5m")

    assert f"service {item}: status active -> suspended" in first.reconciled
    assert engine.cron(sim.now).modules["seller"].reconciled is None


def up_to_midnight_with_events_lost(engine, sim) -> None:
    """The events of the changes so far lost for good, and the day's last cron tick run: the
    clock stands at midnight, where the next tick reconciles."""
    sim.fault("drop_events")
    engine.checkevent("seller", sim.now)
    sim.to(sim.now.replace(hour=23, minute=55))
    engine.cron(sim.now)
    sim.advance("5m")


def test_the_daily_reconcile_reads_in_full_only_the_services_whose_list_rows_differ(
    engine, tariff, sim, store
):
    items = [active(engine, sim) for _ in range(3)]
    sim.act("suspend", service=remote_of(engine, items[1]))
    up_to_midnight_with_events_lost(engine, sim)  # the suspension's event among them
    calls = len(sim.calls())

    midnight = engine.cron(sim.now).modules["seller"]

    reads = [c for c in sim.calls()[calls:] if c["func"] in ("vds", "vds.edit")]
    assert [(c["func"], c["params"].get("elid")) for c in reads] == [
        ("vds", None),
        ("vds.edit", str(remote_of(engine, items[1]))),
    ]
    assert midnight.reconciled == [f"service {items[1]}: status active -> suspended"]


def test_the_daily_reconcile_compares_a_rows_domain_username_licence_name_and_ip_with_ours(
    engine, tariff, sim, store
):
    engine.import_tariff("seller", 8, sim.now)
    engine.import_tariff("seller", 9, sim.now)
    hosting = order(engine, sim, tariff="8-web-1", domain_name="shop.example")
    renamed = order(engine, sim, tariff="9-isp-lite", ip="10.0.0.5", licname="isp-1")
    licence = order(engine, sim, tariff="9-isp-lite", ip="10.0.0.6", licname="isp-2")
    sim.advance("10m")  # the hosting account is set up
    engine.checkevent("seller", sim.now)
    assert {"domain", "username"} <= store.item(hosting).params.keys()
    sim.act("set_param", service=remote_of(engine, renamed), name="licname", value="isp-9")
    up_to_midnight_with_events_lost(engine, sim)
    calls = len(sim.calls())

    midnight = engine.cron(sim.now).modules["seller"]

    reads = [(c["func"], c["params"].get("elid")) for c in sim.calls()[calls:]]
    assert [r for r in reads if r[0] in ("vhost", "soft")] == [("soft", None), ("vhost", None)]
    assert [r for r in reads if r[0].endswith(".edit")] == [
        ("soft.edit", str(remote_of(engine, renamed)))
    ]
    assert store.item(renamed).params["licname"] == "isp-9"
    assert store.item(licence).params == {"ip": "10.0.0.6", "licname": "isp-2"}
    assert midnight.reconciled == []


def test_a_drift_no_list_row_shows_waits_for_a_reconcile_that_reads_every_form(
    engine, tariff, sim, store
):
    item = active(engine, sim)
    sim.act("set_param", service=remote_of(engine, item), name="hostname", value="web9")
    up_to_midnight_with_events_lost(engine, sim)

    assert engine.cron(sim.now).modules["seller"].reconciled == []
    assert "hostname" not in store.item(item).params

    engine.reconcile("seller", sim.now)

    assert store.item(item).params["hostname"] == "web9"


def test_the_daily_reconcile_reads_each_service_whose_row_shows_another_expiry_than_ours(
    engine, tariff, sim, store
):
    monthly, quarterly = active(engine, sim), active(engine, sim, period=3)
    same = active(engine, sim)
    shown = {item: store.item(item).expiredate for item in (monthly, quarterly)}
    store.update_item(monthly, expiredate=shown[quarterly])  # as a lost event would leave it
    store.update_item(quarterly, expiredate=shown[monthly])
    up_to_midnight_with_events_lost(engine, sim)
    calls = len(sim.calls())

    midnight = engine.cron(sim.now).modules["seller"]

    reads = [c["params"].get("elid") for c in sim.calls()[calls:] if c["func"] == "vds.edit"]
    assert reads == [str(remote_of(engine, monthly)), str(remote_of(engine, quarterly))]
    assert {item: store.item(item).expiredate for item in shown} == shown
    assert not [line for line in midnight.reconciled if f"service {same}:" in line]


def test_the_daily_reconcile_leaves_the_lists_kept_rows_as_the_seller_shows_them(
    engine, tariff, module, sim, store
):
    items = [active(engine, sim) for _ in range(3)]
    sim.act("suspend", service=remote_of(engine, items[1]))
    sim.act("add_ip", service=remote_of(engine, items[2]), ip="203.0.113.99")
    up_to_midnight_with_events_lost(engine, sim)
    seller = engine.seller(engine.module(module))
    assert engine.cron(sim.now).modules["seller"].reconciled

    again = seller.services("vds")

    fresh = SellerClient(seller.url, seller.login, seller._password, seller.http)
    assert again == fresh.services("vds")
