"""The engine's store itself: how a store in memory starts."""

from __future__ import annotations

from decimal import Decimal

from reseller import store as store_module
from reseller.store import Store


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
