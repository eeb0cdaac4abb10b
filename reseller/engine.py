"""The reseller engine: BILLmanager's "BILLmanager" processing module at work, one face over its
rooms (tariffs, operations, events, reconcile).

Every use case takes `now`; the engine never reads a clock. Its dependencies come in: a
`Store` and a function that opens a `SellerClient` for a module's URL and login.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from reseller.client import SellerClient
from reseller.errors import ResellerError, SellerError, SellerUnavailable
from reseller.events import EventReport, Events
from reseller.model import (
    CLIENT_LEVEL,
    Client,
    Item,
    Module,
    PeriodRule,
    Tariff,
    amount,
    seller_address,
)
from reseller.operations import Operations
from reseller.reconcile import Reconciler
from reseller.store import Store
from reseller.tariffs import Tariffs

ClientFactory = Callable[[str, str, str], SellerClient]


class Engine:
    """The reselling BILLmanager: modules, tariffs, clients, services and their operations."""

    def __init__(self, store: Store, open_client: ClientFactory, owner: str | None = None):
        self.store = store
        self.open_client = open_client
        # whose claims and poll marks are whose, when several processes share one database
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._sellers: dict[int, SellerClient] = {}
        # A test hook: called with a point's name where a crash would hurt most.
        self.crash_point: Callable[[str], None] = lambda name: None
        self.tariffs = Tariffs(self)
        self.operations = Operations(self)
        self.events = Events(self)
        self.reconciler = Reconciler(self)

    # -- configuration, modules and clients --------------------------------------------------

    def configure(
        self,
        currency: str | None = None,
        rates: dict | None = None,
        order_periods: list[int] | None = None,
    ) -> None:
        """Set the main currency, exchange rates (1 unit of X = rate main) and order periods."""
        checked = {code: amount(rate, f"rate of {code}") for code, rate in (rates or {}).items()}
        for code, rate in checked.items():
            if rate == 0:
                raise ResellerError("value", f"rate of {code}: must be above 0")
        try:
            periods = sorted(int(str(p)) for p in order_periods or [])
        except ValueError:
            raise ResellerError(
                "value", f"order periods: {order_periods!r} are not period codes like 1, 3, 12"
            ) from None
        with self.store.atomic():
            if currency is not None:
                self.store.set_setting("currency", currency)
            for code, rate in checked.items():
                self.store.set_rate(code, rate)
            if order_periods is not None:
                self.store.set_setting("order_periods", periods)

    def seller(self, module: Module) -> SellerClient:
        """The conversation with a module's seller account, opened once per engine."""
        if module.id not in self._sellers:
            self._sellers[module.id] = self.open_client(module.url, module.login, module.password)
        return self._sellers[module.id]

    def module(self, name: str) -> Module:
        module = self.store.module(name)
        if module is None:
            raise ResellerError("unknown", f"no processing module '{name}'")
        return module

    def connect(
        self,
        name: str,
        url: str,
        login: str,
        password: str,
        periods: list[PeriodRule],
        now: datetime,
    ) -> int:
        """Add a BILLmanager processing module after checking the seller account behind it."""
        if self.store.module(name):
            raise ResellerError("exists", f"a processing module named '{name}' exists")
        other = next(
            (
                m
                for m in self.store.modules()
                if m.login == login and seller_address(m.url) == seller_address(url)
            ),
            None,
        )
        if other:
            raise ResellerError(
                "duplicate_connection",
                f"module '{other.name}' already uses account '{login}' at {url}; the seller's "
                "event feed empties on read, so two modules on one account lose events",
            )
        who = self.open_client(url, login, password).whoami()
        if who["level"] != CLIENT_LEVEL:
            raise ResellerError(
                "access",
                f"account '{login}' has level {who['level']}; the "
                "seller account must be client level (16)",
            )
        return self.store.add_module(name, url, login, password, periods, now).id

    def add_client(self, name: str, balance=0) -> int:
        if self.store.client(name):
            raise ResellerError("exists", f"client '{name}' exists")
        return self.store.add_client(name, amount(balance, f"balance of {name}"))

    def client(self, name: str) -> Client:
        client = self.store.client(name)
        if client is None:
            raise ResellerError("unknown", f"no client '{name}'")
        return client

    def topup(self, name: str, value, now: datetime) -> None:
        money = amount(value, "amount")
        if money <= 0:
            raise ResellerError("value", f"a top-up must be positive, not {money}")
        self.store.move_money(self.client(name).id, money, "topup", now)

    def item(self, item_id: int) -> Item:
        # no id is as large as SQLite's integers go, and asking for one would overflow
        item = self.store.item(item_id) if 0 < int(item_id) < 2**63 else None
        if item is None:
            raise ResellerError("unknown", f"no service {item_id}")
        return item

    # -- tariffs -----------------------------------------------------------------------------

    def tariff(self, intname: str) -> Tariff:
        return self.tariffs.tariff(intname)

    def import_tariff(self, module_name: str, remote_id: int, now: datetime) -> str:
        return self.tariffs.import_tariff(module_name, remote_id, now)

    def sync_tariff(self, intname: str, now: datetime) -> list[str]:
        return self.tariffs.sync_tariff(intname, now)

    def set_price(self, intname: str, prices: dict | None = None, addons: dict | None = None):
        return self.tariffs.set_price(intname, prices, addons)

    # -- services and their operations -------------------------------------------------------

    def order(self, client: str, tariff: str, period: int, now: datetime, **options) -> int:
        """Charge the client, create the service and its `open` operation, and run it."""
        return self.operations.order(client, tariff, period, now, **options)

    def prolong(self, item_id: int, period: int, now: datetime) -> int:
        return self.operations.prolong(item_id, period, now)

    def change_status(self, item_id: int, kind: str, now: datetime) -> int:
        return self.operations.change_status(item_id, kind, now)

    def set_addons(self, item_id: int, addons: dict, now: datetime) -> int:
        return self.operations.set_addons(item_id, addons, now)

    def restart(self, item_id: int, now: datetime) -> int:
        return self.operations.restart(item_id, now)

    def change_tariff(self, item_id: int, tariff: str, now: datetime) -> None:
        return self.operations.change_tariff(item_id, tariff, now)

    def set_module(self, item_id: int, module_name: str) -> None:
        return self.operations.set_module(item_id, module_name)

    def run_operation(self, operation_id: int, now: datetime) -> str:
        return self.operations.run(operation_id, now)

    def run_due(self, now: datetime) -> list[int]:
        return self.operations.run_due(now)

    def next_due(self) -> datetime | None:
        return self.operations.next_due()

    def autoprolong(self, now: datetime) -> list[int]:
        return self.operations.autoprolong(now)

    def autoprolong_due(self, now: datetime) -> bool:
        return self.operations.autoprolong_due(now)

    # -- events, reconcile, import -----------------------------------------------------------

    def checkevent(self, module_name: str, now: datetime) -> EventReport:
        return self.events.checkevent(module_name, now)

    def reconcile(self, module_name: str, now: datetime) -> list[str]:
        return self.reconciler.reconcile(module_name, now)

    def import_services(self, module_name: str, itemtype: str, mask: str, now: datetime):
        return self.reconciler.import_services(module_name, itemtype, mask, now)

    def assign(self, remote_id: int, client: str, now: datetime) -> int:
        return self.reconciler.assign(remote_id, client, now)

    def cron(self, now: datetime) -> CronReport:
        """The 5-minute cron: `checkevent` for every module, at the first tick of each day a
        reconcile of each too (list-first: see `reseller.reconcile`), then due retries and
        autoprolong."""
        report = CronReport()
        for module in self.store.modules():
            tick = report.modules[module.name] = ModuleTick()
            try:
                tick.events = self.events.poll(module, now)
                if module.reconciles_on(now):
                    tick.reconciled = self.reconciler.reconcile_module(module, now, daily=True)
                    self.store.set_reconciled(module.id, now)
            except (SellerUnavailable, SellerError) as error:
                tick.error = _message(error)
        report.retried = self.operations.retry(now)
        report.prolonged = self.operations.autoprolong(now)
        return report


@dataclass
class ModuleTick:
    """What one cron tick did for a module: its poll, a daily reconcile, or why it could not."""

    events: EventReport | None = None
    reconciled: list[str] | None = None
    error: str | None = None


@dataclass
class CronReport:
    """One cron tick: each module's poll, the operations retried, the services prolonged."""

    modules: dict[str, ModuleTick] = field(default_factory=dict)
    retried: list[int] = field(default_factory=list)
    prolonged: list[int] = field(default_factory=list)


def _message(error) -> str:
    return (
        error.message if isinstance(error, SellerUnavailable) else f"{error.type}: {error.message}"
    )
