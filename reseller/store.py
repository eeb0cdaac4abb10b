"""The reseller's database: the only module that imports sqlite_utils or writes SQL.

Tables carry BILLmanager's own names where the docs give them: `item` (status 1-4,
`expiredate`, `processingmodule`), `itemevent`, `pricelist` (`intname`), `runningoperation`,
`task`. Amounts are stored as decimal text, never as floats. Rows leave this module as the
dataclasses of `reseller.model`.

The connection is in autocommit mode: a statement outside `atomic()` commits at once, and a
transaction is open only inside `atomic()`, which takes SQLite's write lock up front
(`BEGIN IMMEDIATE`), so no transaction is ever held across a call to the seller and two
processes on one file queue for the lock instead of failing half-way.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from json.encoder import encode_basestring_ascii

import sqlite_utils

from reseller.model import (
    ACCEPTED,
    DONE,
    MANUAL,
    NOTHING,
    PROLONG,
    RUNNING,
    UNKNOWN,
    AddonSpec,
    AppliedEvent,
    Client,
    Expense,
    Item,
    ItemAsListed,
    ItemAsPolled,
    Module,
    Operation,
    PeriodRule,
    StoredEvent,
    Tariff,
)

SCHEMA = {
    "setting": ({"key": str, "value": str}, "key"),
    "currency_rate": ({"currency": str, "rate": str}, "currency"),
    "processingmodule": (
        {
            "id": int,
            "name": str,
            "url": str,
            "login": str,
            "password": str,
            "last_event_id": int,
            "created": str,
            # the poll's write-ahead mark: open from before the feed is asked until its events
            # are stored; found open, the next poll reconciles first
            "poll_started": str,
            "poll_owner": str,
            "poll_lease": str,
            "reconciled_on": str,
        },
        "id",
    ),
    "periodmap": (
        {"id": int, "processingmodule": int, "source": int, "target": int, "pricelist": str},
        "id",
    ),
    "pricelist": (
        {
            "id": int,
            "intname": str,
            "name": str,
            "itemtype": str,
            "processingmodule": int,
            "remote_id": int,
            "currency": str,
        },
        "id",
    ),
    "pricelist_price": ({"pricelist": int, "period": int, "price": str}, ("pricelist", "period")),
    "addon": (
        {
            "id": int,
            "pricelist": int,
            "intname": str,
            "type": str,
            "remote_id": int,
            "enabled": int,
            "included": int,
            "max": int,
            "price": str,
        },
        "id",
    ),
    "enumerationitem": (
        {"id": int, "addon": int, "intname": str, "remote_id": int, "price": str},
        "id",
    ),
    "paramvalue": (
        {"processingmodule": int, "param": str, "intname": str},
        ("processingmodule", "param", "intname"),
    ),
    "pricelist_paramvalue": (
        {"pricelist": int, "param": str, "intname": str},
        ("pricelist", "param", "intname"),
    ),
    "account": ({"id": int, "name": str, "balance": str}, "id"),
    "expense": (
        {
            "id": int,
            "account": int,
            "item": int,
            "operation": int,
            "amount": str,
            "reason": str,
            "date": str,
        },
        "id",
    ),
    "item": (
        {
            "id": int,
            "account": int,
            "pricelist": int,
            "itemtype": str,
            "processingmodule": int,
            "remote_module": int,
            "remote_id": int,
            "period": int,
            "status": int,
            "expiredate": str,
            "autoprolong": int,
            "createdate": str,
        },
        "id",
    ),
    "item_addon": ({"item": int, "addon": str, "value": str}, ("item", "addon")),
    "item_param": ({"item": int, "name": str, "value": str}, ("item", "name")),
    "item_ip": ({"item": int, "ip": str}, ("item", "ip")),
    "runningoperation": (
        {
            "id": int,
            "item": int,
            "kind": str,
            "state": str,
            "outcome": str,
            "params": str,
            "attempts": int,
            "failures": int,
            "first_failure": str,
            "next_try": str,
            "error_type": str,
            "error_msg": str,
            "owner": str,
            "lease_until": str,
            "created": str,
            "updated": str,
        },
        "id",
    ),
    "task": (
        {
            "id": int,
            "runningoperation": int,
            "type": str,
            "status": str,
            "created": str,
            "closed": str,
        },
        "id",
    ),
    "itemevent": (
        {
            "id": int,
            "processingmodule": int,
            "event_id": int,
            "type": str,
            "remote_item": int,
            "remoteid": str,
            "status": int,
            "expiredate": str,
            "name": str,
            "value": str,
            "ips": str,
            "fetched": str,
            "unmatched": int,
        },
        "id",
    ),
    "itemevent_applied": (
        {"id": int, "processingmodule": int, "event_id": int, "item": int, "applied": str},
        "id",
    ),
    "importtask": (
        {
            "id": int,
            "processingmodule": int,
            "itemtype": str,
            "mask": str,
            "status": str,
            "created": str,
            "finished": str,
        },
        "id",
    ),
    "importservice": (
        {
            "id": int,
            "importtask": int,
            "processingmodule": int,
            "remote_id": int,
            "itemtype": str,
            "name": str,
            "remote_pricelist": int,
            "status": int,
            "expiredate": str,
            "ips": str,
            "params": str,
        },
        "id",
    ),
}
INDEXES = [
    ("pricelist", ["intname"], True),
    ("addon", ["pricelist", "intname"], True),
    ("enumerationitem", ["addon", "intname"], True),
    ("account", ["name"], True),
    ("processingmodule", ["name"], True),
    ("item", ["remote_module", "remote_id"], False),
    ("item", ["autoprolong", "expiredate"], False),  # autoprolong's look-ahead, every 5 minutes
    ("runningoperation", ["item"], False),
    ("runningoperation", ["state", "next_try"], False),
    ("task", ["runningoperation"], False),
    ("itemevent", ["processingmodule", "event_id"], True),
    ("itemevent_applied", ["processingmodule", "event_id"], False),
    ("expense", ["item"], False),
    ("item_ip", ["ip"], False),
    ("item_param", ["name", "value"], False),
]
# Columns that are the engine's own bookkeeping (claims, the poll's mark), which a refused step
# may leave changed: a poll that timed out keeps its mark open even when its step fails.
BOOKKEEPING = {
    "processingmodule": {"poll_started", "poll_owner", "poll_lease"},
    "runningoperation": {"owner", "lease_until", "updated"},
}


def stamp(when: datetime | None) -> str | None:
    """`YYYY-MM-DD HH:MM:SS`; the engine's times are naive UTC, for which `isoformat` gives
    the same text as `strftime` at a third of its cost (a cron tick stamps dozens)."""
    if not when:
        return None
    if when.tzinfo is None and when.year >= 1000:
        return when.isoformat(" ", "seconds")
    return when.strftime("%Y-%m-%d %H:%M:%S")


def day(when: date | datetime | None) -> str | None:
    return when.strftime("%Y-%m-%d") if when else None


# An item's columns in the order of Item's fields (its add-ons, params and IPs come after).
ITEM_COLUMNS = (
    "id, account, pricelist, itemtype, processingmodule, remote_module, period, status, "
    "remote_id, expiredate, autoprolong, createdate"
)


def _ips(found: list[tuple]) -> list[str]:
    """An item's IPs from its (rowid, ip) rows, in the order they were added."""
    return [ip for _, ip in sorted(found)]


# The columns of `runningoperation` a save writes, named as the Operation fields they hold.
_OPERATION_WRITES = (
    "state",
    "outcome",
    "params",
    "attempts",
    "failures",
    "first_failure",
    "next_try",
    "error_type",
    "error_msg",
    "owner",
    "lease_until",
    "updated",
)
_OPERATION_TIMES = {"first_failure", "next_try", "lease_until", "updated"}
# `runningoperation`'s columns in the order of Operation's fields, as `_operation` reads them.
_OPERATION_COLUMNS = (
    "id, item, kind, state, outcome, params, attempts, failures, first_failure, next_try, "
    "error_type, error_msg, owner, lease_until, created, updated"
)
_OPERATIONS = f"select {_OPERATION_COLUMNS} from runningoperation"


@lru_cache(maxsize=64)  # the few sets of columns the transitions change
def _operation_update(columns: tuple[str, ...], owned: bool) -> str:
    """The UPDATE that `Store.save_operation` writes these columns with (`owned`: while held)."""
    sets = ", ".join(f"{name} = ?" for name in columns)
    held = " and owner = ? and state = ?" if owned else ""
    return f"update runningoperation set {sets} where id = ?{held}"


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_EVENT_COLUMNS = (
    "id, processingmodule, event_id, type, remote_item, remoteid, status, expiredate, name, "
    "value, ips, fetched"
)


def _json_texts(texts: list[str]) -> str:
    """`json.dumps(texts)` for a list of strings, the same text without its general encoder."""
    return "[" + ", ".join(map(encode_basestring_ascii, texts)) + "]"


# The first store made in memory, kept empty, for the next ones to copy page by page.
_MEMORY_TEMPLATE: list[sqlite3.Connection] = []
_MEMORY_TEMPLATE_LOCK = threading.Lock()


def _connect(path: str | None) -> sqlite3.Connection:
    """A connection in autocommit mode; a new file is made readable by its owner only."""
    if path is None:
        return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    if not os.path.exists(path):
        # the seller's password is kept in it: no one else on the machine may read it
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    connection.execute("PRAGMA busy_timeout = 30000")
    return connection


class Atomic:
    """`Store.atomic`'s block: the outermost takes the write lock, a nested one a savepoint.

    A class, not a generator: a cron tick opens dozens, and a generator's context manager
    costs as much as the BEGIN and COMMIT themselves. Every savepoint has one name: RELEASE
    and ROLLBACK TO take the most recent of a name, which nesting makes the innermost open
    one; a name of its own each time made each SAVEPOINT and RELEASE a new statement to
    compile, and pushed the poll's own out of the connection's cache of prepared statements.
    """

    __slots__ = ("store", "nested")

    def __init__(self, store: Store):
        self.store = store
        self.nested = False

    def __enter__(self) -> None:
        conn = self.store.db.conn
        self.nested = conn.in_transaction
        conn.execute("SAVEPOINT nested" if self.nested else "BEGIN IMMEDIATE")

    def __exit__(self, kind, error, trace) -> bool:
        conn = self.store.db.conn
        if kind is None:
            conn.execute("RELEASE SAVEPOINT nested" if self.nested else "COMMIT")
            return False
        self.store._forget()
        if conn.in_transaction:
            if self.nested:
                conn.execute("ROLLBACK TO SAVEPOINT nested")
                conn.execute("RELEASE SAVEPOINT nested")
            else:
                conn.execute("ROLLBACK")
        return False


class Store:
    """The engine's state in SQLite: a file, or memory when no path is given."""

    def __init__(self, path: str | None = None):
        self.path = path
        self.db = sqlite_utils.Database(_connect(path))
        # Tariffs by id, and the modules by id, as read: a cron tick reads a service's tariff
        # for each of its operations and events, and the modules for its polls, each attempt
        # and the harness's look ahead. Emptied by every write of this store to what they
        # hold, by a rollback (a read inside it may have seen what was undone), and by another
        # connection's commit (`data_version` moves: another process's sync or poll).
        self._tariffs: dict[int, Tariff] = {}
        self._modules_by_id: dict[int, Module] | None = None
        self._read_version = None
        if path:
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous=NORMAL")
        if not path and _MEMORY_TEMPLATE:
            # A property builds a store per example: copying the first empty store's pages
            # skips making every table and index again (1.5 ms a store; the copy 0.04 ms).
            with _MEMORY_TEMPLATE_LOCK:
                _MEMORY_TEMPLATE[0].backup(self.db.conn)
            return
        with self.atomic():
            for name, (columns, pk) in SCHEMA.items():
                table = self.db[name]
                if table.exists():
                    for column, kind in columns.items():  # a database from an older version
                        if column not in table.columns_dict:
                            table.add_column(column, kind)
                else:
                    table.create(columns, pk=pk)
            for table, columns, unique in INDEXES:
                self.db[table].create_index(columns, unique=unique, if_not_exists=True)
        if not path:
            with _MEMORY_TEMPLATE_LOCK:
                if not _MEMORY_TEMPLATE:
                    template = _connect(None)
                    self.db.conn.backup(template)
                    _MEMORY_TEMPLATE.append(template)

    def close(self) -> None:
        """Close the connection; anything not committed is lost, as when a process dies."""
        self.db.conn.close()

    def _forget(self) -> None:
        """Empty the caches of tariffs and modules."""
        self._tariffs.clear()
        self._modules_by_id = None

    def _caught_up(self) -> None:
        """Empty the caches if another connection committed since they were filled."""
        (version,) = self.db.conn.execute("pragma data_version").fetchone()
        if version != self._read_version:
            self._forget()
            self._read_version = version

    def atomic(self) -> Atomic:
        """Several writes that stand or fall together; the outermost takes the write lock first."""
        return Atomic(self)

    def _one(self, sql: str, params: Iterable = ()) -> dict | None:
        cursor = self.db.execute(sql, tuple(params))
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def _all(self, sql: str, params: Iterable = ()) -> list[dict]:
        cursor = self.db.execute(sql, tuple(params))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- the whole database, for checks ------------------------------------------------------

    def digest(self) -> tuple:
        """Every table's rows, bookkeeping columns left out: what a refused step must keep."""
        tables = []
        for name in self.db.table_names():
            skip = BOOKKEEPING.get(name, set())
            columns = [c for c in self.db[name].columns_dict if c not in skip]
            listed = ", ".join(f"[{c}]" for c in columns)
            rows = self.db.execute(f"select {listed} from [{name}] order by rowid").fetchall()
            tables.append((name, tuple(map(tuple, rows))))
        return tuple(tables)

    def dump(self) -> list[str]:
        """The whole database as SQL statements, bookkeeping included."""
        return list(self.db.conn.iterdump())

    def table_counts(self) -> dict[str, int]:
        return {name: self.db[name].count for name in self.db.table_names()}

    # -- settings ----------------------------------------------------------------------------

    def setting(self, key: str, default=None):
        row = self._one("select value from setting where key = ?", [key])
        return json.loads(row["value"]) if row else default

    def set_setting(self, key: str, value) -> None:
        self.db.execute(
            "insert or replace into setting (key, value) values (?, ?)", [key, json.dumps(value)]
        )

    def rates(self) -> dict[str, Decimal]:
        return {r["currency"]: Decimal(r["rate"]) for r in self._all("select * from currency_rate")}

    def set_rate(self, currency: str, rate: Decimal) -> None:
        self.db.execute(
            "insert or replace into currency_rate (currency, rate) values (?, ?)",
            [currency, str(rate)],
        )

    # -- processing modules ------------------------------------------------------------------

    def add_module(
        self, name: str, url: str, login: str, password: str, rules: list[PeriodRule], now: datetime
    ) -> Module:
        with self.atomic():
            module_id = self.db.execute(
                "insert into processingmodule (name, url, login, password, last_event_id, "
                "created, reconciled_on) values (?, ?, ?, ?, 0, ?, ?)",
                [name, url, login, password, stamp(now), day(now)],
            ).lastrowid
            self.db.conn.executemany(
                "insert into periodmap (processingmodule, source, target, pricelist) "
                "values (?, ?, ?, ?)",
                [(module_id, r.source, r.target, r.tariff) for r in rules],
            )
            self._modules_by_id = None
        return self.module_by_id(module_id)

    def _modules(self) -> list[Module]:
        """Every module by id, each with its period rules, in one query."""
        modules: dict[int, Module] = {}
        for row in self.db.execute(
            "select m.id, m.name, m.url, m.login, m.password, m.reconciled_on, p.id, p.source, "
            "p.target, p.pricelist from processingmodule m left join periodmap p "
            "on p.processingmodule = m.id order by m.id, p.id"
        ):
            module_id, name, url, login, password, reconciled_on = row[:6]
            if module_id not in modules:
                modules[module_id] = Module(
                    module_id, name, url, login, password, [], reconciled_on
                )
            rule_id, source, target, pricelist = row[6:]
            if rule_id is not None:
                modules[module_id].rules.append(PeriodRule(source, target, pricelist))
        return list(modules.values())

    def _modules_read(self) -> dict[int, Module]:
        """Every module by id, read once until a module write (callers must not change them)."""
        self._caught_up()
        if self._modules_by_id is None:
            self._modules_by_id = {m.id: m for m in self._modules()}
        return self._modules_by_id

    def module(self, name: str) -> Module | None:
        return next((m for m in self._modules_read().values() if m.name == name), None)

    def module_by_id(self, module_id: int) -> Module | None:
        return self._modules_read().get(module_id)

    def modules(self) -> list[Module]:
        return list(self._modules_read().values())

    def set_reconciled(self, module_id: int, now: datetime) -> None:
        self.db.execute(
            "update processingmodule set reconciled_on = ? where id = ?", [day(now), module_id]
        )
        self._modules_by_id = None

    # -- the poll's write-ahead mark ---------------------------------------------------------

    def open_poll(self, module_id: int, owner: str, now: datetime, lease) -> str | None:
        """Open the module's poll mark for `owner`: `"reconcile"` when it was found open (a
        poll lost or cut short: reconcile first), `"poll"` when it was closed, None when
        another owner holds it and its lease runs (another process is polling)."""
        with self.atomic():
            row = self._one(
                "select poll_started, poll_owner, poll_lease from processingmodule where id = ?",
                [module_id],
            )
            held = row["poll_started"] is not None
            if held and row["poll_owner"] != owner and _when(row["poll_lease"]) > now:
                return None
            self.db.execute(
                "update processingmodule set poll_started = ?, poll_owner = ?, poll_lease = ? "
                "where id = ?",
                [row["poll_started"] or stamp(now), owner, stamp(now + lease), module_id],
            )
        return "reconcile" if held else "poll"

    def renew_poll(self, module_id: int, owner: str, now: datetime, lease) -> None:
        self.db.execute(
            "update processingmodule set poll_owner = ?, poll_lease = ? where id = ?",
            [owner, stamp(now + lease), module_id],
        )

    def close_poll(self, module_id: int, events: list, now: datetime) -> int:
        """Store a poll's events and close its mark, together; how many events were new."""
        if not events:  # most polls: the mark's end alone, one statement that commits itself
            self._end_poll(module_id)
            return 0
        with self.atomic():
            fresh = self._save_events(module_id, events, now)
            self._end_poll(module_id)
        return fresh

    def _end_poll(self, module_id: int) -> None:
        self.db.execute(
            "update processingmodule set poll_started = null, poll_owner = null, "
            "poll_lease = null where id = ?",
            [module_id],
        )

    def poll_is_open(self, module_id: int) -> bool:
        row = self._one("select poll_started from processingmodule where id = ?", [module_id])
        return bool(row and row["poll_started"])

    # -- tariffs -----------------------------------------------------------------------------

    def _tariff(self, row: dict | None) -> Tariff | None:
        if row is None:
            return None
        values = self._all(
            "select param, intname from pricelist_paramvalue where pricelist = ? order by rowid",
            [row["id"]],
        )
        return Tariff(
            row["id"],
            row["intname"],
            row["name"],
            row["itemtype"],
            row["processingmodule"],
            row["remote_id"],
            row["currency"],
            self.prices(row["id"]),
            self.addons(row["id"]),
            [v["intname"] for v in values if v["param"] == "ostempl"],
            [v["intname"] for v in values if v["param"] == "recipe"],
        )

    def tariff(self, intname: str) -> Tariff | None:
        return self._tariff(self._one("select * from pricelist where intname = ?", [intname]))

    def tariff_by_id(self, pricelist_id: int) -> Tariff | None:
        """The tariff, read once until a tariff write (callers must not change it)."""
        self._caught_up()
        plan = self._tariffs.get(pricelist_id)
        if plan is None:
            plan = self._tariff(self._one("select * from pricelist where id = ?", [pricelist_id]))
            if plan is not None:
                self._tariffs[pricelist_id] = plan
        return plan

    def _tariff_written(self) -> None:
        self._tariffs.clear()

    def tariff_of_remote(self, module_id: int, remote_id: int) -> Tariff | None:
        return self._tariff(
            self._one(
                "select * from pricelist where processingmodule = ? and remote_id = ?",
                [module_id, remote_id],
            )
        )

    def tariffs(self) -> list[Tariff]:
        return [self._tariff(r) for r in self._all("select * from pricelist order by id")]

    def add_tariff(
        self,
        intname: str,
        name: str,
        itemtype: str,
        module: int,
        remote_id: int,
        currency: str,
    ) -> int:
        self._tariff_written()
        return self.db.execute(
            "insert into pricelist (intname, name, itemtype, processingmodule, remote_id, "
            "currency) values (?, ?, ?, ?, ?, ?)",
            [intname, name, itemtype, module, remote_id, currency],
        ).lastrowid

    def prices(self, pricelist_id: int) -> dict[int, Decimal]:
        return {
            r["period"]: Decimal(r["price"])
            for r in self._all(
                "select period, price from pricelist_price where pricelist = ? order by period",
                [pricelist_id],
            )
        }

    def set_prices(self, pricelist_id: int, prices: dict[int, Decimal]) -> None:
        self._tariff_written()
        self.db.conn.executemany(
            "insert or replace into pricelist_price (pricelist, period, price) values (?, ?, ?)",
            [(pricelist_id, p, str(v)) for p, v in prices.items()],
        )

    def addons(self, pricelist_id: int) -> dict[str, AddonSpec]:
        rows = self._all("select * from addon where pricelist = ? order by id", [pricelist_id])
        items = self._all(
            "select e.* from enumerationitem e join addon a on e.addon = a.id "
            "where a.pricelist = ? order by e.id",
            [pricelist_id],
        )
        specs = {}
        for row in rows:
            spec = AddonSpec(
                row["intname"],
                row["type"],
                row["remote_id"],
                bool(row["enabled"]),
                row["included"] or 0,
                row["max"],
                Decimal(row["price"] or "0"),
            )
            if row["type"] == "enumeration":
                mine = [i for i in items if i["addon"] == row["id"]]
                spec.items = {i["intname"]: Decimal(i["price"]) for i in mine}
                spec.item_ids = {i["intname"]: i["remote_id"] for i in mine}
            specs[row["intname"]] = spec
        return specs

    def _addon_id(self, pricelist_id: int, intname: str) -> int | None:
        row = self._one(
            "select id from addon where pricelist = ? and intname = ?", [pricelist_id, intname]
        )
        return row["id"] if row else None

    def add_addon(self, pricelist_id: int, spec: AddonSpec) -> None:
        self._tariff_written()
        addon_id = self.db.execute(
            "insert into addon (pricelist, intname, type, remote_id, enabled, included, max, "
            "price) values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                pricelist_id,
                spec.intname,
                spec.type,
                spec.remote_id,
                int(spec.enabled),
                spec.included,
                spec.max,
                str(spec.price),
            ],
        ).lastrowid
        for name, price in (spec.items or {}).items():
            self._add_item(addon_id, name, (spec.item_ids or {})[name], price)

    def delete_addon(self, pricelist_id: int, intname: str) -> None:
        self._tariff_written()
        addon_id = self._addon_id(pricelist_id, intname)
        self.db.execute("delete from enumerationitem where addon = ?", [addon_id])
        self.db.execute("delete from addon where id = ?", [addon_id])

    def set_addon_price(self, pricelist_id: int, intname: str, price: Decimal) -> None:
        self._tariff_written()
        self.db.execute(
            "update addon set price = ? where pricelist = ? and intname = ?",
            [str(price), pricelist_id, intname],
        )

    def _add_item(self, addon_id: int, intname: str, remote_id: int, price: Decimal) -> None:
        self._tariff_written()
        self.db.execute(
            "insert into enumerationitem (addon, intname, remote_id, price) values (?, ?, ?, ?)",
            [addon_id, intname, remote_id, str(price)],
        )

    def add_enum_item(
        self, pricelist_id: int, addon: str, intname: str, remote_id: int, price: Decimal
    ) -> None:
        self._add_item(self._addon_id(pricelist_id, addon), intname, remote_id, price)

    def delete_enum_item(self, pricelist_id: int, addon: str, intname: str) -> None:
        self._tariff_written()
        self.db.execute(
            "delete from enumerationitem where addon = ? and intname = ?",
            [self._addon_id(pricelist_id, addon), intname],
        )

    def set_enum_item_price(
        self, pricelist_id: int, addon: str, intname: str, price: Decimal
    ) -> None:
        self._tariff_written()
        self.db.execute(
            "update enumerationitem set price = ? where addon = ? and intname = ?",
            [str(price), self._addon_id(pricelist_id, addon), intname],
        )

    def assign_value(self, module_id: int, pricelist_id: int, param: str, value: str) -> None:
        """Hold `value` under the module and assign it to the tariff."""
        self._tariff_written()
        self.db.execute(
            "insert or ignore into paramvalue (processingmodule, param, intname) values (?, ?, ?)",
            [module_id, param, value],
        )
        self.db.execute(
            "insert or ignore into pricelist_paramvalue (pricelist, param, intname) "
            "values (?, ?, ?)",
            [pricelist_id, param, value],
        )

    def unassign_value(self, pricelist_id: int, param: str, value: str) -> None:
        self._tariff_written()
        self.db.execute(
            "delete from pricelist_paramvalue where pricelist = ? and param = ? and intname = ?",
            [pricelist_id, param, value],
        )

    def rename_addon_value(self, pricelist_id: int, addon: str, old: str, new: str) -> None:
        """Store `new` wherever a service of the tariff holds `old` for the add-on."""
        self.db.execute(
            "update item_addon set value = ? where addon = ? and value = ? "
            "and item in (select id from item where pricelist = ?)",
            [new, addon, old, pricelist_id],
        )

    # -- clients and money -------------------------------------------------------------------

    def add_client(self, name: str, balance: Decimal) -> int:
        return self.db.execute(
            "insert into account (name, balance) values (?, ?)", [name, str(balance)]
        ).lastrowid

    @staticmethod
    def _client(row: dict | None) -> Client | None:
        return Client(row["id"], row["name"], Decimal(row["balance"])) if row else None

    def client(self, name: str) -> Client | None:
        return self._client(self._one("select * from account where name = ?", [name]))

    def client_by_id(self, client_id: int) -> Client | None:
        return self._client(self._one("select * from account where id = ?", [client_id]))

    def clients(self) -> list[Client]:
        return [self._client(r) for r in self._all("select * from account order by id")]

    def move_money(
        self,
        client_id: int,
        amount: Decimal,
        reason: str,
        now: datetime,
        item: int | None = None,
        operation: int | None = None,
    ) -> None:
        """Change a client's balance by `amount` (negative: a charge), with its expense row."""
        with self.atomic():
            self.move_money_of(self.client_by_id(client_id), amount, reason, now, item, operation)

    def move_money_of(
        self,
        client: Client,
        amount: Decimal,
        reason: str,
        now: datetime,
        item: int | None = None,
        operation: int | None = None,
    ) -> None:
        """`move_money` for `client` as the open transaction read it (ValueError if none is)."""
        if not self.db.conn.in_transaction:
            raise ValueError("move_money_of needs the transaction its client was read in")
        self.db.execute(
            "update account set balance = ? where id = ?", [str(client.balance + amount), client.id]
        )
        self.db.execute(
            "insert into expense (account, item, operation, amount, reason, date) "
            "values (?, ?, ?, ?, ?, ?)",
            [client.id, item, operation, str(amount), reason, stamp(now)],
        )

    def expenses(self, client_id: int | None = None) -> list[Expense]:
        where, params = ("where account = ?", [client_id]) if client_id is not None else ("", [])
        return [
            Expense(
                r["id"],
                r["account"],
                Decimal(r["amount"]),
                r["reason"],
                r["date"],
                r["item"],
                r["operation"],
            )
            for r in self._all(f"select * from expense {where} order by id", params)
        ]

    # -- items -------------------------------------------------------------------------------

    def add_item(self, **row) -> int:
        row["autoprolong"] = int(bool(row.get("autoprolong")))
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        return self.db.execute(
            f"insert into item ({columns}) values ({marks})", list(row.values())
        ).lastrowid

    def _items(self, where: str, params: Iterable = ()) -> list[Item]:
        """The items `where` (a condition on `item`) picks, by id, with their add-ons, params
        and IPs: one query for the items, one for all their add-ons, params and IPs together,
        however many items (a module's thousands, or one)."""
        bound = tuple(params)
        rows = self.db.execute(
            f"select {ITEM_COLUMNS} from item where {where} order by id", bound
        ).fetchall()
        if not rows:
            return []
        if len(rows) == 1:
            scope, scoped = "item = ?", (rows[0][0],)
        else:  # the same items, named by the query rather than by thousands of ids
            scope, scoped = f"item in (select id from item where {where})", bound
        addons: dict[int, dict] = {r[0]: {} for r in rows}
        params_of: dict[int, dict] = {r[0]: {} for r in rows}
        ips: dict[int, list] = {r[0]: [] for r in rows}
        kinds = (addons, params_of)
        for kind, item, name, value, rowid in self.db.execute(
            f"select 0, item, addon, value, rowid from item_addon where {scope} union all "
            f"select 1, item, name, value, rowid from item_param where {scope} union all "
            f"select 2, item, ip, null, rowid from item_ip where {scope}",
            scoped * 3,
        ):
            if item not in ips:
                continue  # an item added since the first query: not asked for
            if kind == 2:
                ips[item].append((rowid, name))
            else:
                kinds[kind][item][name] = value
        return [
            Item(
                *r[:10],
                bool(r[10]),
                r[11],
                addons[r[0]],
                params_of[r[0]],
                _ips(ips[r[0]]),
            )
            for r in rows
        ]

    def item(self, item_id: int) -> Item | None:
        found = self._items("id = ?", [item_id])
        return found[0] if found else None

    def items(self, remote_module: int | None = None) -> list[Item]:
        if remote_module is None:
            return self._items("1")
        return self._items("remote_module = ?", [remote_module])

    def items_as_listed(self, remote_module: int, params: Iterable[str]) -> list[ItemAsListed]:
        """The module's items as their list rows show them, with only the `params` a row shows,
        in the order SQLite finds them: a daily reconcile compares thousands, and their add-ons
        and other parameters would cross into Python for nothing."""
        params_of: dict[int, dict] = {}
        # the parameters found by their names' index (CROSS JOIN keeps it the outer loop): most
        # services have none of them, and a probe per service and name costs more than the rest
        for item, name, value in self.db.execute(
            "select p.item, p.name, p.value from item_param p cross join item i "
            "on i.id = p.item where p.name in (select value from json_each(?)) "
            "and i.remote_module = ?",
            [json.dumps(list(params)), remote_module],
        ):
            params_of.setdefault(item, {})[name] = value
        # each item with its IPs (in no order: a row's IP is only looked for among them), in
        # one query read as the indexes give it: two, each sorted, cost half as much again
        held: dict[int, ItemAsListed] = {}
        for item, itemtype, remote_id, status, expiredate, has_ip, ip in self.db.execute(
            "select i.id, i.itemtype, i.remote_id, i.status, i.expiredate, p.item, p.ip "
            "from item i left join item_ip p on p.item = i.id where i.remote_module = ?",
            [remote_module],
        ):
            found = held.get(item)
            if found is not None:
                found.ips.append(ip)
                continue
            ips = [] if has_ip is None else [ip]
            held[item] = ItemAsListed(
                item, itemtype, remote_id, status, expiredate, params_of.get(item) or {}, ips
            )
        return list(held.values())

    def items_of_ids(self, item_ids: list[int]) -> list[Item]:
        """The items of `item_ids` that exist, by id, in one query however many."""
        if not item_ids:  # most autoprolong ticks
            return []
        return self._items("id in (select value from json_each(?))", [json.dumps(item_ids)])

    def items_of_tariff(self, pricelist_id: int) -> list[Item]:
        return self._items("pricelist = ?", [pricelist_id])

    def awaiting_autoprolong(self, until: str) -> list[int]:
        """Linked autoprolong services, active or suspended, that expire by `until` and have no
        prolongation but done ones (its latest decides), by id: one query, and no service read
        that a prolongation under way already covers."""
        rows = self.db.execute(
            "select id from item where autoprolong = 1 and status in (2, 3) and remote_id is not "
            "null and expiredate <= ? and coalesce((select state from runningoperation o where "
            "o.item = item.id and o.kind = ? order by o.id desc limit 1), ?) = ? order by id",
            [until, PROLONG, DONE, DONE],
        )
        return [item_id for (item_id,) in rows]

    def next_autoprolong_expiry(self, after: str) -> str | None:
        """The earliest expiry after `after` of a linked autoprolong service still running."""
        row = self._one(
            "select min(expiredate) as expiry from item where autoprolong = 1 and status in "
            "(2, 3) and remote_id is not null and expiredate > ?",
            [after],
        )
        return row["expiry"] if row else None

    def item_of_remote(self, module_id: int, remote_id: int) -> Item | None:
        found = self._items("remote_module = ? and remote_id = ?", [module_id, remote_id])
        return found[0] if found else None

    def items_of_remotes(
        self, module_id: int, remote_ids: Iterable[int]
    ) -> dict[int, ItemAsPolled]:
        """The module's services of `remote_ids` by the seller's id, as a poll reads them."""
        # in as few queries as SQLite's limit on bound variables allows (a poll names
        # thousands), each id bound on its own, the module once; as `item_of_remote`, the first
        # if two share an id
        wanted = sorted(remote_ids)
        per_query = self.db.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 1
        found: dict[int, ItemAsPolled] = {}
        for first in range(0, len(wanted), per_query):
            group = wanted[first : first + per_query]
            for item in self._items_as_polled(
                f"remote_module = ? and remote_id in ({', '.join('?' * len(group))})",
                [module_id, *group],
            ):
                found.setdefault(item.remote_id, item)
        return found

    def item_as_polled(self, item_id: int) -> ItemAsPolled | None:
        found = self._items_as_polled("id = ?", [item_id])
        return found[0] if found else None

    def _items_as_polled(self, where: str, params: list) -> list[ItemAsPolled]:
        """The items `where` picks, by id, their own columns only, as a poll's events read them."""
        # none of their add-ons, params or IPs: most events write one and read none
        return [
            ItemAsPolled(*row)
            for row in self.db.execute(
                "select id, pricelist, remote_module, remote_id, status, expiredate from item "
                f"where {where} order by id",
                params,
            )
        ]

    def item_addons(self, item_id: int) -> dict[str, str]:
        """A service's add-on values by name, as stored now."""
        return dict(
            self.db.execute("select addon, value from item_addon where item = ?", [item_id])
        )

    def update_item(self, item_id: int, **fields) -> None:
        if "autoprolong" in fields:
            fields["autoprolong"] = int(bool(fields["autoprolong"]))
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"update item set {sets} where id = ?", [*fields.values(), item_id])

    def set_item_addon(self, item_id: int, addon: str, value: str) -> None:
        self.db.execute(
            "insert or replace into item_addon (item, addon, value) values (?, ?, ?)",
            [item_id, addon, value],
        )

    def set_item_param(self, item_id: int, name: str, value: str) -> None:
        self.db.execute(
            "insert or replace into item_param (item, name, value) values (?, ?, ?)",
            [item_id, name, value],
        )

    def add_ip(self, item_id: int, ip: str) -> None:
        self.db.execute("insert or ignore into item_ip (item, ip) values (?, ?)", [item_id, ip])

    def remove_ip(self, item_id: int, ip: str) -> None:
        self.db.execute("delete from item_ip where item = ? and ip = ?", [item_id, ip])

    def set_ips(self, item_id: int, ips: list[str]) -> None:
        with self.atomic():
            self.db.execute("delete from item_ip where item = ?", [item_id])
            for ip in ips:
                self.add_ip(item_id, ip)

    def items_sharing(self, identities: set[tuple[str, str]]) -> list[Item]:
        """Services not deleted that have one of `identities` (see `model.identities`)."""
        ids: set[int] = set()
        for kind, value in identities:
            if kind == "IP":
                rows = self._all("select item from item_ip where ip = ?", [value])
            elif kind == "username":
                rows = self._all(
                    "select item from item_param where name = 'username' and value = ?", [value]
                )
            else:
                rows = self._all("select item from item_param where name = 'licname'")
            ids.update(r["item"] for r in rows)
        found = [self.item(i) for i in sorted(ids)]
        return [i for i in found if i.status != 4 and identities & i.identities()]

    # -- running operations and tasks --------------------------------------------------------

    def add_operation(self, item_id: int, kind: str, params: dict, now: datetime) -> int:
        return self.db.execute(
            "insert into runningoperation (item, kind, state, outcome, params, attempts, "
            "failures, next_try, created, updated) values (?, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
            [
                item_id,
                kind,
                RUNNING,
                NOTHING,
                json.dumps(params),
                stamp(now),
                stamp(now),
                stamp(now),
            ],
        ).lastrowid

    @staticmethod
    def _operation(row: tuple | None) -> Operation | None:
        """An operation from its row as `_OPERATIONS` selects it."""
        if row is None:
            return None
        op_id, item, kind, state, outcome, params, attempts, failures = row[:8]
        first_failure, next_try, error_type, error_msg, owner, lease_until = row[8:14]
        return Operation(
            op_id,
            item,
            kind,
            state,
            outcome or NOTHING,
            json.loads(params),
            attempts,
            failures,
            _when(first_failure),
            _when(next_try),
            error_type,
            error_msg,
            owner,
            _when(lease_until),
            _when(row[14]),
            _when(row[15]),
        )

    def _operations(self, where: str, params: Iterable = ()) -> list[Operation]:
        """The operations `where` (a condition and order on `runningoperation`) picks."""
        return [self._operation(r) for r in self.db.execute(f"{_OPERATIONS} {where}", params)]

    def operation(self, operation_id: int) -> Operation | None:
        found = self._operations("where id = ?", (operation_id,))
        return found[0] if found else None

    def operations(self, item_id: int | None = None) -> list[Operation]:
        if item_id is None:
            return self._operations("order by id")
        return self._operations("where item = ? order by id", (item_id,))

    def latest_operation(self, item_id: int) -> Operation | None:
        found = self._operations("where item = ? order by id desc limit 1", (item_id,))
        return found[0] if found else None

    def operations_from_first_awaiting(self, item_id: int) -> list[Operation]:
        """A service's operations from its first one awaiting the seller on (none if none
        awaits): all that a rule completing what awaits looks at, since it weighs only
        later operations against each; a long-lived service's history is not decoded."""
        return self._operations(
            "where item = ? and id >= (select min(id) from runningoperation where item = ? "
            "and state in (?, ?) and outcome in (?, ?)) order by id",
            (item_id, item_id, RUNNING, MANUAL, UNKNOWN, ACCEPTED),
        )

    def operations_from_first_awaiting_of(self, item_ids: list[int]) -> dict[int, list[Operation]]:
        """`operations_from_first_awaiting` of each of `item_ids`, in one query however many."""
        # an empty list for one with none awaiting; a month's prolongations come in one poll
        found: dict[int, list[Operation]] = {item_id: [] for item_id in item_ids}
        if not item_ids:
            return found
        columns = ", ".join(f"o.{name}" for name in _OPERATION_COLUMNS.split(", "))
        for row in self.db.execute(
            f"select {columns} from (select item, min(id) as first from runningoperation where "
            "item in (select value from json_each(?)) and state in (?, ?) and outcome in (?, ?) "
            "group by item) f join runningoperation o on o.item = f.item and o.id >= f.first "
            "order by o.item, o.id",
            [json.dumps(item_ids), RUNNING, MANUAL, UNKNOWN, ACCEPTED],
        ):
            operation = self._operation(row)
            found[operation.item].append(operation)
        return found

    def items_awaiting_seller(self, module_id: int) -> set[int]:
        """The module's services with an operation the seller's word may complete."""
        rows = self._all(
            "select distinct o.item from runningoperation o join item i on i.id = o.item "
            "where i.remote_module = ? and o.state in (?, ?) and o.outcome in (?, ?)",
            [module_id, RUNNING, MANUAL, UNKNOWN, ACCEPTED],
        )
        return {r["item"] for r in rows}

    def earlier_running(self, operation: Operation) -> list[Operation]:
        """Operations on the same service, asked for before this one, still running."""
        return self._operations(
            "where item = ? and id < ? and state = ? order by id",
            (operation.item, operation.id, RUNNING),
        )

    def save_operation(
        self, operation: Operation, owner: str | None = None, was: Operation | None = None
    ) -> bool:
        """Write an operation after a transition. With `owner`, only while that owner still
        holds its claim (an event or another process may have settled it meanwhile); whether
        it was written. With `was`, the operation as its row holds it, only the columns the
        transition changed are written (and `updated`): an attempt saves its operation three
        times, each changing a few of its twelve columns."""
        after, before = vars(operation), vars(was) if was is not None else None
        names, params = [], []
        for name in _OPERATION_WRITES:
            value = after[name]
            if before is not None and value == before[name] and name != "updated":
                continue
            if name == "params":
                value = json.dumps(value)
            elif name in _OPERATION_TIMES:
                value = stamp(value)
            names.append(name)
            params.append(value)
        params.append(operation.id)
        if owner is not None:
            params += (owner, RUNNING)
        sql = _operation_update(tuple(names), owner is not None)
        return self.db.execute(sql, params).rowcount == 1

    def due_operations(self, now: datetime) -> list[int]:
        """Running operations an attempt may start on now, by when they fell due."""
        rows = self._all(
            "select id, next_try, owner, lease_until from runningoperation where state = ? "
            "and (next_try <= ? or (owner is not null and lease_until <= ?)) "
            "order by next_try, id",
            [RUNNING, stamp(now), stamp(now)],
        )
        return [
            r["id"]
            for r in rows
            if (r["next_try"] or "") <= stamp(now)
            and (r["owner"] is None or (r["lease_until"] or "") <= stamp(now))
        ]

    def next_due(self) -> datetime | None:
        """When an attempt may next start on any running operation."""
        row = self._one(
            "select min(case when owner is not null and lease_until > next_try then lease_until "
            "else next_try end) as t from runningoperation where state = ?",
            [RUNNING],
        )
        return _when(row["t"]) if row else None

    def add_task(self, operation_id: int, type: str, now: datetime) -> None:
        self.db.execute(
            "insert into task (runningoperation, type, status, created) values (?, ?, 'open', ?)",
            [operation_id, type, stamp(now)],
        )

    def close_tasks(self, operation_id: int, now: datetime) -> None:
        self.db.execute(
            "update task set status = 'closed', closed = ? where runningoperation = ? "
            "and status = 'open'",
            [stamp(now), operation_id],
        )

    def tasks(self) -> list[dict]:
        return self._all("select * from task order by id")

    # -- events ------------------------------------------------------------------------------

    def _save_events(self, module_id: int, events: list, now: datetime) -> int:
        """Write fetched events to `itemevent`, dropping ones seen before; how many were new."""
        (last,) = self.db.execute(
            "select last_event_id from processingmodule where id = ?", [module_id]
        ).fetchone()
        # A poll brings thousands of events over few expiry days: each day is formatted once.
        days: dict[date | None, str | None] = {}
        fresh, fetched = [], stamp(now)
        for e in events:
            if e.id <= (last or 0):  # applied already
                continue
            if e.expires not in days:
                days[e.expires] = day(e.expires)
            fresh.append(
                (
                    module_id,
                    e.id,
                    e.type,
                    e.service,
                    e.remoteid,
                    e.status,
                    days[e.expires],
                    e.name,
                    e.value,
                    _json_texts(e.ips),
                    fetched,
                    0,
                )
            )
        # One stored already (read again after a lost reply), or twice in one reply, is dropped
        # by the unique (processingmodule, event_id) index: the module's stored ids, unmatched
        # ones kept for good among them, are never read.
        return self.db.conn.executemany(
            "insert or ignore into itemevent (processingmodule, event_id, type, remote_item, "
            "remoteid, status, expiredate, name, value, ips, fetched, unmatched) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            fresh,
        ).rowcount

    def _events(self, where: str, params: Iterable = ()) -> list[StoredEvent]:
        """Stored events, read as plain rows: a poll may bring thousands. Each distinct list of
        IPs is decoded once (a service's events carry the same) and copied for each event."""
        ips_of: dict[str, list[str]] = {}
        found = []
        for row in self.db.conn.execute(f"select {_EVENT_COLUMNS} from itemevent {where}", params):
            row_id, module, event_id, kind, remote, remoteid, status, expiry = row[:8]
            name, value, ips, fetched = row[8:]
            ips = ips or "[]"
            if ips not in ips_of:
                ips_of[ips] = json.loads(ips)
            found.append(
                StoredEvent(
                    row_id,
                    module,
                    event_id,
                    kind,
                    remote,
                    remoteid or "",
                    status,
                    expiry,
                    name or "",
                    value or "",
                    list(ips_of[ips]),
                    fetched,
                )
            )
        return found

    def has_pending_events(self, module_id: int) -> bool:
        """Whether the module has stored events not yet applied."""
        return (
            self.db.execute(
                "select 1 from itemevent where processingmodule = ? limit 1", [module_id]
            ).fetchone()
            is not None
        )

    def pending_events(self, module_id: int) -> list[StoredEvent]:
        """Stored events of the module not yet applied, in the seller's id order."""
        return self._events("where processingmodule = ? order by event_id", [module_id])

    def finish_events(self, applied: list[tuple[StoredEvent, int]], now: datetime) -> None:
        """Delete applied events, remember each was applied to its item, move the high-water mark.

        One statement each for all of them: a poll may bring thousands.
        """
        if not applied:
            return
        when = stamp(now)
        with self.atomic():
            self.db.execute(
                "delete from itemevent where id in (select value from json_each(?))",
                [json.dumps([event.id for event, _ in applied])],
            )
            self.db.conn.executemany(
                "insert into itemevent_applied (processingmodule, event_id, item, applied)"
                " values (?, ?, ?, ?)",
                [(event.module, event.event_id, item, when) for event, item in applied],
            )
            highest: dict[int, int] = {}
            for event, _ in applied:
                highest[event.module] = max(highest.get(event.module, 0), event.event_id)
            for module, event_id in highest.items():
                self.db.execute(
                    "update processingmodule set last_event_id = max(last_event_id, ?) "
                    "where id = ?",
                    [event_id, module],
                )

    def mark_unmatched(self, row_id: int) -> None:
        self.db.execute("update itemevent set unmatched = 1 where id = ?", [row_id])

    def unmatched_events(self) -> list[StoredEvent]:
        return self._events("where unmatched = 1 order by event_id")

    def applied_events(self) -> list[AppliedEvent]:
        return [
            AppliedEvent(r["processingmodule"], r["event_id"], r["item"], r["applied"])
            for r in self._all("select * from itemevent_applied order by id")
        ]

    # -- service import ----------------------------------------------------------------------

    def record_import(
        self, module_id: int, itemtype: str, mask: str, rows: list[dict], now: datetime
    ) -> int:
        """Record a finished listing task and replace the module's listed services of the type."""
        with self.atomic():
            task = self.db.execute(
                "insert into importtask (processingmodule, itemtype, mask, status, created, "
                "finished) values (?, ?, ?, 'done', ?, ?)",
                [module_id, itemtype, mask, stamp(now), stamp(now)],
            ).lastrowid
            self.db.execute(
                "delete from importservice where processingmodule = ? and itemtype = ?",
                [module_id, itemtype],
            )
            self.db.conn.executemany(
                "insert into importservice (importtask, processingmodule, remote_id, itemtype, "
                "name, remote_pricelist, status, expiredate, ips, params) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        task,
                        r["processingmodule"],
                        r["remote_id"],
                        r["itemtype"],
                        r["name"],
                        r["remote_pricelist"],
                        r["status"],
                        r["expiredate"],
                        r["ips"],
                        r["params"],
                    )
                    for r in rows
                ],
            )
        return task

    def listed_services(self, remote_id: int | None = None) -> list[dict]:
        if remote_id is None:
            return self._all("select * from importservice order by id")
        return self._all("select * from importservice where remote_id = ?", [remote_id])
