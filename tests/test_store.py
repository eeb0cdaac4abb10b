"""The store's own rules: how a store in memory starts, what a save of an operation writes,
which services autoprolong awaits, and how modules are read (and read again after a write, a
rollback or another process's)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from reseller import store as store_module
from reseller.model import PeriodRule
from reseller.operations import complete
from reseller.store import Store

START = datetime(2026, 1, 1)


def endings(now: datetime) -> dict:
    """Each way an attempt goes: its transitions after the claim, each from the one before."""

    def send(op):
        return op.send(now, before="2026-02-01")

    def accept(op):
        return op.accept(now)

    return {
        "accepted": [send, accept],
        "unknown": [send, lambda op: op.reply_unknown("no reply", now)],
        "refused": [send, lambda op: op.refuse("access", "no rights", now)],
        "confirmed": [send, accept, lambda op: op.confirm(now)],
    }


@pytest.mark.parametrize("ending", sorted(endings(START)))
def test_an_operation_saved_from_its_last_saved_form_reads_back_as_the_transition(ending):
    store = Store()
    try:
        item = store.add_item(account=1, pricelist=1, itemtype="vds", status=2, period=1)
        stored = store.operation(store.add_operation(item, "prolong", {"period": 1}, START))
        now = START + timedelta(minutes=1)
        claimed = stored.claim("engine-1", now)
        store.save_operation(claimed, was=stored)
        assert store.operation(stored.id) == claimed
        was = claimed
        for transition in endings(now)[ending]:
            operation = transition(was)
            # a settled operation (done by the seller's word) is saved without the claim
            owner = "engine-1" if was.state == "running" else None
            assert store.save_operation(operation, owner=owner, was=was)
            assert store.operation(stored.id) == operation
            was = operation
    finally:
        store.close()


def test_a_completed_operation_reads_back_done_with_its_task_closed():
    store = Store()
    try:
        item = store.add_item(account=1, pricelist=1, itemtype="vds", status=2, period=1)
        stored = store.operation(store.add_operation(item, "prolong", {"period": 1}, START))
        claimed = stored.claim("engine-1", START)
        store.save_operation(claimed, was=stored)
        accepted = claimed.send(START, before="2026-02-01").accept(START)
        store.save_operation(accepted, owner="engine-1", was=claimed)
        store.add_task(stored.id, "prolong", START)
        later = START + timedelta(hours=1)

        done = complete(store, store.operation(stored.id), later)

        assert store.operation(stored.id) == done == accepted.confirm(later)
        assert [(t["status"], t["closed"]) for t in store.tasks()] == [
            ("closed", "2026-01-01 01:00:00")
        ]
    finally:
        store.close()


def test_money_moved_for_a_client_read_before_is_refused_outside_a_transaction():
    store = Store()
    try:
        client = store.client_by_id(store.add_client("alice", Decimal(10)))

        with pytest.raises(ValueError):
            store.move_money_of(client, Decimal(-1), "prolong", START)
        with store.atomic():
            store.move_money_of(store.client_by_id(client.id), Decimal(-1), "prolong", START)

        assert store.client_by_id(client.id).balance == Decimal(9)
        assert [(e.amount, e.reason) for e in store.expenses()] == [(Decimal(-1), "prolong")]
    finally:
        store.close()


def test_a_save_that_changes_nothing_still_tells_whether_the_claim_is_held():
    store = Store()
    try:
        item = store.add_item(account=1, pricelist=1, itemtype="vds", status=2, period=1)
        stored = store.operation(store.add_operation(item, "prolong", {"period": 1}, START))
        claimed = stored.claim("engine-1", START)
        store.save_operation(claimed, was=stored)

        assert store.save_operation(claimed, owner="engine-1", was=claimed)
        assert not store.save_operation(claimed, owner="engine-2", was=claimed)
    finally:
        store.close()


def test_each_module_is_read_with_its_own_period_rules_in_the_order_given():
    store = Store()
    try:
        first = [PeriodRule(12, 6, None), PeriodRule(1, 3, "vds-1")]
        second = [PeriodRule(3, 1, None)]
        store.add_module("a", "https://a.example", "ra", "pw", first, START)
        store.add_module("none", "https://n.example", "rn", "pw", [], START)
        store.add_module("b", "https://b.example", "rb", "pw", second, START)

        assert [(m.name, m.rules) for m in store.modules()] == [
            ("a", first),
            ("none", []),
            ("b", second),
        ]
        assert store.module("b").rules == second
        assert store.module_by_id(store.module("none").id).rules == []
        assert store.module("missing") is None
    finally:
        store.close()


def test_an_autoprolong_service_awaits_a_prolongation_while_its_latest_one_is_done_or_none():
    store = Store()
    try:
        histories = {
            "none": [],
            "done": ["done"],
            "failed after done": ["done", "failed"],
            "done after failed": ["failed", "done"],
            "running after done": ["done", "running"],
        }
        items = {}
        for remote, (name, states) in enumerate(histories.items(), start=100):
            item = items[name] = store.add_item(
                account=1,
                pricelist=1,
                itemtype="vds",
                remote_module=1,
                remote_id=remote,
                status=2,
                period=1,
                expiredate="2026-01-02",
                autoprolong=True,
            )
            for state in states:
                operation = store.operation(store.add_operation(item, "prolong", {}, START))
                store.save_operation(replace(operation, state=state))
            # a later operation of another kind decides nothing
            store.add_operation(item, "setparam", {"addons": {}}, START)

        assert store.awaiting_autoprolong("2026-01-02") == [
            items["none"],
            items["done"],
            items["done after failed"],
        ]
        assert store.awaiting_autoprolong("2026-01-01") == []
    finally:
        store.close()


def test_the_operations_from_the_first_awaiting_of_several_services_are_each_ones_read_alone():
    store = Store()
    try:
        histories = [
            [],
            [("done", "accepted")],
            [("done", "accepted"), ("running", "accepted"), ("failed", "nothing")],
            [("failed", "nothing"), ("manual", "unknown"), ("done", "accepted")],
            [("running", "nothing"), ("running", "unknown")],
            [("running", "accepted"), ("done", "accepted"), ("manual", "unknown")],
        ]
        items = []
        for history in histories:
            item = store.add_item(account=1, pricelist=1, itemtype="vds", status=2, period=1)
            items.append(item)
            for state, outcome in history:
                operation = store.operation(store.add_operation(item, "prolong", {}, START))
                store.save_operation(replace(operation, state=state, outcome=outcome))
        # operations of services not asked for are read for none
        store.add_operation(
            store.add_item(account=1, pricelist=1, itemtype="vds", period=1), "prolong", {}, START
        )

        read = store.operations_from_first_awaiting_of(items)

        assert read == {item: store.operations_from_first_awaiting(item) for item in items}
        assert [len(read[item]) for item in items] == [0, 0, 2, 2, 1, 3]
        assert store.operations_from_first_awaiting_of([]) == {}
    finally:
        store.close()


def test_a_module_added_is_in_the_next_read_of_the_modules():
    store = Store()
    try:
        store.add_module("a", "https://a.example", "ra", "pw", [], START)
        assert [m.name for m in store.modules()] == ["a"]

        store.add_module("b", "https://b.example", "rb", "pw", [], START)

        assert [m.name for m in store.modules()] == ["a", "b"]
    finally:
        store.close()


def test_a_reconcile_day_written_is_what_the_next_read_of_its_module_shows():
    store = Store()
    try:
        module = store.add_module("a", "https://a.example", "ra", "pw", [], START)
        assert store.module_by_id(module.id).reconciles_on(START + timedelta(days=1))

        store.set_reconciled(module.id, START + timedelta(days=1))

        assert not store.module_by_id(module.id).reconciles_on(START + timedelta(days=1))
    finally:
        store.close()


def test_a_reconcile_day_rolled_back_is_not_shown_by_the_next_read_of_its_module():
    store = Store()
    try:
        module = store.add_module("a", "https://a.example", "ra", "pw", [], START)
        later = START + timedelta(days=3)

        with pytest.raises(RuntimeError), store.atomic():
            store.set_reconciled(module.id, later)
            assert not store.module_by_id(module.id).reconciles_on(later)
            raise RuntimeError("undone")

        assert store.module_by_id(module.id).reconciles_on(later)
    finally:
        store.close()


def test_a_reconcile_day_another_process_writes_is_what_the_next_read_of_its_module_shows(
    tmp_path,
):
    path = str(tmp_path / "engine.db")
    mine, other = Store(path), Store(path)
    try:
        module = mine.add_module("a", "https://a.example", "ra", "pw", [], START)
        later = START + timedelta(days=3)
        assert mine.module_by_id(module.id).reconciles_on(later)

        other.set_reconciled(module.id, later)

        assert not mine.module_by_id(module.id).reconciles_on(later)
    finally:
        mine.close()
        other.close()


def schema(store: Store) -> list[tuple]:
    return store.db.execute("select type, name, sql from sqlite_master order by name").fetchall()


def test_a_store_in_memory_starts_empty_with_every_table_whatever_the_first_one_holds_since(
    monkeypatch,
):
    monkeypatch.setattr(store_module, "_MEMORY_TEMPLATE", [])  # `first` is the process's first
    first = Store()
    first.add_client("alice", Decimal(5))
    first.db.execute("create table left_by_a_test (x)")

    second = Store()

    assert second.db.execute("select count(*) from account").fetchone() == (0,)
    assert "left_by_a_test" not in second.db.table_names()
    assert schema(second) == [row for row in schema(first) if row[1] != "left_by_a_test"]
    assert {"item", "runningoperation", "itemevent"} <= set(second.db.table_names())


def test_the_items_as_listed_hold_each_of_the_modules_items_with_its_every_ip_and_listed_param():
    store = Store()
    try:
        ips = {"bare": [], "one": ["10.0.0.1"], "two": ["10.0.0.3", "10.0.0.2"]}
        items = {}
        for module, name in ((1, "bare"), (1, "one"), (2, "other"), (1, "two")):
            items[name] = store.add_item(
                account=1,
                pricelist=1,
                itemtype="vds",
                status=2,
                period=1,
                remote_module=module,
                remote_id=len(items) + 10,
                expiredate="2026-02-01",
            )
        for name, addresses in ips.items():
            store.set_ips(items[name], addresses)
        store.set_ips(items["other"], ["10.0.0.9"])
        store.set_item_param(items["two"], "domain", "shop.example")
        store.set_item_param(items["two"], "ostempl", "debian-12")  # no list row shows it
        store.set_item_param(items["other"], "domain", "other.example")

        held = {i.id: i for i in store.items_as_listed(1, ("domain", "ip"))}

        assert sorted(held) == sorted(items[name] for name in ips)
        assert {name: sorted(held[items[name]].ips) for name in ips} == {
            name: sorted(addresses) for name, addresses in ips.items()
        }
        assert [held[items[name]].params for name in ips] == [{}, {}, {"domain": "shop.example"}]
        assert {(i.remote_id, i.status, i.expiredate) for i in held.values()} == {
            (10, 2, "2026-02-01"),
            (11, 2, "2026-02-01"),
            (13, 2, "2026-02-01"),
        }
    finally:
        store.close()
