"""The reseller's database: the only module that imports sqlite_utils.

Tables carry BILLmanager's own names where the docs give them: `item` (status 1-4,
`expiredate`, `processingmodule`), `itemevent`, `pricelist` (`intname`), `runningoperation`,
`task`. Amounts are stored as decimal text, never as floats.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal

import sqlite_utils

from reseller.domain import AddonSpec, PeriodRule

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
            "params": str,
            "attempts": int,
            "failures": int,
            "first_failure": str,
            "next_try": str,
            "accepted": int,
            "error_type": str,
            "error_msg": str,
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
    ("itemevent", ["processingmodule", "event_id"], True),
    ("itemevent_applied", ["processingmodule", "event_id"], False),
    ("expense", ["item"], False),
]


def stamp(when: datetime | None) -> str | None:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else None


def day(when: date | datetime | None) -> str | None:
    return when.strftime("%Y-%m-%d") if when else None


# The statements that made the first store in memory, for the next ones to run as they are.
_MEMORY_SCHEMA: list[str] = []


class Store:
    """The engine's state in SQLite: a file, or memory when no path is given."""

    def __init__(self, path: str | None = None):
        self.db = sqlite_utils.Database(path) if path else sqlite_utils.Database(memory=True)
        if path:
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous=NORMAL")
        if not path and _MEMORY_SCHEMA:
            # A property builds a store per example: replaying the first store's statements
            # skips sqlite-utils' introspection of every table, most of a store's set-up.
            with self.db.conn:
                for sql in _MEMORY_SCHEMA:
                    self.db.conn.execute(sql)
            return
        for name, (columns, pk) in SCHEMA.items():
            self.db[name].create(columns, pk=pk, if_not_exists=True)
        for table, columns, unique in INDEXES:
            self.db[table].create_index(columns, unique=unique, if_not_exists=True)
        if not path:
            _MEMORY_SCHEMA[:] = [
                sql
                for (sql,) in self.db.execute(
                    "select sql from sqlite_master where sql is not null "
                    "and name not like 'sqlite_%' order by rowid"
                )
            ]

    @contextmanager
    def atomic(self):
        """Several writes that stand or fall together."""
        with self.db.atomic():
            yield

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

    # -- settings ----------------------------------------------------------------------------

    def setting(self, key: str, default=None):
        row = self._one("select value from setting where key = ?", [key])
        return json.loads(row["value"]) if row else default

    def set_setting(self, key: str, value) -> None:
        self.db["setting"].upsert({"key": key, "value": json.dumps(value)}, pk="key")

    def rates(self) -> dict[str, Decimal]:
        return {r["currency"]: Decimal(r["rate"]) for r in self.db["currency_rate"].rows}

    def set_rate(self, currency: str, rate: Decimal) -> None:
        self.db["currency_rate"].upsert({"currency": currency, "rate": str(rate)}, pk="currency")

    # -- processing modules ------------------------------------------------------------------

    def add_module(
        self, name: str, url: str, login: str, password: str, rules: list[PeriodRule], now: datetime
    ) -> int:
        with self.atomic():
            module_id = (
                self.db["processingmodule"]
                .insert(
                    {
                        "name": name,
                        "url": url,
                        "login": login,
                        "password": password,
                        "last_event_id": 0,
                        "created": stamp(now),
                    }
                )
                .last_pk
            )
            self.db["periodmap"].insert_all(
                [
                    {
                        "processingmodule": module_id,
                        "source": r.source,
                        "target": r.target,
                        "pricelist": r.tariff,
                    }
                    for r in rules
                ]
            )
        return module_id

    def module(self, name: str) -> dict | None:
        return self._one("select * from processingmodule where name = ?", [name])

    def module_by_id(self, module_id: int) -> dict | None:
        return self._one("select * from processingmodule where id = ?", [module_id])

    def modules(self) -> list[dict]:
        return self._all("select * from processingmodule order by id")

    def module_on_account(self, url: str, login: str) -> dict | None:
        return self._one("select * from processingmodule where url = ? and login = ?", [url, login])

    def period_rules(self, module_id: int) -> list[PeriodRule]:
        return [
            PeriodRule(r["source"], r["target"], r["pricelist"])
            for r in self._all("select * from periodmap where processingmodule = ?", [module_id])
        ]

    # -- tariffs -----------------------------------------------------------------------------

    def pricelist(self, intname: str) -> dict | None:
        return self._one("select * from pricelist where intname = ?", [intname])

    def pricelist_by_id(self, pricelist_id: int) -> dict | None:
        return self._one("select * from pricelist where id = ?", [pricelist_id])

    def pricelist_of_remote(self, module_id: int, remote_id: int) -> dict | None:
        return self._one(
            "select * from pricelist where processingmodule = ? and remote_id = ?",
            [module_id, remote_id],
        )

    def add_pricelist(self, **row) -> int:
        return self.db["pricelist"].insert(row).last_pk

    def prices(self, pricelist_id: int) -> dict[int, Decimal]:
        return {
            r["period"]: Decimal(r["price"])
            for r in self._all(
                "select period, price from pricelist_price where pricelist = ? order by period",
                [pricelist_id],
            )
        }

    def set_prices(self, pricelist_id: int, prices: dict[int, Decimal]) -> None:
        self.db["pricelist_price"].upsert_all(
            [{"pricelist": pricelist_id, "period": p, "price": str(v)} for p, v in prices.items()],
            pk=("pricelist", "period"),
        )

    def addons(self, pricelist_id: int) -> dict[str, AddonSpec]:
        specs = {}
        for row in self._all("select * from addon where pricelist = ? order by id", [pricelist_id]):
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
                items = self._all(
                    "select * from enumerationitem where addon = ? order by id", [row["id"]]
                )
                spec.items = {i["intname"]: Decimal(i["price"]) for i in items}
                spec.item_ids = {i["intname"]: i["remote_id"] for i in items}
            specs[row["intname"]] = spec
        return specs

    def addon_id(self, pricelist_id: int, intname: str) -> int | None:
        row = self._one(
            "select id from addon where pricelist = ? and intname = ?", [pricelist_id, intname]
        )
        return row["id"] if row else None

    def add_addon(self, pricelist_id: int, spec: AddonSpec) -> int:
        addon_id = (
            self.db["addon"]
            .insert(
                {
                    "pricelist": pricelist_id,
                    "intname": spec.intname,
                    "type": spec.type,
                    "remote_id": spec.remote_id,
                    "enabled": int(spec.enabled),
                    "included": spec.included,
                    "max": spec.max,
                    "price": str(spec.price),
                }
            )
            .last_pk
        )
        for name, price in (spec.items or {}).items():
            self.add_enum_item(addon_id, name, (spec.item_ids or {})[name], price)
        return addon_id

    def delete_addon(self, pricelist_id: int, intname: str) -> None:
        addon_id = self.addon_id(pricelist_id, intname)
        self.db.execute("delete from enumerationitem where addon = ?", [addon_id])
        self.db.execute("delete from addon where id = ?", [addon_id])

    def set_addon_price(self, pricelist_id: int, intname: str, price: Decimal) -> None:
        self.db.execute(
            "update addon set price = ? where pricelist = ? and intname = ?",
            [str(price), pricelist_id, intname],
        )

    def add_enum_item(self, addon_id: int, intname: str, remote_id: int, price: Decimal) -> None:
        self.db["enumerationitem"].insert(
            {"addon": addon_id, "intname": intname, "remote_id": remote_id, "price": str(price)}
        )

    def delete_enum_item(self, addon_id: int, intname: str) -> None:
        self.db.execute(
            "delete from enumerationitem where addon = ? and intname = ?", [addon_id, intname]
        )

    def set_enum_item_price(self, addon_id: int, intname: str, price: Decimal) -> None:
        self.db.execute(
            "update enumerationitem set price = ? where addon = ? and intname = ?",
            [str(price), addon_id, intname],
        )

    def tariff_values(self, pricelist_id: int, param: str) -> list[str]:
        return [
            r["intname"]
            for r in self._all(
                "select intname from pricelist_paramvalue where pricelist = ? and param = ? "
                "order by rowid",
                [pricelist_id, param],
            )
        ]

    def assign_value(self, module_id: int, pricelist_id: int, param: str, value: str) -> None:
        """Hold `value` under the module and assign it to the tariff."""
        self.db["paramvalue"].insert(
            {"processingmodule": module_id, "param": param, "intname": value}, ignore=True
        )
        self.db["pricelist_paramvalue"].insert(
            {"pricelist": pricelist_id, "param": param, "intname": value}, ignore=True
        )

    def unassign_value(self, pricelist_id: int, param: str, value: str) -> None:
        self.db.execute(
            "delete from pricelist_paramvalue where pricelist = ? and param = ? and intname = ?",
            [pricelist_id, param, value],
        )

    # -- clients and money -------------------------------------------------------------------

    def add_client(self, name: str, balance: Decimal) -> int:
        return self.db["account"].insert({"name": name, "balance": str(balance)}).last_pk

    def client(self, name: str) -> dict | None:
        return self._one("select * from account where name = ?", [name])

    def client_by_id(self, client_id: int) -> dict | None:
        return self._one("select * from account where id = ?", [client_id])

    def clients(self) -> list[dict]:
        return self._all("select * from account order by id")

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
        balance = Decimal(self.client_by_id(client_id)["balance"]) + amount
        self.db.execute("update account set balance = ? where id = ?", [str(balance), client_id])
        self.db["expense"].insert(
            {
                "account": client_id,
                "item": item,
                "operation": operation,
                "amount": str(amount),
                "reason": reason,
                "date": stamp(now),
            }
        )

    def expenses(self) -> list[dict]:
        return self._all("select * from expense order by id")

    # -- items -------------------------------------------------------------------------------

    def add_item(self, **row) -> int:
        return self.db["item"].insert(row).last_pk

    def item(self, item_id: int) -> dict | None:
        return self._one("select * from item where id = ?", [item_id])

    def items(self, remote_module: int | None = None) -> list[dict]:
        if remote_module is None:
            return self._all("select * from item order by id")
        return self._all("select * from item where remote_module = ? order by id", [remote_module])

    def expiring_autoprolong(self, until: str) -> list[dict]:
        """Linked autoprolong services, active or suspended, that expire by `until`."""
        return self._all(
            "select * from item where autoprolong = 1 and status in (2, 3) and "
            "remote_id is not null and expiredate <= ? order by id",
            [until],
        )

    def item_of_remote(self, module_id: int, remote_id: int) -> dict | None:
        return self._one(
            "select * from item where remote_module = ? and remote_id = ?", [module_id, remote_id]
        )

    def update_item(self, item_id: int, **fields) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"update item set {sets} where id = ?", [*fields.values(), item_id])

    def item_addons(self, item_id: int) -> dict[str, str]:
        return {
            r["addon"]: r["value"]
            for r in self._all("select addon, value from item_addon where item = ?", [item_id])
        }

    def set_item_addon(self, item_id: int, addon: str, value: str) -> None:
        self.db.execute(
            "insert or replace into item_addon (item, addon, value) values (?, ?, ?)",
            [item_id, addon, value],
        )

    def rename_addon_value(self, pricelist_id: int, addon: str, old: str, new: str) -> None:
        """Store `new` wherever a service of the tariff holds `old` for the add-on."""
        self.db.execute(
            "update item_addon set value = ? where addon = ? and value = ? "
            "and item in (select id from item where pricelist = ?)",
            [new, addon, old, pricelist_id],
        )

    def item_params(self, item_id: int) -> dict[str, str]:
        return {
            r["name"]: r["value"]
            for r in self._all("select name, value from item_param where item = ?", [item_id])
        }

    def set_item_param(self, item_id: int, name: str, value: str) -> None:
        self.db.execute(
            "insert or replace into item_param (item, name, value) values (?, ?, ?)",
            [item_id, name, value],
        )

    def item_ips(self, item_id: int) -> list[str]:
        return [
            r["ip"]
            for r in self._all("select ip from item_ip where item = ? order by rowid", [item_id])
        ]

    def add_ip(self, item_id: int, ip: str) -> None:
        self.db.execute("insert or ignore into item_ip (item, ip) values (?, ?)", [item_id, ip])

    def remove_ip(self, item_id: int, ip: str) -> None:
        self.db.execute("delete from item_ip where item = ? and ip = ?", [item_id, ip])

    def set_ips(self, item_id: int, ips: list[str]) -> None:
        self.db.execute("delete from item_ip where item = ?", [item_id])
        for ip in ips:
            self.add_ip(item_id, ip)

    def items_with_ip(self, ip: str) -> list[int]:
        return [r["item"] for r in self._all("select item from item_ip where ip = ?", [ip])]

    def items_with_param(self, name: str, value: str) -> list[int]:
        return [
            r["item"]
            for r in self._all(
                "select item from item_param where name = ? and value = ?", [name, value]
            )
        ]

    # -- running operations and tasks --------------------------------------------------------

    def add_operation(self, item_id: int, kind: str, params: dict, now: datetime) -> int:
        return (
            self.db["runningoperation"]
            .insert(
                {
                    "item": item_id,
                    "kind": kind,
                    "state": "running",
                    "params": json.dumps(params),
                    "attempts": 0,
                    "failures": 0,
                    "next_try": stamp(now),
                    "accepted": 0,
                    "created": stamp(now),
                    "updated": stamp(now),
                }
            )
            .last_pk
        )

    def operation(self, operation_id: int) -> dict | None:
        row = self._one("select * from runningoperation where id = ?", [operation_id])
        if row:
            row["params"] = json.loads(row["params"])
        return row

    def operations(self, item_id: int | None = None) -> list[dict]:
        where, params = ("where item = ?", [item_id]) if item_id is not None else ("", [])
        rows = self._all(f"select * from runningoperation {where} order by id", params)
        for row in rows:
            row["params"] = json.loads(row["params"])
        return rows

    def latest_operation(self, item_id: int) -> dict | None:
        row = self._one(
            "select id from runningoperation where item = ? order by id desc limit 1", [item_id]
        )
        return self.operation(row["id"]) if row else None

    def due_operations(self, now: datetime) -> list[int]:
        return [
            r["id"]
            for r in self._all(
                "select id from runningoperation where state = 'running' and next_try <= ? "
                "order by next_try, id",
                [stamp(now)],
            )
        ]

    def next_retry(self) -> datetime | None:
        row = self._one("select min(next_try) as t from runningoperation where state = 'running'")
        return datetime.fromisoformat(row["t"]) if row and row["t"] else None

    def pending_operation(self, item_id: int, kind: str) -> dict | None:
        """The item's latest operation of `kind` still waiting for the seller's confirmation."""
        row = self._one(
            "select id from runningoperation where item = ? and kind = ? and state "
            "in ('running', 'manual') order by id desc limit 1",
            [item_id, kind],
        )
        return self.operation(row["id"]) if row else None

    def update_operation(self, operation_id: int, now: datetime, **fields) -> None:
        if "params" in fields:
            fields["params"] = json.dumps(fields["params"])
        fields["updated"] = stamp(now)
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(
            f"update runningoperation set {sets} where id = ?", [*fields.values(), operation_id]
        )

    def add_task(self, operation_id: int, type: str, now: datetime) -> None:
        self.db["task"].insert(
            {
                "runningoperation": operation_id,
                "type": type,
                "status": "open",
                "created": stamp(now),
            }
        )

    def close_tasks(self, operation_id: int, now: datetime) -> None:
        self.db.execute(
            "update task set status = 'closed', closed = ? where runningoperation = ? "
            "and status = 'open'",
            [stamp(now), operation_id],
        )

    # -- events ------------------------------------------------------------------------------

    def save_events(self, module_id: int, events: list, now: datetime) -> int:
        """Write fetched events to `itemevent` in one transaction, dropping ones seen before."""
        if not events:  # most polls: nothing to compare or write
            return 0
        module = self.module_by_id(module_id)
        seen = {
            r["event_id"]
            for r in self._all(
                "select event_id from itemevent where processingmodule = ?", [module_id]
            )
        }
        fresh, ids, fetched = [], set(), stamp(now)
        for e in events:
            if e.id <= module["last_event_id"] or e.id in seen or e.id in ids:
                continue
            ids.add(e.id)
            fresh.append(
                (
                    module_id,
                    e.id,
                    e.type,
                    e.service,
                    e.remoteid,
                    e.status,
                    day(e.expires),
                    e.name,
                    e.value,
                    json.dumps(e.ips),
                    fetched,
                    0,
                )
            )
        if fresh:  # raw SQL: sqlite-utils' insert_all costs more than the rest of a poll's work
            with self.atomic():
                self.db.conn.executemany(
                    "insert into itemevent (processingmodule, event_id, type, remote_item, "
                    "remoteid, status, expiredate, name, value, ips, fetched, unmatched) "
                    "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    fresh,
                )
        return len(fresh)

    def pending_events(self, module_id: int) -> list[dict]:
        rows = self._all(
            "select * from itemevent where processingmodule = ? order by event_id", [module_id]
        )
        for row in rows:
            row["ips"] = json.loads(row["ips"] or "[]")
        return rows

    def finish_events(self, applied: list[tuple[dict, int | None]], now: datetime) -> None:
        """Delete applied events, remember each was applied to its item, move the high-water mark.

        One statement each for all of them: a poll may bring thousands.
        """
        if not applied:
            return
        when = stamp(now)
        self.db.conn.executemany(
            "delete from itemevent where id = ?", [(row["id"],) for row, _ in applied]
        )
        self.db.conn.executemany(
            "insert into itemevent_applied (processingmodule, event_id, item, applied)"
            " values (?, ?, ?, ?)",
            [(row["processingmodule"], row["event_id"], item, when) for row, item in applied],
        )
        highest: dict[int, int] = {}
        for row, _ in applied:
            module = row["processingmodule"]
            highest[module] = max(highest.get(module, row["event_id"]), row["event_id"])
        for module, event_id in highest.items():
            self.db.execute(
                "update processingmodule set last_event_id = max(last_event_id, ?) where id = ?",
                [event_id, module],
            )

    def mark_unmatched(self, row_id: int) -> None:
        self.db.execute("update itemevent set unmatched = 1 where id = ?", [row_id])

    def unmatched_events(self) -> list[dict]:
        return self._all("select * from itemevent where unmatched = 1 order by event_id")

    def applied_events(self) -> list[dict]:
        return self._all("select * from itemevent_applied order by id")

    # -- service import ----------------------------------------------------------------------

    def record_import(
        self, module_id: int, itemtype: str, mask: str, rows: list[dict], now: datetime
    ) -> int:
        """Record a finished listing task and replace the module's listed services of the type."""
        with self.atomic():
            task = (
                self.db["importtask"]
                .insert(
                    {
                        "processingmodule": module_id,
                        "itemtype": itemtype,
                        "mask": mask,
                        "status": "done",
                        "created": stamp(now),
                        "finished": stamp(now),
                    }
                )
                .last_pk
            )
            self.db.execute(
                "delete from importservice where processingmodule = ? and itemtype = ?",
                [module_id, itemtype],
            )
            self.db["importservice"].insert_all([{**r, "importtask": task} for r in rows])
        return task

    def listed_services(self, remote_id: int) -> list[dict]:
        return self._all("select * from importservice where remote_id = ?", [remote_id])
