"""`checkevent`: the seller's event feed stored, applied in order once each, and the cron."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import pytest

from reseller.client import RemoteEvent, SellerClient
from reseller.engine import Engine
from reseller.errors import ResellerError
from tests.helpers import RESELLER, active, connect, order, refused, remote_of

START = datetime(2026, 1, 1)


class Crash(Exception):
    """The process dies here."""


def crash_at(point: str):
    def hook(name: str) -> None:
        if name == point:
            raise Crash(name)

    return hook


def applied_ids(store) -> list[int]:
    return [event.event_id for event in store.applied_events()]


def kept_events(store) -> list:
    """Events fetched and stored but not applied yet."""
    return store.pending_events(store.module("seller").id)


def status(store, item: int) -> int:
    return store.item(item).status


def toggle(sim, remote: int, times: int) -> None:
    """The seller's staff suspend and resume a service, `times` changes in all."""
    for n in range(times):
        sim.act("suspend" if n % 2 == 0 else "resume", service=remote)


def test_the_open_event_activates_the_service_and_completes_its_order(engine, tariff, sim, store):
    item = order(engine, sim)
    operation = store.latest_operation(item).id

    report = engine.checkevent("seller", sim.now)

    assert (report.fetched, report.applied, report.unmatched) == (1, 1, [])
    assert report.completed == [operation]
    service = store.item(item)
    assert (service.status, service.expiredate) == (2, "2026-02-01")
    assert service.ips == sim.service(remote_of(engine, item))["ips"]
    assert store.operation(operation).state == "done"
    assert [t["status"] for t in store.tasks()] == ["closed"]
    assert len(kept_events(store)) == 0


def test_a_service_the_seller_sets_up_later_is_active_after_the_poll_that_follows(
    engine, module, sim, store
):
    engine.import_tariff("seller", 6, sim.now)
    item = order(engine, sim, tariff="6-vds-later")

    engine.checkevent("seller", sim.now)
    assert status(store, item) == 1
    sim.advance("10m")
    engine.checkevent("seller", sim.now)

    assert status(store, item) == 2
    assert store.latest_operation(item).state == "done"


@pytest.mark.parametrize(
    ("action", "body", "check"),
    [
        ("suspend", {}, lambda s, i: s.item(i).status == 3),
        ("delete", {}, lambda s, i: s.item(i).status == 4),
        ("add_ip", {"ip": "10.0.0.8"}, lambda s, i: s.item(i).ips[-1] == "10.0.0.8"),
        (
            "set_addon",
            {"addon": "ram", "value": 2048},
            lambda s, i: s.item(i).addons["ram"] == "2048",
        ),
        (
            "set_addon",
            {"addon": "panel", "value": "ispmanager"},
            lambda s, i: s.item(i).addons["panel"] == "ispmanager",
        ),
        (
            "set_param",
            {"name": "hostname", "value": "web1"},
            lambda s, i: s.item(i).params["hostname"] == "web1",
        ),
    ],
)
def test_each_kind_of_seller_change_reaches_the_service(
    engine, tariff, sim, store, action, body, check
):
    item = active(engine, sim)

    sim.act(action, service=remote_of(engine, item), **body)
    engine.checkevent("seller", sim.now)

    assert check(store, item)
    assert [op.state for op in store.operations(item)] == ["done"]


def test_an_ip_the_seller_removes_is_removed(engine, tariff, sim, store):
    item = active(engine, sim)
    remote = remote_of(engine, item)
    sim.act("add_ip", service=remote, ip="10.0.0.8")
    engine.checkevent("seller", sim.now)

    sim.act("remove_ip", service=remote, ip="10.0.0.8")
    engine.checkevent("seller", sim.now)

    assert store.item(item).ips == sim.service(remote)["ips"]
    assert len(store.item(item).ips) == 1


def test_a_service_left_unpaid_is_suspended_when_the_seller_says_it_expired(
    engine, tariff, sim, store
):
    item = active(engine, sim)

    sim.advance("32d")
    engine.checkevent("seller", sim.now)

    assert status(store, item) == 3


def test_an_addon_event_completes_an_addon_change_only_once_the_values_match(
    engine, tariff, sim, store
):
    item = active(engine, sim)
    sim.fault("down")
    engine.set_addons(item, {"backup": "on"}, sim.now)
    sim.act("set_addon", service=remote_of(engine, item), addon="ram", value=2048)

    engine.checkevent("seller", sim.now)

    assert store.item(item).addons["ram"] == "2048"
    assert store.latest_operation(item).state == "running"


def test_an_addon_change_whose_values_come_in_one_poll_is_done_when_the_last_is_applied(
    engine, tariff, sim, store
):
    item = active(engine, sim)
    operation = engine.set_addons(item, {"backup": "on", "panel": "ispmanager"}, sim.now)
    assert store.operation(operation).awaiting_seller

    report = engine.checkevent("seller", sim.now)

    assert (report.applied, report.completed) == (2, [operation])
    assert store.operation(operation).state == "done"


def test_a_poll_of_seller_changes_reads_no_params_or_ips_of_their_services(
    engine, tariff, sim, store
):
    item = active(engine, sim)
    sim.act("set_param", service=remote_of(engine, item), name="hostname", value="web1")
    sim.act("set_addon", service=remote_of(engine, item), addon="ram", value=2048)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)

    report = engine.checkevent("seller", sim.now)

    store.db.conn.set_trace_callback(None)
    assert report.applied == 2
    reads = [s for s in statements if s.startswith("select")]
    assert not [s for s in reads if "item_param" in s or "item_ip" in s]
    assert (store.item(item).params["hostname"], store.item(item).addons["ram"]) == ("web1", "2048")


def test_events_are_applied_in_the_sellers_id_order_even_when_delivered_shuffled(
    engine, tariff, sim, store
):
    item = active(engine, sim)
    toggle(sim, remote_of(engine, item), 7)
    sim.fault("reorder_events")

    report = engine.checkevent("seller", sim.now)

    assert report.applied == 7
    assert applied_ids(store) == sorted(applied_ids(store))
    assert status(store, item) == 3


def test_an_event_delivered_twice_is_applied_once(engine, tariff, sim, store):
    item = active(engine, sim)
    remote = remote_of(engine, item)
    sim.act("add_ip", service=remote, ip="10.0.0.8")
    sim.act("remove_ip", service=remote, ip="10.0.0.8")
    sim.fault("duplicate_events")

    report = engine.checkevent("seller", sim.now)

    assert (report.fetched, report.applied) == (2, 2)
    assert len(applied_ids(store)) == len(set(applied_ids(store)))
    assert store.item(item).ips == sim.service(remote)["ips"]


class Replaying(SellerClient):
    """A seller whose feed repeats, with each read, every event it sent before."""

    def events(self):
        self.sent = getattr(self, "sent", []) + super().events()
        return list(self.sent)


def test_an_event_seen_in_an_earlier_poll_is_never_applied_again(store, http, sim):
    engine = Engine(store, lambda url, login, password: Replaying(url, login, password, http))
    engine.configure(RESELLER["currency"], RESELLER["rates"])
    engine.add_client("alice", 500)
    connect(engine, sim)
    engine.import_tariff("seller", 5, sim.now)
    item = active(engine, sim)

    engine.change_status(item, "suspend", sim.now)
    report = engine.checkevent("seller", sim.now)

    assert (report.fetched, report.applied) == (1, 1)
    assert status(store, item) == 3
    assert len(applied_ids(store)) == 2


def test_an_event_kept_unmatched_and_read_again_is_stored_once(store, http, sim):
    engine = Engine(store, lambda url, login, password: Replaying(url, login, password, http))
    connect(engine, sim)
    sim.act("create_service", account="reseller", tariff=5)

    first = engine.checkevent("seller", sim.now)
    again = engine.checkevent("seller", sim.now)

    assert (first.fetched, again.fetched) == (1, 0)
    assert len(store.unmatched_events()) == 1


def test_an_event_before_the_lost_reply_to_its_order_links_the_service_by_remoteid(
    engine, tariff, sim, store
):
    sim.fault("lose_reply")
    item = order(engine, sim)
    assert store.item(item).remote_id is None

    engine.checkevent("seller", sim.now)

    (remote,) = sim.services()
    assert store.item(item).remote_id == remote["id"]
    assert (status(store, item), store.latest_operation(item).state) == (2, "done")
    sim.advance("5m")
    engine.run_due(sim.now)
    assert len(sim.services()) == 1 and len(sim.calls("vds.order.param")) == 1


def test_one_poll_applies_each_event_to_its_service_linked_by_seller_id_or_by_remoteid(
    engine, tariff, sim, store
):
    linked = active(engine, sim)
    sim.fault("lose_reply")
    unlinked = order(engine, sim)
    (remote,) = [s["id"] for s in sim.services() if s["id"] != remote_of(engine, linked)]
    sim.act("add_ip", service=remote, ip="10.0.0.9")
    sim.act("add_ip", service=remote_of(engine, linked), ip="10.0.0.8")

    report = engine.checkevent("seller", sim.now)

    assert (report.applied, report.unmatched) == (3, [])
    assert store.item(unlinked).remote_id == remote
    assert status(store, unlinked) == 2
    assert store.item(unlinked).ips == sim.service(remote)["ips"]
    assert store.item(linked).ips == sim.service(remote_of(engine, linked))["ips"]


def test_a_poll_longer_than_a_chunk_applies_every_event_to_services_as_earlier_ones_left_them(
    engine, tariff, sim, store, monkeypatch
):
    monkeypatch.setattr("reseller.events.APPLY_CHUNK", 2)
    first, second = active(engine, sim), active(engine, sim)
    for ip in ("10.0.0.7", "10.0.0.8"):
        sim.act("add_ip", service=remote_of(engine, first), ip=ip)
    sim.act("add_ip", service=remote_of(engine, second), ip="10.0.0.9")
    sim.act("remove_ip", service=remote_of(engine, first), ip="10.0.0.7")

    report = engine.checkevent("seller", sim.now)

    assert (report.applied, report.unmatched) == (4, [])
    assert store.item(first).ips == sim.service(remote_of(engine, first))["ips"]
    assert store.item(second).ips == sim.service(remote_of(engine, second))["ips"]


def test_a_poll_naming_more_services_than_sqlite_binds_at_once_applies_to_them_all(
    engine, tariff, sim, store
):
    services = [active(engine, sim) for _ in range(3)]
    for n, service in enumerate(services):
        sim.act("add_ip", service=remote_of(engine, service), ip=f"10.0.0.{n + 7}")
    # an older SQLite's limit, lowered further: three services' ids no longer fit one query
    store.db.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 9)

    report = engine.checkevent("seller", sim.now)

    assert (report.applied, report.unmatched) == (3, [])
    for service in services:
        assert store.item(service).ips == sim.service(remote_of(engine, service))["ips"]


def test_one_poll_completes_a_change_awaiting_on_one_service_among_others_with_none(
    engine, tariff, sim, store
):
    idle, busy = active(engine, sim), active(engine, sim)
    sim.act("add_ip", service=remote_of(engine, idle), ip="10.0.0.8")
    engine.change_status(busy, "suspend", sim.now)
    sim.act("add_ip", service=remote_of(engine, idle), ip="10.0.0.9")

    report = engine.checkevent("seller", sim.now)

    assert report.completed == [store.latest_operation(busy).id]
    assert store.latest_operation(busy).state == "done"
    assert (status(store, idle), status(store, busy)) == (2, 3)


def test_a_change_one_event_of_a_poll_completes_is_not_completed_again_by_a_later_one(
    engine, tariff, sim, store
):
    item = active(engine, sim)
    remote = remote_of(engine, item)
    operation = engine.change_status(item, "suspend", sim.now)
    sim.act("resume", service=remote)  # the seller's staff resume it, and suspend it again
    sim.act("suspend", service=remote)

    report = engine.checkevent("seller", sim.now)

    assert (report.applied, report.completed) == (3, [operation])
    assert (store.operation(operation).state, status(store, item)) == ("done", 3)


def test_a_poll_that_brings_no_events_reads_no_service_and_no_operation(engine, tariff, sim, store):
    active(engine, sim)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)

    report = engine.checkevent("seller", sim.now)

    store.db.conn.set_trace_callback(None)
    assert report.fetched == 0
    assert not [s for s in statements if " item " in s or "runningoperation" in s]


def test_a_poll_that_brings_no_events_takes_the_write_lock_only_to_open_its_mark(
    engine, tariff, sim, store
):
    active(engine, sim)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)

    engine.checkevent("seller", sim.now)

    store.db.conn.set_trace_callback(None)
    assert statements.count("BEGIN IMMEDIATE") == 1
    assert not store.poll_is_open(store.module("seller").id)


def test_stored_events_keep_the_ips_the_seller_sent_each_in_a_list_of_its_own(store):
    module = store.add_module("seller", "http://seller", "reseller", "s3cret", [], START)
    sent = [["10.0.0.1", 'h\u00f4te "a"'], [], ["10.0.0.1", 'h\u00f4te "a"']]
    events = [
        RemoteEvent(n + 1, "ip_add", 100, "", 2, None, "ip", "10.0.0.1", ips)
        for n, ips in enumerate(sent)
    ]

    store.close_poll(module.id, events, START)

    kept = kept_events(store)
    assert [e.ips for e in kept] == sent
    assert kept[0].ips is not kept[2].ips
    assert [r["ips"] for r in store.db["itemevent"].rows] == [json.dumps(ips) for ips in sent]


def test_an_event_for_a_service_the_reseller_does_not_have_is_kept_and_reported(
    engine, module, sim, store
):
    remote = sim.act("create_service", account="reseller", tariff=5)["id"]

    first = engine.checkevent("seller", sim.now)
    again = engine.checkevent("seller", sim.now)

    (kept,) = store.unmatched_events()
    assert (kept.remote_item, kept.type) == (remote, "open")
    assert first.unmatched == again.unmatched == [kept.event_id]
    assert (first.applied, store.items()) == (0, [])


def test_events_saved_before_a_crash_are_applied_by_the_next_poll(engine, tariff, sim, store):
    item = order(engine, sim)
    engine.crash_point = crash_at("events_saved")

    with pytest.raises(Crash):
        engine.checkevent("seller", sim.now)

    assert len(kept_events(store)) == 1 and status(store, item) == 1
    engine.crash_point = lambda name: None
    report = engine.checkevent("seller", sim.now)
    assert (report.fetched, report.applied) == (0, 1)
    assert status(store, item) == 2


def test_a_crash_while_applying_events_applies_none_of_them(engine, tariff, sim, store):
    first, second = order(engine, sim), order(engine, sim)
    engine.crash_point = crash_at("applying_events")

    with pytest.raises(Crash):
        engine.checkevent("seller", sim.now)

    assert (status(store, first), status(store, second)) == (1, 1)
    assert len(kept_events(store)) == 2 and applied_ids(store) == []
    engine.crash_point = lambda name: None
    engine.checkevent("seller", sim.now)
    assert (status(store, first), status(store, second)) == (2, 2)
    assert len(applied_ids(store)) == 2


def test_a_poll_while_the_seller_is_down_is_unavailable_and_changes_nothing_but_its_open_mark(
    engine, tariff, sim, store
):
    """Issue 9 (point 5): the failed poll leaves its write-ahead mark open (bookkeeping, not
    state), so the next poll reconciles before it reads the feed."""
    item = order(engine, sim)
    sim.fault("down")
    before = store.digest()

    with pytest.raises(ResellerError) as caught:
        engine.checkevent("seller", sim.now)

    assert caught.value.type == "unavailable" and caught.value.message
    assert store.digest() == before
    assert store.poll_is_open(store.module("seller").id)
    report = engine.checkevent("seller", sim.now)
    assert report.reconciled is not None and report.applied == 1
    assert status(store, item) == 2


def test_a_poll_of_an_unknown_module_is_refused(engine, module, sim, store):
    with refused(store, "unknown"):
        engine.checkevent("nowhere", sim.now)


def test_the_cron_polls_every_module_and_reports_one_it_cannot_reach(engine, tariff, sim, store):
    connect(engine, sim, name="second", login="second", password="second-pw")
    item = order(engine, sim)
    sim.fault("down")

    reports = engine.cron(sim.now)

    assert "cannot reach" in reports.modules["seller"].error
    assert reports.modules["second"].events.fetched == 0
    assert status(store, item) == 1
    assert engine.cron(sim.now).modules["seller"].events.applied == 1


def test_the_cron_runs_retries_that_are_due(engine, tariff, sim, store):
    sim.fault("down")
    item = order(engine, sim)

    sim.advance("5m")
    engine.cron(sim.now)

    assert store.item(item).remote_id is not None
    assert store.latest_operation(item).state == "manual"


def test_the_module_polls_only_its_own_accounts_feed(engine, tariff, sim, store):
    connect(engine, sim, name="second", login="second", password="second-pw")
    sim.act("create_service", account="second", tariff=5)
    item = order(engine, sim)

    report = engine.checkevent("seller", sim.now)

    assert (report.applied, report.unmatched) == (1, [])
    assert status(store, item) == 2


def test_a_poll_after_two_idle_hours_logs_in_again_and_applies_the_events(
    engine, tariff, sim, store
):
    item = order(engine, sim)
    sim.advance("2h")

    assert engine.checkevent("seller", sim.now).applied == 1
    assert status(store, item) == 2
    assert [c["at"] for c in sim.calls("auth")][-1] == "2026-01-01 02:00:00"


def test_a_poll_that_reconciles_first_and_then_cannot_read_the_feed_changes_nothing(
    engine, tariff, sim, store
):
    """Found open, the poll's mark makes it read the services first; when the feed then
    cannot be read, the repairs that reading would make are not written either."""
    item = active(engine, sim)
    sim.fault("lose_reply", func="itemevent")
    sim.act("suspend", service=remote_of(engine, item))
    with pytest.raises(ResellerError):
        engine.checkevent("seller", sim.now)  # the suspension's event is lost with the reply
    sim.fault("down", func="itemevent")
    before = store.digest()

    with pytest.raises(ResellerError) as unavailable:
        engine.checkevent("seller", sim.now)

    assert unavailable.value.type == "unavailable"
    assert store.digest() == before
    assert store.item(item).status_name == "active"
    report = engine.checkevent("seller", sim.now)
    assert report.reconciled and store.item(item).status_name == "suspended"
