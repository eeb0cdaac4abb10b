"""The reseller engine beside a test's simulated seller: its own database, the seller's clock.

`ResellerEngine` is what the `reseller_engine` fixture gives a test: `reseller.engine.Engine`
over a `Store` on a database file, its seller client reaching the test's `billmanager` (over
the loopback socket, or routed in-process), and every use case that takes `now` called
without it, at the seller's clock's time, so both sides live on one clock.
"""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import requests

from reseller.client import SellerClient
from reseller.engine import CronReport, Engine
from reseller.model import PeriodRule
from reseller.store import Store
from simulator.side import SellerSide, is_loopback
from simulator.world import parse_duration

CRON = timedelta(minutes=5)


def _next_tick(when: datetime) -> datetime:
    """The first `*/5` cron tick after `when`."""
    base = when.replace(second=0, microsecond=0)
    return base + timedelta(minutes=5 - base.minute % 5)


class ResellerEngine:
    """The reseller engine selling what `seller` sells, on a database of its own, on its clock.

    Any `Engine` method is here too; one that takes `now` gets the seller's clock's time
    unless the call gives it (`reseller_engine.order("alice", "5-vds-1", 1)`).
    """

    def __init__(self, seller: SellerSide, db_path: str | Path | None = None):
        self.seller = seller
        self.store = Store(str(db_path) if db_path is not None else None)
        self.http = requests.Session()
        if is_loopback(seller.url):
            self.http.trust_env = False  # no proxy stands between us and a local simulator
        self.engine = Engine(self.store, self._open_client)

    def __repr__(self) -> str:
        return f"ResellerEngine({self.seller!r}, {self.store.path!r})"

    def _open_client(self, url: str, login: str, password: str) -> SellerClient:
        return SellerClient(url, login, password, self.http)

    def close(self) -> None:
        self.store.close()
        self.http.close()

    def __enter__(self) -> ResellerEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name: str):
        method = getattr(self.engine, name)
        if not callable(method) or "now" not in inspect.signature(method).parameters:
            return method

        def at_the_sellers_time(*args, **kwargs):
            kwargs.setdefault("now", self.now)
            return method(*args, **kwargs)

        at_the_sellers_time.__doc__ = method.__doc__
        return at_the_sellers_time

    @property
    def now(self) -> datetime:
        """The one clock's time: the seller's."""
        return self.seller.now

    # -- setting up --------------------------------------------------------------------------

    def load(self, reseller: dict) -> None:
        """Set up a scenario's `reseller` section: currency, rates, order periods, clients and
        modules (a module without `url` connects to this seller)."""
        self.engine.configure(
            reseller.get("currency"), reseller.get("rates") or {}, reseller.get("order_periods")
        )
        for name, spec in (reseller.get("clients") or {}).items():
            self.engine.add_client(str(name), (spec or {}).get("balance", 0))
        for name, spec in (reseller.get("modules") or {}).items():
            self.connect(
                str(name),
                str(spec["account"]),
                str(spec["password"]),
                url=spec.get("url"),
                periods=spec.get("periods"),
            )

    def connect(
        self,
        module: str,
        account: str,
        password: str,
        *,
        url: str | None = None,
        periods: list[dict] | None = None,
    ) -> int:
        """Connect a processing module to `account` at this seller (or at `url`); its id.

        `periods`: the module's period rules, `{from, to, tariff}` each, as in a scenario.
        """
        rules = [PeriodRule(int(r["from"]), int(r["to"]), r.get("tariff")) for r in periods or []]
        return self.engine.connect(
            module, url or self.seller.api_url, account, password, rules, self.now
        )

    def add_client(self, name: str, balance: Decimal | int | str = 0) -> int:
        return self.engine.add_client(name, balance)

    # -- time --------------------------------------------------------------------------------

    def cron(self, now: datetime | None = None) -> CronReport:
        """One cron tick now: every module's poll (`checkevent`), retries and autoprolong."""
        return self.engine.cron(now or self.now)

    def advance(self, duration: str | timedelta) -> datetime:
        """Move the one clock on by `duration` (`5m`, `2h`, `1d`), as the daemon lives it: the
        seller's automation runs as its clock passes, the engine's cron at every 5-minute
        tick and its retries when due. The new time."""
        step = duration if isinstance(duration, timedelta) else parse_duration(duration)
        until = self.now + step
        tick = _next_tick(self.now)
        while True:
            due = self.engine.next_due()
            when = min(t for t in (tick, due) if t is not None)
            when = max(when, self.now)
            if when > until:
                break
            self.seller.clock_to(when)
            if when >= tick:
                self.engine.cron(when)
                tick = _next_tick(when)
            else:
                self.engine.run_due(when)
        return self.seller.clock_to(until)
