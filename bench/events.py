"""Figure 3: fetching, storing and applying 10,000 events in one `checkevent`.

The engine works on a database file (WAL, as the reseller runs) holding 1,000 linked services,
each with a year of history (12 prolongations and 52 add-on changes done, their events
applied). Its seller client is the real one, parsing the seller's reply: the feed's bytes, as
the simulator renders them, handed over without a wire (figures 1 and 2 measure the wire). The
floor writes the same `itemevent` rows with one sqlite-utils `insert_all` into the same kind
of file.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import sqlite_utils

from bench.common import START, Figure, paired
from reseller.client import RemoteEvent, SellerClient
from reseller.engine import Engine
from reseller.model import ACTIVE, AddonSpec
from reseller.store import SCHEMA, Store, day, stamp
from simulator.formats import rows as list_document
from simulator.formats import to_xml
from simulator.functions.events import event_row
from simulator.model import Event

SERVICES = 1000
LIMIT = 5.0
# One round gives every service one event, of these kinds in turn.
ROUNDS = ("param", "addon", "ip_add", "ip_del", "suspend", "resume", "expire")
STATUS = {"suspend": 3}


class Feed:
    """A seller client whose event feed was fetched already."""

    def __init__(self, events: list[RemoteEvent]):
        self._events = events

    def events(self) -> list[RemoteEvent]:
        return self._events


class Reply:
    """A seller's HTTP reply as `requests` gives it."""

    status_code = 200

    def __init__(self, content: bytes):
        self.content = content


class RenderedFeed:
    """A `requests` session whose seller answers the log-in and then the feed's bytes."""

    AUTH = b'<?xml version="1.0" encoding="UTF-8"?><doc><auth id="s1">s1</auth></doc>'

    def __init__(self, feed_bytes: bytes):
        self.feed_bytes = feed_bytes

    def post(self, url: str, data: dict, timeout: float) -> Reply:
        return Reply(self.feed_bytes if data["func"] == "itemevent" else self.AUTH)


def feed_bytes(events: list[RemoteEvent]) -> bytes:
    """The simulator's `itemevent` reply carrying these events, as it renders it."""
    rendered = [
        event_row(
            Event(
                e.id,
                "reseller",
                e.type,
                e.service,
                e.remoteid,
                START,
                e.status,
                e.expires,
                e.name,
                e.value,
                list(e.ips),
            )
        )
        for e in events
    ]
    total = len(events)
    return to_xml(list_document(rendered, p_elems=total, p_num=1, p_cnt=max(total, 1)).root)


def feed(count: int) -> list[RemoteEvent]:
    """`count` events over the services, round by round, in the seller's id order."""
    events = []
    expires = (START + timedelta(days=31)).date()
    for n in range(count):
        service, kind = n % SERVICES, ROUNDS[(n // SERVICES) % len(ROUNDS)]
        remote = 100_000 + service
        name, value = {
            "param": ("hostname", f"web{n}"),
            "addon": ("ram", str(1024 + 1024 * (n % 4))),
            "ip_add": ("ip", f"10.1.{service // 250}.{service % 250}"),
            "ip_del": ("ip", f"10.1.{service // 250}.{service % 250}"),
            "expire": ("expiredate", expires.isoformat()),
        }.get(kind, ("", ""))
        events.append(
            RemoteEvent(
                id=n + 1,
                type=kind,
                service=remote,
                remoteid=str(service + 1),
                status=STATUS.get(kind, ACTIVE),
                expires=expires,
                name=name,
                value=value,
                ips=[f"203.0.113.{service % 250}"],
            )
        )
    return events


def engine_with_services(
    path: str | None,
    events: list[RemoteEvent],
    services: int = SERVICES,
    history: bool = False,
) -> Engine:
    """An engine on a new database (memory if no path): one tariff and linked active services,
    with `history` a year of each (prolongations and add-on changes done, events applied)."""
    store = Store(path)
    store.set_setting("currency", "EUR")
    module = store.add_module("seller", "http://seller", "reseller", "s3cret", [], START).id
    expires = day(START + timedelta(days=31))
    # In one transaction, as setting up is not what is measured; the store has no bulk
    # insert of services, so they go in one by one through its methods.
    with store.atomic():
        tariff = store.add_tariff("5-vds-1", "VDS-1", "vds", module, 5, "EUR")
        store.set_prices(tariff, {1: Decimal(10)})
        store.add_addon(tariff, AddonSpec("ram", "integer", 11, True, 1024, 8192, Decimal("0.002")))
        client = store.add_client("alice", Decimal(1000))
        for n in range(services):
            item = store.add_item(
                account=client,
                pricelist=tariff,
                itemtype="vds",
                processingmodule=module,
                remote_module=module,
                remote_id=100_000 + n,
                period=1,
                status=ACTIVE,
                expiredate=expires,
                autoprolong=False,
                createdate=stamp(START),
            )
            store.set_item_addon(item, "ram", "1024")
            store.add_ip(item, f"203.0.{113 + n // 250}.{n % 250}")
            if history:
                _year_of_history(store, item, module, 100_000 + n)
        if history:
            store.db.execute("update runningoperation set state = 'done', outcome = 'accepted'")
    return Engine(store, lambda url, login, password: Feed(events))


def _year_of_history(store: Store, item: int, module: int, remote: int) -> None:
    """A year of a service's operations, done, and the events that confirmed them, applied."""
    for week in range(52):
        when = START - timedelta(weeks=52 - week)
        if week % 4 == 0:
            before = day(when + timedelta(days=31))
            store.add_operation(item, "prolong", {"period": 1, "before": before}, when)
        operation = store.add_operation(item, "setparam", {"addons": {"ram": "2048"}}, when)
        store.add_task(operation, "setparam", when)
        store.close_tasks(operation, when)
    store.db.conn.executemany(
        "insert into itemevent_applied (processingmodule, event_id, item, applied) "
        "values (?, ?, ?, ?)",
        [(module, -(remote * 100 + week), item, stamp(START)) for week in range(52)],
    )


def rows(events: list[RemoteEvent]) -> list[dict]:
    """The `itemevent` rows the engine stores for these events."""
    return [
        {
            "processingmodule": 1,
            "event_id": e.id,
            "type": e.type,
            "remote_item": e.service,
            "remoteid": e.remoteid,
            "status": e.status,
            "expiredate": day(e.expires),
            "name": e.name,
            "value": e.value,
            "ips": json.dumps(e.ips),
            "fetched": stamp(START),
            "unmatched": 0,
        }
        for e in events
    ]


def measure(quick: bool) -> list[Figure]:
    count, repetitions = (1_000, 3) if quick else (10_000, 5)
    events = feed(count)
    event_rows = rows(events)
    content = feed_bytes(events)
    with tempfile.TemporaryDirectory(prefix="bench-events-") as folder:
        runs = iter(range(10**6))
        built = Path(folder) / "history.db"
        engine_with_services(str(built), events, history=True).store.close()

        def checkevent() -> float:
            path = str(Path(folder) / f"engine-{next(runs)}.db")
            shutil.copyfile(built, path)
            engine = Engine(
                Store(path),
                lambda url, login, password: SellerClient(
                    url, login, password, RenderedFeed(content)
                ),
            )
            began = time.perf_counter()
            report = engine.checkevent("seller", START + timedelta(minutes=5))
            took = time.perf_counter() - began
            if report.applied != count or report.unmatched:
                raise AssertionError(f"applied {report.applied} of {count} events")
            engine.store.close()
            return took

        def insert_all() -> float:
            db = sqlite_utils.Database(str(Path(folder) / f"floor-{next(runs)}.db"))
            db.enable_wal()
            db.execute("PRAGMA synchronous=NORMAL")
            columns, pk = SCHEMA["itemevent"]
            db["itemevent"].create(columns, pk=pk)
            began = time.perf_counter()
            db["itemevent"].insert_all(event_rows)
            took = time.perf_counter() - began
            db.close()
            return took

        value, floor = paired(checkevent, insert_all, repetitions)
    return [
        Figure.within(
            3,
            f"{count:,} events fetched, stored and applied in one checkevent, a year of history",
            value * 1000,
            floor * 1000,
            LIMIT,
            unit="ms",
            floor_name="sqlite-utils insert_all of the same itemevent rows, same kind of file",
        )
    ]
