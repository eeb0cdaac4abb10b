"""The reselling BILLmanager's rules on values: statuses, periods, prices, and the operation
lifecycle. No SQL, no HTTP; `now` is always passed in.

An operation's lifecycle is one state machine. Its `state` is what users see (`running`,
`failed`, `manual`, `done`); its `outcome` is what the engine knows of the seller's side:
`nothing` (the seller surely did nothing), `unknown` (it may have: a reply was lost, or an
attempt's owner died), `accepted` (the seller said yes, or showed the work done). Every change
goes through one named transition below, and an unknown outcome is settled only by looking the
work up at the seller, never by sending it again blind.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from reseller.errors import ResellerError

if TYPE_CHECKING:
    from reseller.client import RemoteService

ORDERED, ACTIVE, SUSPENDED, DELETED = 1, 2, 3, 4
STATUS_NAMES = {ORDERED: "ordered", ACTIVE: "active", SUSPENDED: "suspended", DELETED: "deleted"}
CENT = Decimal("0.01")
UNIT_PRICE = Decimal("0.0001")  # integer add-ons are priced per unit (per MB of RAM, say)
CLIENT_LEVEL = 16
MANUAL_MODULE = 0
PRODUCT_TYPES = ("vds", "dedic", "vhost", "soft")

# Operation kinds, named after the processing-module commands they send.
OPEN, PROLONG, SUSPEND, RESUME, CLOSE, SETPARAM = (
    "open",
    "prolong",
    "suspend",
    "resume",
    "close",
    "setparam",
)
KINDS = (OPEN, PROLONG, SUSPEND, RESUME, CLOSE, SETPARAM)
# Operation states, as users see them.
RUNNING, FAILED, MANUAL, DONE = "running", "failed", "manual", "done"
# What the engine knows the seller did.
NOTHING, UNKNOWN, ACCEPTED = "nothing", "unknown", "accepted"

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(minutes=30)
GIVE_UP_AFTER = timedelta(hours=24)
AUTOPROLONG_LEAD = timedelta(days=1)
# A claim outlives any attempt (a few calls of at most 10 s each); a dead owner's claim is
# taken over once it expires. A poll is one call, after a reconcile that renews the mark.
OPERATION_LEASE = timedelta(minutes=3)
POLL_LEASE = timedelta(minutes=1)

# The status each status change asks for, and the status each seller event brings.
STATUS_WANTED = {OPEN: ACTIVE, SUSPEND: SUSPENDED, RESUME: ACTIVE, CLOSE: DELETED}
STATUS_AFTER = {"open": ACTIVE, "suspend": SUSPENDED, "resume": ACTIVE, "close": DELETED}
# The change a status event presupposes: the seller suspends only an active service and resumes
# only a suspended one.
PRESUPPOSED = {"suspend": RESUME, "resume": SUSPEND}
EVENT_KINDS = ("open", "suspend", "resume", "close", "expire", "addon", "param", "ip_add", "ip_del")
# What the seller charges for, by the reason its ledger gives and the operation behind it.
SELLER_DEBITS = {"order": OPEN, "prolong": PROLONG, "addon": SETPARAM}

# Seller errors that prove the seller did nothing: it checks these before it acts. Any other
# error (`internal`, a type no one documents) may come after money moved, so it settles nothing.
REFUSALS = frozenset(
    {"auth", "access", "value", "missed", "exists", "not_enough_money", "unknown_func"}
)


def months_in(period: int) -> int:
    """How many months a period code covers; day (-50), trial (-100) and lifetime (0) none."""
    return period if period > 0 else 0


def convert(amount: Decimal, rate: Decimal, step: Decimal = CENT) -> Decimal:
    """A seller price in the reseller's main currency, to the cent (or to `step`)."""
    return (amount * rate).quantize(step, rounding=ROUND_HALF_UP)


def to_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def retry_delay(failures: int) -> timedelta:
    """The wait after the `failures`-th transport failure in a row: 1 minute doubling to 30."""
    doublings = min(max(0, failures - 1), 5)  # 2**5 minutes already passes the longest wait
    return min(FIRST_RETRY * 2**doublings, LONGEST_RETRY)


def day(when) -> str | None:
    """A date as the database and the seller write it (`2026-02-01`)."""
    if not when:
        return None
    if when.year >= 1000:  # isoformat, many times quicker, pads a year below 1000 (0999)
        return when.isoformat()[:10]
    return when.strftime("%Y-%m-%d")


def months_after(start: date, months: int) -> date:
    """The day `months` (0 or more) after `start`, as `start + relativedelta(months=...)`."""
    # the month's last day when it is shorter, ValueError past 9999; at a fifth of
    # relativedelta's cost (a poll may bring a month's thousands of prolongations)
    years, month = divmod(start.month - 1 + months, 12)
    year = start.year + years
    return date(year, month + 1, min(start.day, monthrange(year, month + 1)[1]))


def seller_address(url: str) -> str:
    """A seller's URL in one spelling (`/billmgr`, a trailing slash, host case don't count)."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/").removesuffix("/billmgr")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def amount(value, what: str) -> Decimal:
    """A non-negative finite amount given by a user; `value` error naming `what` otherwise."""
    try:
        number = Decimal(str(value))
    except Exception:
        raise ResellerError("value", f"{what}: {value!r} is not an amount") from None
    if not number.is_finite() or isinstance(value, bool):
        raise ResellerError("value", f"{what}: {value!r} is not an amount")
    if number < 0:
        raise ResellerError("value", f"{what}: {value!r} is negative")
    return number


# -- configuration and tariffs --------------------------------------------------------------


@dataclass(frozen=True)
class PeriodRule:
    """A "Periods comparison" parameter: send `source` as `target`, for one tariff or all."""

    source: int
    target: int
    tariff: str | None = None


def seller_period(rules: list[PeriodRule], tariff: str, period: int) -> int:
    """The period sent to the seller for `period` of `tariff`; a tariff's own rule wins."""
    for rule in rules:
        if rule.source == period and rule.tariff == tariff:
            return rule.target
    for rule in rules:
        if rule.source == period and rule.tariff is None:
            return rule.target
    return period


@dataclass
class Module:
    """A processing module of type BILLmanager: one seller account, its rules, its reconcile day."""

    id: int
    name: str
    url: str
    login: str
    password: str
    rules: list[PeriodRule] = field(default_factory=list)
    reconciled_on: str | None = None

    def __repr__(self) -> str:
        return f"Module(id={self.id!r}, name={self.name!r}, url={self.url!r}, login={self.login!r})"

    def reconciles_on(self, now: datetime) -> bool:
        """Whether the cron's daily reconcile of this module is due at `now` (00:00 UTC)."""
        return self.reconciled_on is None or self.reconciled_on < day(now)


@dataclass
class AddonSpec:
    """A local add-on of a tariff with the reseller's own monthly price(s)."""

    intname: str
    type: str
    remote_id: int
    enabled: bool
    included: int = 0
    max: int | None = None
    price: Decimal = Decimal(0)
    items: dict[str, Decimal] | None = None
    item_ids: dict[str, int] | None = None

    def default(self) -> str:
        if self.type == "integer":
            return str(self.included)
        if self.type == "boolean":
            return "off"
        return next(iter(self.items or {}), "")

    def normalise(self, value) -> str:
        """A value an order or check names, in the form stored: number, on/off or item name."""
        if self.type == "integer":
            try:
                number = int(str(value))
            except ValueError:
                raise ResellerError(
                    "value", f"add-on {self.intname}: {value!r} is not a whole number"
                ) from None
            if number < 0 or (self.max is not None and number > self.max):
                raise ResellerError(
                    "value", f"add-on {self.intname}: {number} is outside 0..{self.max}"
                )
            return str(number)
        if self.type == "boolean":
            if value in (True, "on", "yes", "true", 1, "1"):
                return "on"
            if value in (False, "off", "no", "false", 0, "0"):
                return "off"
            raise ResellerError("value", f"add-on {self.intname}: {value!r} is not on or off")
        if str(value) not in (self.items or {}):
            raise ResellerError(
                "value",
                f"add-on {self.intname}: {value!r} is not one of {sorted(self.items or {})}",
            )
        return str(value)

    def monthly(self, value: str) -> Decimal:
        if self.type == "integer":
            return self.price * max(0, int(value) - self.included)
        if self.type == "boolean":
            return self.price if value == "on" else Decimal(0)
        return (self.items or {}).get(value, Decimal(0))

    def wire(self, value: str) -> str:
        """The value as `addon_<id>=` sends it: enumeration items by their seller id."""
        if self.type == "enumeration":
            return str((self.item_ids or {}).get(value, value))
        return value

    def from_wire(self, raw: str) -> str:
        """A value the seller reports, in the stored form."""
        if self.type == "enumeration":
            by_id = {str(i): name for name, i in (self.item_ids or {}).items()}
            return by_id.get(raw, raw)
        if self.type == "boolean":
            return "on" if raw in ("on", "1", "true", "yes") else "off"
        return raw

    def knows_item(self, raw: str) -> bool:
        """Whether a seller's enumeration value names an item this tariff still offers."""
        return self.type != "enumeration" or raw in map(str, (self.item_ids or {}).values())


@dataclass
class Tariff:
    """A local tariff plan imported from a seller's: `intname` is `<seller id>-<intname>`."""

    id: int
    intname: str
    name: str
    itemtype: str
    module: int
    remote_id: int
    currency: str
    prices: dict[int, Decimal] = field(default_factory=dict)
    addons: dict[str, AddonSpec] = field(default_factory=dict)
    ostempl: list[str] = field(default_factory=list)
    recipes: list[str] = field(default_factory=list)

    def values(self, param: str) -> list[str]:
        return self.ostempl if param == "ostempl" else self.recipes

    def addon_values(self, chosen: dict) -> dict[str, str]:
        """Every enabled add-on's value for an order: the chosen ones checked, the rest default."""
        enabled = {n: s for n, s in self.addons.items() if s.enabled}
        unknown = sorted(set(chosen) - set(enabled))
        if unknown:
            raise ResellerError("unknown", f"no enabled add-on '{unknown[0]}' in this tariff")
        return {
            name: spec.normalise(chosen[name]) if name in chosen else spec.default()
            for name, spec in enabled.items()
        }

    def monthly(self, values: dict[str, str]) -> Decimal:
        return sum(
            (self.addons[n].monthly(v) for n, v in values.items() if n in self.addons), Decimal(0)
        )

    def price_for(self, period: int, values: dict[str, str]) -> Decimal:
        """The client's price: the tariff's for `period` plus monthly add-ons for as many months."""
        if period not in self.prices:
            raise ResellerError(
                "period",
                f"tariff {self.intname} has no price for period {period}; "
                f"it has {sorted(self.prices)}",
            )
        return to_cents(self.prices[period] + self.monthly(values) * months_in(period))

    def change_price(self, old: dict[str, str], new: dict[str, str], period: int) -> Decimal:
        """What an add-on change costs: the monthly increase for the service's period."""
        increase = max(Decimal(0), self.monthly(new) - self.monthly(old))
        return to_cents(increase * max(1, months_in(period)))

    def wire_addons(self, values: dict[str, str]) -> dict[int, str]:
        """Add-on values as `addon_<seller id>=` sends them, for the add-ons the tariff has."""
        return {self.addons[n].remote_id: self.addons[n].wire(v) for n, v in values.items()}


@dataclass
class Client:
    """One of the reseller's own customers and the balance it pays from."""

    id: int
    name: str
    balance: Decimal

    def pays(self, price: Decimal, what: str) -> None:
        """Refuse with `insufficient_funds` when the balance does not cover `price`."""
        if self.balance < price:
            raise ResellerError(
                "insufficient_funds", f"client {self.name} has {self.balance}, {what} costs {price}"
            )


@dataclass
class Expense:
    """One movement of a client's balance: negative for a charge, with what it paid for."""

    id: int
    account: int
    amount: Decimal
    reason: str
    date: str
    item: int | None = None
    operation: int | None = None


# -- services -------------------------------------------------------------------------------


@dataclass(slots=True)  # a reconcile holds a module's thousands: no __dict__ each
class Item:
    """A reseller service: its link to the seller's service, status, add-ons, params and IPs."""

    id: int
    account: int
    pricelist: int
    itemtype: str
    processingmodule: int
    remote_module: int
    period: int
    status: int = ORDERED
    remote_id: int | None = None
    expiredate: str | None = None
    autoprolong: bool = False
    createdate: str | None = None
    addons: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    ips: list[str] = field(default_factory=list)

    @property
    def status_name(self) -> str:
        return STATUS_NAMES[self.status]

    @property
    def manual(self) -> bool:
        """Under the manual processing module: operations wait for a person, nothing is sent."""
        return self.processingmodule == MANUAL_MODULE

    def linked(self) -> Item:
        """The item itself when the seller's service is known; `not_linked` otherwise."""
        if self.remote_id is None:
            raise ResellerError("not_linked", f"service {self.id} is not set up at the seller yet")
        return self

    def changeable(self) -> Item:
        """The item, linked and not deleted: something an operation can still change."""
        self.linked()
        if self.status == DELETED:
            raise ResellerError("value", f"service {self.id} is deleted")
        return self

    def identities(self) -> set[tuple[str, str]]:
        """What tells this service apart at the seller (see `identities`)."""
        return identities(self.itemtype, self.params, self.ips)


@dataclass(slots=True)  # a daily reconcile holds a module's thousands: no __dict__ each
class ItemAsListed:
    """What a service's row in its type's list shows, as held here: its link, status, expiry,
    IPs and the parameters a row shows (no add-ons, no other parameter)."""

    id: int
    itemtype: str
    remote_id: int | None
    status: int
    expiredate: str | None
    params: dict[str, str]
    ips: list[str]


@dataclass(slots=True)  # a poll may apply thousands of events: no __dict__ each
class ItemAsPolled:
    """What applying a seller's events reads of a service: its link, tariff, status, expiry."""

    # Its add-ons, params and IPs are written by the events, not read: an add-on change weighed
    # for completion reads the add-ons the store holds at that moment.
    id: int
    pricelist: int
    remote_module: int
    remote_id: int | None
    status: int
    expiredate: str | None


def identities(itemtype: str, params: dict[str, str], ips: list[str]) -> set[tuple[str, str]]:
    """The duplicate rule by type (seeds: "the IP address, identifier in the control panel, or
    username"): a VPS or dedicated server is its IP addresses, a hosting account its username,
    a licence the IP it is bound to with its licence name. Two services sharing one are one."""
    if itemtype in ("vds", "dedic"):
        return {("IP", ip) for ip in ips if ip}
    if itemtype == "vhost":
        return {("username", params["username"])} if params.get("username") else set()
    bound = params.get("ip") or next(iter(ips), "")  # a list row shows it as its `ip`
    if bound or params.get("licname"):
        return {("licence", f"{params.get('licname', '')} on {bound}")}
    return set()


def remoteid_of_ours(remoteid: str) -> int | None:
    """Our item id in a seller service's `remoteid` (we send our id as it); None for any other
    billing's (too long for an id, or not ASCII digits)."""
    if remoteid.isascii() and remoteid.isdigit() and len(remoteid) <= 18:
        return int(remoteid)
    return None


@dataclass
class StoredEvent:
    """A seller event as fetched and kept (`itemevent`) until it is applied, once."""

    id: int
    module: int
    event_id: int
    type: str
    remote_item: int
    remoteid: str
    status: int
    expiredate: str | None
    name: str = ""
    value: str = ""
    ips: list[str] = field(default_factory=list)
    fetched: str | None = None


@dataclass
class AppliedEvent:
    """That a seller event was applied, to which service, when (`itemevent_applied`)."""

    module: int
    event_id: int
    item: int | None
    applied: str


# -- the operation lifecycle ----------------------------------------------------------------


@dataclass
class Operation:
    """A running operation (Tools -> Running operations) and where its lifecycle stands."""

    id: int
    item: int
    kind: str
    state: str = RUNNING
    outcome: str = NOTHING
    params: dict = field(default_factory=dict)
    attempts: int = 0
    failures: int = 0
    first_failure: datetime | None = None
    next_try: datetime | None = None
    error_type: str | None = None
    error_msg: str | None = None
    owner: str | None = None
    lease_until: datetime | None = None
    created: datetime | None = None
    updated: datetime | None = None

    # -- what it is ---------------------------------------------------------------------

    @property
    def awaiting_seller(self) -> bool:
        """Sent, or maybe sent, and not yet confirmed: the seller's word may complete it."""
        return self.state in (RUNNING, MANUAL) and self.outcome in (UNKNOWN, ACCEPTED)

    @property
    def accepted(self) -> bool:
        """The seller accepted it (and may have charged for it)."""
        return self.outcome == ACCEPTED

    def claimable(self, now: datetime) -> bool:
        """Running, due, and claimed by no live owner: an attempt may start."""
        if self.state != RUNNING or (self.next_try is not None and self.next_try > now):
            return False
        return self.owner is None or self.lease_until is None or self.lease_until <= now

    def due_at(self) -> datetime | None:
        """When an attempt may next start: its retry time, or when a live claim runs out."""
        if self.state != RUNNING:
            return None
        if self.owner is not None and self.lease_until is not None:
            return max(self.lease_until, self.next_try or self.lease_until)
        return self.next_try

    def wants_status(self) -> int | None:
        """The service status this operation asks for, if it is a status change."""
        return STATUS_WANTED.get(self.kind) if self.kind != OPEN else None

    def presupposed_by(self, event: str) -> bool:
        """Whether a status event shows this accepted change took effect, its own event lost:
        a suspension after a resume the seller accepted (a resumption after a suspension) is
        one the seller could make only once that change was done."""
        return self.accepted and PRESUPPOSED.get(event) == self.kind

    def ended_by_deletion(self) -> bool:
        """Whether the service's deletion at the seller ends this operation: one the seller
        accepted (nothing more will ever happen to the service), an order (the service was
        made) or a deletion. Not a change whose outcome is unknown: the seller refuses every
        change of a deleted service, so it may have done (and debited) nothing; its look-up
        and retry settle it, with the seller's reason if it refuses."""
        return self.accepted or self.kind in (OPEN, CLOSE)

    # -- transitions: each returns the operation after it, changing nothing in place ------

    def claim(self, owner: str, now: datetime) -> Operation:
        """`claim`: start an attempt, committed before any call goes out; a second process
        (or this one's retry job) leaves a claimed operation alone until its lease runs out."""
        if not self.claimable(now):
            raise LifecycleError(f"operation {self.id} cannot be claimed now")
        return self._with(
            owner=owner,
            lease_until=now + OPERATION_LEASE,
            attempts=self.attempts + 1,
            updated=now,
        )

    @property
    def must_look_up(self) -> bool:
        """`look up` before sending: an earlier attempt may have reached the seller."""
        return self.outcome == UNKNOWN

    def send(self, now: datetime, **params) -> Operation:
        """`send`: committed just before the call that changes the seller's state goes out,
        so an attempt that dies from here on leaves the outcome unknown."""
        if self.state != RUNNING or self.owner is None:
            raise LifecycleError(f"operation {self.id} is sent without a claim")
        return self._with(outcome=UNKNOWN, params={**self.params, **params}, updated=now)

    def reply_unknown(self, message: str, now: datetime) -> Operation:
        """`reply unknown`: no proof the seller did nothing; retry with backoff, looking first,
        or `given up` after 24 hours of such replies."""
        first = self.first_failure or now
        failures = self.failures + 1
        if now - first >= GIVE_UP_AFTER:
            return self._released(
                now,
                state=FAILED,
                failures=failures,
                first_failure=first,
                error_type="unavailable",
                error_msg=f"gave up after 24 hours: {message}",
            )
        return self._released(
            now,
            failures=failures,
            first_failure=first,
            next_try=now + retry_delay(failures),
            error_type="unavailable",
            error_msg=message,
        )

    def accept(self, now: datetime) -> Operation:
        """`accepted`: the seller said yes (or a look-up showed the work); wait for its word."""
        return self._released(
            now, state=MANUAL, outcome=ACCEPTED, error_type=None, error_msg=None, failures=0
        )

    def refuse(self, error_type: str, message: str, now: datetime, sent: bool = True) -> Operation:
        """`refused`: the seller said no to the call sent (so it did nothing: `restart` sends
        again), or, `sent=False`, the engine refused before sending (what an earlier attempt
        may have done stays unknown, and `restart` looks it up first)."""
        outcome = NOTHING if sent else self.outcome
        return self._released(
            now, state=FAILED, outcome=outcome, error_type=error_type, error_msg=message
        )

    def confirm(self, now: datetime) -> Operation:
        """`confirmed by event` or `confirmed by reconcile`: the seller's word that it is done."""
        if not self.awaiting_seller:
            raise LifecycleError(f"operation {self.id} ({self.state}) was never sent")
        return self._released(now, state=DONE, outcome=ACCEPTED, error_type=None, error_msg=None)

    def hold_by_hand(self, now: datetime) -> Operation:
        """Under the manual processing module: a person does it at the seller; nothing is sent."""
        return self._released(now, state=MANUAL)

    def wait_behind(self, until: datetime, now: datetime) -> Operation:
        """An earlier operation on the service is still running: this one waits for it."""
        return self._with(next_try=max(until, now), updated=now)

    def restart(self, now: datetime) -> Operation:
        """`restart` (Tools -> Running operations -> Start): a failed operation runs again;
        an unknown outcome is looked up before anything is sent."""
        if self.state != FAILED:
            raise LifecycleError(f"operation {self.id} is {self.state}, not failed")
        return self._released(
            now,
            state=RUNNING,
            failures=0,
            first_failure=None,
            next_try=now,
            error_type=None,
            error_msg=None,
        )

    def _released(self, now: datetime, **changes) -> Operation:
        return self._with(owner=None, lease_until=None, updated=now, **changes)

    def _with(self, **changes) -> Operation:
        """`dataclasses.replace(self, **changes)` at a third of its cost: an attempt makes three."""
        twin = object.__new__(Operation)
        twin.__dict__ = {**self.__dict__, **changes}
        return twin

    # -- the seller's state read back ---------------------------------------------------

    def shown_done_by(
        self, seller: RemoteService, tariff: Tariff | None, overwritten: set[str] = frozenset()
    ) -> bool:
        """Whether the seller's service, read back, shows this operation's work done.

        `overwritten` names add-ons a later accepted change set again. The one rule behind
        look-ups and reconcile.
        """
        if seller.status == DELETED and self.ended_by_deletion():
            return True
        if self.kind == OPEN:
            return seller.status in (ACTIVE, SUSPENDED, DELETED)
        if self.kind == PROLONG:
            before = self.params.get("before")
            return before is not None and day(seller.expires) != before
        if self.kind == SETPARAM:
            return self._addons_shown(seller, tariff, overwritten)
        return seller.status == STATUS_WANTED[self.kind]

    def _addons_shown(self, seller: RemoteService, tariff: Tariff | None, overwritten) -> bool:
        specs = tariff.addons if tariff else {}
        # An add-on neither side still has (dropped since) cannot tell either way.
        known = {
            name: value
            for name, value in self.params["addons"].items()
            if name in specs and specs[name].remote_id in seller.addons and name not in overwritten
        }
        return all(
            specs[n].from_wire(seller.addons[specs[n].remote_id]) == v for n, v in known.items()
        )

    def shown_sent_by(self, seller: RemoteService, tariff: Tariff | None) -> bool:
        """For a look-up: the seller shows this very work, so it must not be sent again.

        Stricter than `shown_done_by` for add-on changes: at least one add-on the change names
        must be there to tell.
        """
        if self.kind == SETPARAM:
            specs = tariff.addons if tariff else {}
            known = [
                n
                for n in self.params["addons"]
                if n in specs and specs[n].remote_id in seller.addons
            ]
            return bool(known) and self._addons_shown(seller, tariff, set())
        return self.shown_done_by(seller, tariff)

    def completes_prolongation(self, event_expiry: str | None, seller_months: int) -> bool:
        """Whether an `expire` event reporting `event_expiry` is this prolongation's: the one
        sent from the expiry before it, for the period that gives the event's expiry."""
        before = self.params.get("before")
        if self.kind != PROLONG or not self.awaiting_seller or before is None:
            return False
        start = datetime.fromisoformat(before)
        return seller_months > 0 and day(months_after(start, seller_months)) == event_expiry


def superseded(operation: Operation, operations: list[Operation]) -> bool:
    """Whether a later status change of the same service was accepted: the seller accepts a
    resume only of a suspended service, a suspension only of an active one, so accepting it
    is the seller's word that this earlier change (suspend, resume) happened too, even when
    its own event was lost and the service shows another status now."""
    if operation.kind not in (SUSPEND, RESUME):
        return False
    return any(
        later.id > operation.id and later.kind in (SUSPEND, RESUME, CLOSE) and later.accepted
        for later in operations
        if later.item == operation.item
    )


class LifecycleError(Exception):
    """A transition the lifecycle does not allow from where the operation stands (a bug)."""


# The lifecycle at a glance (the closing note and `scenarios/README.md` list it too):
# state/outcome before -> transition -> after.
TRANSITIONS = {
    "claim": ("running, due, no live owner", "running, owned by this attempt"),
    "send": ("running, owned", "running/unknown: then the call goes out"),
    "reply unknown": ("running, owned", "running/unknown, retry with backoff"),
    "look up": (
        "running/unknown, owned",
        "done if shown (an order not set up: accepted), else send",
    ),
    "accepted": ("running, owned", "manual/accepted"),
    "refused": ("running, owned", "failed/nothing"),
    "confirmed by event": ("running|manual, unknown|accepted", "done/accepted"),
    "confirmed by reconcile": ("running|manual, unknown|accepted", "done/accepted"),
    "given up": ("running, owned, 24 h of unknown replies", "failed/unknown"),
    "restart": ("failed/any", "running/same outcome, due now"),
}
