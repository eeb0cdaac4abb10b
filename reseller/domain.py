"""The reselling BILLmanager's rules: statuses, periods, prices, retries. No SQL, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlsplit

from reseller.errors import ResellerError

ORDERED, ACTIVE, SUSPENDED, DELETED = 1, 2, 3, 4
STATUS_NAMES = {ORDERED: "ordered", ACTIVE: "active", SUSPENDED: "suspended", DELETED: "deleted"}
CENT = Decimal("0.01")
UNIT_PRICE = Decimal("0.0001")  # integer add-ons are priced per unit (per MB of RAM, say)

# Operation kinds, named after the processing-module commands they send.
OPEN, PROLONG, SUSPEND, RESUME, CLOSE, SETPARAM = (
    "open",
    "prolong",
    "suspend",
    "resume",
    "close",
    "setparam",
)
# Operation states.
RUNNING, FAILED, MANUAL, DONE = "running", "failed", "manual", "done"

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(minutes=30)
GIVE_UP_AFTER = timedelta(hours=24)
AUTOPROLONG_LEAD = timedelta(days=1)

# Which seller event confirms which operation, and the status each event sets.
CONFIRMS = {
    "open": OPEN,
    "suspend": SUSPEND,
    "resume": RESUME,
    "close": CLOSE,
    "expire": PROLONG,
    "addon": SETPARAM,
}
STATUS_AFTER = {"open": ACTIVE, "suspend": SUSPENDED, "resume": ACTIVE, "close": DELETED}


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


def gives_up(first_failure: datetime, now: datetime) -> bool:
    return now - first_failure >= GIVE_UP_AFTER


def seller_address(url: str) -> str:
    """A seller's URL in one spelling (`/billmgr`, a trailing slash, host case don't count)."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/").removesuffix("/billmgr")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


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


def addon_values(specs: dict[str, AddonSpec], chosen: dict) -> dict[str, str]:
    """Every enabled add-on's value for an order: the chosen ones checked, the rest defaults."""
    unknown = sorted(set(chosen) - {n for n, s in specs.items() if s.enabled})
    if unknown:
        raise ResellerError("unknown", f"no enabled add-on '{unknown[0]}' in this tariff")
    return {
        name: spec.normalise(chosen[name]) if name in chosen else spec.default()
        for name, spec in specs.items()
        if spec.enabled
    }


def price_for(
    prices: dict[int, Decimal],
    specs: dict[str, AddonSpec],
    values: dict[str, str],
    period: int,
    tariff: str,
) -> Decimal:
    """The client's price: the tariff's for `period` plus monthly add-ons for as many months."""
    if period not in prices:
        raise ResellerError(
            "period", f"tariff {tariff} has no price for period {period}; it has {sorted(prices)}"
        )
    monthly = sum((specs[n].monthly(v) for n, v in values.items() if n in specs), Decimal(0))
    return to_cents(prices[period] + monthly * months_in(period))


def addon_change_price(
    specs: dict[str, AddonSpec], old: dict[str, str], new: dict[str, str], period: int
) -> Decimal:
    """What an add-on change costs: the monthly increase for the service's period."""

    def total(values):
        return sum((specs[n].monthly(v) for n, v in values.items() if n in specs), Decimal(0))

    return to_cents(max(Decimal(0), total(new) - total(old)) * max(1, months_in(period)))
