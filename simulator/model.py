"""The selling BILLmanager's state and rules: accounts, tariffs, services, events, money.

No HTTP here: `api` and `control` translate requests into calls on `Seller`.
Not simulated: carts, projects, datacenters, discounts, taxes, refunds, tariff changes.
"""

from __future__ import annotations

import heapq
import hmac
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from dateutil.relativedelta import relativedelta

from simulator.calllog import CallLog
from simulator.faults import Faults
from simulator.sessions import (
    FAILED_LOGIN_WINDOW,
    FAILED_LOGINS_MAX,
    FailedLogins,
    Sessions,
)

CLIENT_LEVEL = 16
ADMIN_LEVEL = 29
PRODUCT_TYPES = ("vds", "dedic", "vhost", "soft")
ORDERED, ACTIVE, SUSPENDED, DELETED = 1, 2, 3, 4
STATUS_NAMES = {ORDERED: "ordered", ACTIVE: "active", SUSPENDED: "suspended", DELETED: "deleted"}
DAY, TRIAL, LIFETIME = -50, -100, 0
TRIAL_LENGTH = timedelta(days=7)
CENT = Decimal("0.01")


class SellerError(Exception):
    """A refusal as BILLmanager gives it: `type`, `object` and a message, plus optional params."""

    def __init__(self, type: str, object: str = "", msg: str = "", params: dict | None = None):
        super().__init__(f"{type}: {msg}" if msg else type)
        self.type = type
        self.object = object
        self.msg = msg or type
        self.params = params or {}


def months_in(period: int) -> int:
    """How many months a period code covers; day, trial and lifetime cover none."""
    return period if period > 0 else 0


def period_end(start: datetime, period: int) -> datetime | None:
    """When a service opened at `start` for `period` expires; lifetime never does.

    SellerError `value` (on `period`) when that is past the calendar's end, 9999-12-31.
    """
    try:
        if period > 0:
            return start + relativedelta(months=period)
        if period == DAY:
            return start + timedelta(days=1)
        if period == TRIAL:
            return start + TRIAL_LENGTH
    except (OverflowError, ValueError):  # relativedelta says "year 10000 is out of range"
        raise SellerError(
            "value", "period", f"period {period} from {start:%Y-%m-%d} would end after 9999-12-31"
        ) from None
    return None


def later(start: datetime, delay: timedelta, what: str) -> datetime:
    """`start` plus `delay`; SellerError `value` (on `what`) past the calendar's end."""
    try:
        return start + delay
    except OverflowError:
        raise SellerError("value", what, f"{delay} after {start} is past 9999-12-31") from None


def distinct(services) -> list:
    """`services` with repeats dropped, in the order first given (`elid=1000, 1000`)."""
    return list({service.id: service for service in services}.values())


def cents(amount: Decimal) -> Decimal:
    """An amount rounded to the cent, as every debit is; SellerError `value` if too large."""
    try:
        return amount.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than Decimal keeps: no price is that large
        raise SellerError("value", "price", f"{amount:.3E} is too large to be a price") from None


@dataclass
class Addon:
    """A tariff add-on: integer (priced per unit above `included`), boolean, or enumeration."""

    id: int
    intname: str
    type: str
    included: int = 0
    max: int | None = None
    unit_price: Decimal = Decimal(0)
    price: Decimal = Decimal(0)
    items: dict[str, Decimal] = field(default_factory=dict)
    item_ids: dict[str, int] = field(default_factory=dict)

    def default(self):
        """The value an order that leaves this add-on out gets."""
        if self.type == "integer":
            return self.included
        if self.type == "boolean":
            return False
        return next(iter(self.items), None)

    def monthly_price(self, value) -> Decimal:
        """What this add-on costs a month at `value`."""
        if self.type == "integer":
            return self.unit_price * max(0, int(value) - self.included)
        if self.type == "boolean":
            return self.price if value else Decimal(0)
        return self.items.get(value, Decimal(0))

    def parse(self, raw: str):
        """A wire value (`addon_<id>=...`) as this add-on's value; SellerError `value` if bad."""
        name = f"addon_{self.id}"
        raw = str(raw).strip()
        if self.type == "integer":
            try:
                value = int(raw)
            except ValueError:
                raise SellerError("value", name, f"'{raw}' is not a whole number") from None
            if value < 0 or (self.max is not None and value > self.max):
                raise SellerError("value", name, f"{value} is outside 0..{self.max}")
            return value
        if self.type == "boolean":
            if raw.lower() in ("on", "1", "yes", "true"):
                return True
            if raw.lower() in ("off", "0", "no", "false", ""):
                return False
            raise SellerError("value", name, f"'{raw}' is not on or off")
        by_id = {str(self.item_ids[item]): item for item in self.items}
        if raw in by_id:
            return by_id[raw]
        if raw in self.items:
            return raw
        raise SellerError("value", name, f"'{raw}' is not an item of {self.intname}")

    def wire(self, value) -> str:
        """This add-on's value as the API shows it."""
        if self.type == "boolean":
            return "on" if value else "off"
        if self.type == "enumeration":
            return str(self.item_ids.get(value, ""))
        return str(value)


@dataclass
class Tariff:
    """A tariff plan (pricelist) with prices per period code and its add-ons."""

    id: int
    intname: str
    name: str
    type: str
    prices: dict[int, Decimal]
    addons: dict[str, Addon] = field(default_factory=dict)
    ostempl: list[str] = field(default_factory=list)
    recipes: list[str] = field(default_factory=list)
    setup: str = "auto"
    setup_after: timedelta = timedelta(0)

    def addon_by_id(self, addon_id: int) -> Addon | None:
        return next((a for a in self.addons.values() if a.id == addon_id), None)

    def price_for(self, period: int, addons: dict) -> Decimal:
        """The tariff's price for `period` plus its add-ons at `addons` for as many months."""
        monthly = sum(
            (a.monthly_price(addons.get(n, a.default())) for n, a in self.addons.items()),
            Decimal(0),
        )
        return cents(self.prices[period] + monthly * months_in(period))


@dataclass
class Account:
    """A client (or admin) account on the seller."""

    login: str
    password: str
    level: int = CLIENT_LEVEL
    balance: Decimal = Decimal(0)
    can_suspend: bool = True


@dataclass
class Service:
    """A service (item) of an account."""

    id: int
    account: str
    tariff: int
    type: str
    period: int
    status: int = ORDERED
    opened: datetime | None = None
    expires: datetime | None = None
    remoteid: str = ""
    addons: dict[str, int | bool | str | None] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    ips: list[str] = field(default_factory=list)
    setup_due: datetime | None = None
    suspended_for: str = ""

    @property
    def name(self) -> str:
        """The name lists show and import masks match: name, domain, hostname, or type and id."""
        for key in ("name", "domain", "hostname"):
            if self.params.get(key):
                return self.params[key]
        return f"{self.type}{self.id}"


@dataclass
class Event:
    """A change to a service, queued on its account's feed."""

    id: int
    account: str
    type: str
    service: int
    remoteid: str
    date: datetime
    status: int
    expires: datetime | None
    name: str = ""
    value: str = ""
    ips: list[str] = field(default_factory=list)


@dataclass
class LedgerEntry:
    """One movement of an account's balance: negative for a debit."""

    id: int
    account: str
    amount: Decimal
    reason: str
    service: int | None
    date: datetime


class Seller:
    """The whole state of the simulated selling BILLmanager under its own clock."""

    def __init__(self, currency: str = "EUR", now: datetime | None = None, seed: int = 0):
        self.currency = currency
        self.now = now or datetime(2026, 1, 1)
        self.seed = seed
        self.random = random.Random(seed)
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.tariffs: dict[int, Tariff] = {}
        self.services: dict[int, Service] = {}
        self.feeds: dict[str, list[Event]] = {}
        self.ledger: list[LedgerEntry] = []
        self.wall_clock = time.monotonic  # sessions and login failures also age in wall time
        self.sessions = Sessions()
        self.failed_logins = FailedLogins()
        self.faults = Faults(self.random)
        self.calls = CallLog()
        # The feed forgets an event once read; this log keeps it, for the dashboard's history.
        self.events_made: deque[Event] = deque(maxlen=100_000)
        self.slow_seconds = 2.0
        self._next = {"service": 1000 + seed, "event": 1, "ledger": 1, "ip": 10, "item": 100}
        self._due: list[tuple[datetime, int, str]] = []
        self._enum_ids: dict[tuple[int, str], int] = {}

    # -- world -------------------------------------------------------------------------------

    def _new_id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] += 1
        return value

    def add_account(self, account: Account) -> None:
        self.accounts[account.login] = account
        self.feeds.setdefault(account.login, [])

    def add_tariff(self, tariff: Tariff) -> None:
        """Add or replace a tariff, giving enumeration items ids that stay stable across edits."""
        for addon in tariff.addons.values():
            if addon.type == "enumeration":
                addon.item_ids = {item: self._enum_item_id(addon.id, item) for item in addon.items}
                # Items the seller dropped keep their ids: services that hold one still show it.
                addon.item_ids.update(
                    {item: n for (a, item), n in self._enum_ids.items() if a == addon.id}
                    | addon.item_ids
                )
        self.tariffs[tariff.id] = tariff

    def _enum_item_id(self, addon_id: int, item: str) -> int:
        key = (addon_id, item)
        if key not in self._enum_ids:
            self._enum_ids[key] = (
                addon_id * 100 + len([k for k in self._enum_ids if k[0] == addon_id]) + 1
            )
        return self._enum_ids[key]

    def _new_ip(self) -> str:
        n = self._new_id("ip")
        return f"203.0.{113 + n // 250}.{n % 250 + 1}"

    # -- clock and automation ----------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """When the seller's automation next has something to do, if ever."""
        while self._due and not self._still_due(*self._due[0]):
            heapq.heappop(self._due)
        return self._due[0][0] if self._due else None

    def _still_due(self, when: datetime, service_id: int, kind: str) -> bool:
        service = self.services.get(service_id)
        if service is None:
            return False
        if kind == "setup":
            return service.status == ORDERED and service.setup_due == when
        return service.status == ACTIVE and service.expires == when

    def _schedule(self, when: datetime | None, service: Service, kind: str) -> None:
        if when is not None:
            heapq.heappush(self._due, (when, service.id, kind))

    def advance_to(self, when: datetime) -> None:
        """Move the clock forward to `when`, running set-ups and expiries in time order."""
        if when < self.now:
            raise SellerError("value", "now", f"the clock cannot go back from {self.now} to {when}")
        while (due := self.next_due()) is not None and due <= when:
            _, service_id, kind = heapq.heappop(self._due)
            self.now = max(self.now, due)
            service = self.services[service_id]
            if kind == "setup":
                self._set_up(service)
            else:
                service.suspended_for = "expired"
                self._set_status(service, SUSPENDED, "suspend")
        self.now = when
        self.sessions.expire(self.now, self.wall_clock())

    # -- events and money --------------------------------------------------------------------

    def _emit(self, service: Service, type: str, name: str = "", value: str = "") -> None:
        event = Event(
            self._new_id("event"),
            service.account,
            type,
            service.id,
            service.remoteid,
            self.now,
            service.status,
            service.expires,
            name,
            value,
            list(service.ips),
        )
        self.feeds[service.account].append(event)
        self.events_made.append(event)

    def _move_money(self, account: Account, amount: Decimal, reason: str, service: int | None):
        account.balance += amount
        self.ledger.append(
            LedgerEntry(self._new_id("ledger"), account.login, amount, reason, service, self.now)
        )

    def _debit(self, account: Account, amount: Decimal, reason: str, service: int | None):
        if amount > account.balance:
            raise SellerError(
                "not_enough_money",
                "",
                f"insufficient funds: {amount} {self.currency} needed",
                {"amount": str(amount), "have": str(account.balance), "currency": self.currency},
            )
        self._move_money(account, -amount, reason, service)

    def _set_status(self, service: Service, status: int, event: str) -> None:
        service.status = status
        self._emit(service, event)
        if status == ACTIVE:
            self._schedule(service.expires, service, "expiry")

    def _set_up(self, service: Service) -> None:
        expires = period_end(self.now, service.period)  # may refuse: before any change
        service.opened = self.now
        service.expires = expires
        service.setup_due = None
        if service.type in ("vds", "dedic") and not service.ips:
            service.ips.append(self._new_ip())
        named = service.type == "vhost" and "username" not in service.params
        if named:
            service.params["username"] = f"user{service.id}"
        self._set_status(service, ACTIVE, "open")
        if named:  # a parameter the seller set: the event mechanism reports it like any other
            self._emit(service, "param", "username", service.params["username"])

    # -- the client API ----------------------------------------------------------------------

    def authenticate(self, login: str, password: str) -> Account:
        """The account with that login and password; SellerError `auth` otherwise.

        The right password always gets in. After `FAILED_LOGINS_MAX` wrong ones for a login
        within `FAILED_LOGIN_WINDOW`, the refusal says so (see `FailedLogins`).
        """
        account = self.accounts.get(login)
        given, wall = str(password).encode(), self.wall_clock()
        expected = account.password.encode() if account else b""
        # compared in constant time even for an unknown login, so timing tells nothing either
        if hmac.compare_digest(given, expected) and account is not None:
            self.failed_logins.clear(login)
            return account
        if self.failed_logins.fail(login, self.now, wall) > FAILED_LOGINS_MAX:
            raise SellerError(
                "auth",
                "",
                f"Too many failed logins: wait {FAILED_LOGIN_WINDOW.seconds // 60} minutes "
                "or send the right password",
            )
        raise SellerError("auth", "", "Invalid username or password")

    def open_session(self, account: Account) -> str:
        return self.sessions.open(account.login, self.now, self.wall_clock())

    def session_account(self, sid: str) -> Account:
        """The account of a live session, touching it; SellerError `auth` if unknown or idle."""
        login = self.sessions.use(sid, self.now, self.wall_clock())
        if login is None or login not in self.accounts:
            raise SellerError("auth", "", "The session has expired or does not exist")
        return self.accounts[login]

    def pricelist(self, type: str | None = None, tariff: int | None = None) -> list[Tariff]:
        return [
            t
            for t in self.tariffs.values()
            if (type is None or t.type == type) and (tariff is None or t.id == tariff)
        ]

    def order(
        self,
        account: Account,
        type: str,
        tariff_id: int,
        period: int,
        *,
        addons: dict[int, str] | None = None,
        remoteid: str = "",
        params: dict | None = None,
        ip: str | None = None,
        reason: str = "order",
    ) -> Service:
        """Order and pay a service at once (`skipbasket=on`); set it up as the tariff says."""
        tariff = self.tariffs.get(tariff_id)
        if tariff is None or tariff.type != type:
            raise SellerError("value", "pricelist", f"no {type} tariff {tariff_id}")
        if period not in tariff.prices:
            raise SellerError("value", "period", f"tariff {tariff_id} has no period {period}")
        values = {name: addon.default() for name, addon in tariff.addons.items()}
        for addon_id, raw in (addons or {}).items():
            addon = tariff.addon_by_id(addon_id)
            if addon is None:
                raise SellerError("value", f"addon_{addon_id}", f"no add-on {addon_id} in tariff")
            values[addon.intname] = addon.parse(raw)
        params = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        ostempl = params.get("ostempl")
        if ostempl is not None and ostempl not in tariff.ostempl:
            raise SellerError("value", "ostempl", f"no OS template '{ostempl}' in tariff")
        if ostempl is None and tariff.ostempl and type in ("vds", "dedic"):
            params["ostempl"] = tariff.ostempl[0]
        recipe = params.get("recipe")
        if recipe is not None and recipe not in tariff.recipes:
            raise SellerError("value", "recipe", f"no recipe '{recipe}' in tariff")
        price = tariff.price_for(period, values)
        # everything that can refuse the order comes before the debit: the set-up's time and
        # the expiry it will give must exist on the calendar
        setup_due = (
            later(self.now, tariff.setup_after, "pricelist") if tariff.setup == "after" else None
        )
        period_end(setup_due or self.now, period)
        service_id = self._next["service"]
        self._debit(account, price, reason, service_id)
        service = Service(
            self._new_id("service"),
            account.login,
            tariff.id,
            type,
            period,
            remoteid=remoteid,
            addons=values,
            params=params,
            ips=[ip] if ip and type in ("vds", "dedic") else [],
        )
        self.services[service.id] = service
        if tariff.setup == "auto":
            self._set_up(service)
        elif setup_due is not None:
            service.setup_due = setup_due
            self._schedule(setup_due, service, "setup")
        return service

    def services_of(
        self, account: Account, type: str | None = None, remoteid: str | None = None
    ) -> list[Service]:
        return [
            s
            for s in self.services.values()
            if s.account == account.login
            and (type is None or s.type == type)
            and (remoteid is None or s.remoteid == remoteid)
        ]

    def service_of(self, account: Account, service_id, type: str | None = None) -> Service:
        """An account's own service; SellerError `missed`/`value` for another's or an unknown."""
        try:
            sid = int(str(service_id).strip())
        except ValueError:
            raise SellerError("value", "elid", f"'{service_id}' is not a service id") from None
        service = self.services.get(sid)
        if service is None or service.account != account.login or (type and service.type != type):
            raise SellerError("missed", "elid", f"no service {sid}")
        return service

    def change_addons(self, account: Account, service: Service, addons: dict[int, str]) -> Decimal:
        """Set add-on values, charging the monthly difference for the service's period.

        The ledger records every accepted order, prolongation and add-on change, even at 0.
        """
        tariff = self.tariffs[service.tariff]
        if service.status == DELETED:
            raise SellerError("value", "elid", f"service {service.id} is deleted")
        values = dict(service.addons)
        for addon_id, raw in addons.items():
            addon = tariff.addon_by_id(addon_id)
            if addon is None:
                raise SellerError("value", f"addon_{addon_id}", f"no add-on {addon_id} in tariff")
            values[addon.intname] = addon.parse(raw)
        old = sum(
            (
                tariff.addons[n].monthly_price(v)
                for n, v in service.addons.items()
                if n in tariff.addons
            ),
            Decimal(0),
        )
        new = sum(
            (tariff.addons[n].monthly_price(v) for n, v in values.items() if n in tariff.addons),
            Decimal(0),
        )
        charge = cents(max(Decimal(0), new - old) * max(1, months_in(service.period)))
        self._debit(account, charge, "addon", service.id)
        for name, value in values.items():
            if service.addons.get(name) != value:
                service.addons[name] = value
                self._emit(service, "addon", name, tariff.addons[name].wire(value))
        return charge

    def prolong(self, account: Account, service: Service, period: int) -> datetime | None:
        """Pay for another period and move the expiry; resume a service its expiry suspended."""
        tariff = self.tariffs[service.tariff]
        if service.status in (ORDERED, DELETED):
            raise SellerError("value", "elid", f"service {service.id} cannot be prolonged")
        if period not in tariff.prices or period <= 0:
            raise SellerError("value", "period", f"tariff {tariff.id} has no period {period}")
        expires = period_end(service.expires or self.now, period)
        self._debit(account, tariff.price_for(period, service.addons), "prolong", service.id)
        service.expires = expires
        self._emit(service, "expire", "expiredate", _iso(service.expires))
        if service.status == SUSPENDED and service.suspended_for == "expired":
            service.suspended_for = ""
            self._set_status(service, ACTIVE, "resume")
        elif service.status == ACTIVE:
            self._schedule(service.expires, service, "expiry")
        return service.expires

    # Suspend, resume and delete take several services (`elid=1, 2`): all are checked before
    # any changes, so one that cannot be leaves every one of them as it was.

    def suspend(self, account: Account, *services: Service) -> None:
        self._require_suspend_group(account)
        services = distinct(services)
        for service in services:
            if service.status != ACTIVE:
                raise SellerError("value", "elid", f"service {service.id} is not active")
        for service in services:
            service.suspended_for = "client"
            self._set_status(service, SUSPENDED, "suspend")

    def resume(self, account: Account, *services: Service) -> None:
        self._require_suspend_group(account)
        services = distinct(services)
        for service in services:
            if service.status != SUSPENDED:
                raise SellerError("value", "elid", f"service {service.id} is not suspended")
            if service.expires is not None and service.expires <= self.now:
                raise SellerError("value", "elid", f"service {service.id} has expired; prolong it")
        for service in services:
            service.suspended_for = ""
            self._set_status(service, ACTIVE, "resume")

    def delete(self, account: Account, *services: Service) -> None:
        self._require_suspend_group(account)
        services = distinct(services)
        for service in services:
            if service.status == DELETED:
                raise SellerError("value", "elid", f"service {service.id} is already deleted")
        for service in services:
            self._set_status(service, DELETED, "close")

    def _require_suspend_group(self, account: Account) -> None:
        if not account.can_suspend:
            raise SellerError("access", "", "your account may not suspend or delete services")

    def read_events(self, account: Account) -> list[Event]:
        """Everything on the account's feed, which the read empties; feed faults apply here."""
        events = self.feeds[account.login]
        self.feeds[account.login] = []
        return self.faults.shape_feed(events, account.login)

    # -- the seller's staff (control API) ----------------------------------------------------

    def service(self, service_id: int) -> Service:
        service = self.services.get(service_id)
        if service is None:
            raise SellerError("missed", "service", f"no service {service_id}")
        return service

    def account(self, login: str) -> Account:
        account = self.accounts.get(login)
        if account is None:
            raise SellerError("missed", "account", f"no account '{login}'")
        return account

    def activate(self, service_id: int) -> None:
        service = self.service(service_id)
        if service.status != ORDERED:
            raise SellerError("value", "service", f"service {service_id} is not ordered")
        self._set_up(service)

    def staff_suspend(self, service_id: int) -> None:
        service = self.service(service_id)
        if service.status != ACTIVE:
            raise SellerError("value", "service", f"service {service_id} is not active")
        service.suspended_for = "staff"
        self._set_status(service, SUSPENDED, "suspend")

    def staff_resume(self, service_id: int) -> None:
        service = self.service(service_id)
        if service.status != SUSPENDED:
            raise SellerError("value", "service", f"service {service_id} is not suspended")
        service.suspended_for = ""
        self._set_status(service, ACTIVE, "resume")

    def staff_delete(self, service_id: int) -> None:
        service = self.service(service_id)
        if service.status == DELETED:
            raise SellerError("value", "service", f"service {service_id} is already deleted")
        self._set_status(service, DELETED, "close")

    def add_ip(self, service_id: int, ip: str | None = None) -> str:
        service = self.service(service_id)
        ip = ip or self._new_ip()
        if ip in service.ips:
            raise SellerError("exists", "ip", f"{ip} is already on service {service_id}")
        service.ips.append(ip)
        self._emit(service, "ip_add", "ip", ip)
        return ip

    def remove_ip(self, service_id: int, ip: str | None = None) -> str:
        service = self.service(service_id)
        if not service.ips:
            raise SellerError("value", "ip", f"service {service_id} has no IP address")
        ip = ip or service.ips[-1]
        if ip not in service.ips:
            raise SellerError("value", "ip", f"{ip} is not on service {service_id}")
        service.ips.remove(ip)
        self._emit(service, "ip_del", "ip", ip)
        return ip

    def set_addon(self, service_id: int, addon: str, value) -> None:
        service = self.service(service_id)
        tariff = self.tariffs[service.tariff]
        if addon not in tariff.addons:
            raise SellerError("value", "addon", f"tariff {tariff.id} has no add-on '{addon}'")
        spec = tariff.addons[addon]
        if not isinstance(value, str | int | float):  # JSON's lists, maps and null included
            raise SellerError("value", "value", f"{value!r} is not an add-on value")
        parsed = spec.parse(spec.wire(value) if spec.type == "enumeration" else value)
        service.addons[addon] = parsed
        self._emit(service, "addon", addon, spec.wire(parsed))

    def set_param(self, service_id: int, name: str, value: str | int | float) -> None:
        service = self.service(service_id)
        if not isinstance(value, str | int | float):  # JSON's lists, maps and null included
            raise SellerError("value", "value", f"{value!r:.60} is not a parameter value")
        service.params[name] = str(value)
        self._emit(service, "param", name, str(value))

    def topup(self, login: str, amount: Decimal) -> None:
        if amount <= 0:
            raise SellerError("value", "amount", f"a top-up must be positive, not {amount}")
        self._move_money(self.account(login), amount, "topup", None)

    def create_service(
        self,
        login: str,
        tariff_id: int,
        period: int,
        ip: str | None = None,
        params: dict | None = None,
        remoteid: str = "",
    ) -> Service:
        """A purchase made on the seller directly (not through a reseller), set up at once.

        `remoteid` is what another billing that ordered it through the API gave it.
        """
        account = self.account(login)
        tariff = self.tariffs.get(tariff_id)
        if tariff is None:
            raise SellerError("missed", "tariff", f"no tariff {tariff_id}")
        params = dict(params or {})
        if ip and tariff.type == "soft":
            params.setdefault("ip", ip)
        service = self.order(
            account,
            tariff.type,
            tariff_id,
            period,
            params=params,
            ip=ip,
            remoteid=remoteid,
            reason="create_service",
        )
        if service.status == ORDERED:
            self._set_up(service)
        return service


def _iso(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else ""
