"""Build a `Seller` from the `seller` section of a scenario file, naming any bad key."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from simulator.model import (
    ADMIN_LEVEL,
    CLIENT_LEVEL,
    DAY,
    LIFETIME,
    PRODUCT_TYPES,
    TRIAL,
    Account,
    Addon,
    Seller,
    Tariff,
)

DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
ADDON_TYPES = ("integer", "boolean", "enumeration")
# Bounds that keep every date before the year 10000 and balances within Decimal's 28 digits
# (prices are not bounded: a seller may advertise an absurd one, which `cents` refuses).
LARGEST_AMOUNT = Decimal(10) ** 12  # a balance or a top-up
LONGEST_PERIOD = 1200  # months: a hundred years
PERIOD_CODES = (
    f"{DAY} (a day), {TRIAL} (trial), {LIFETIME} (lifetime) or 1 to {LONGEST_PERIOD} months"
)
SLOW_SECONDS_MAX = 600


class WorldError(ValueError):
    """A bad world description; the message names the key path and what was expected."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def shown(value) -> str:
    """`value` as an error message quotes it: its repr, cut to 60 characters."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for Python to print
        return "a number of more than 4300 digits"
    return text if len(text) <= 60 else f"{text[:57]}..."


def parse_duration(value, path: str = "duration") -> timedelta:
    """`30s`, `5m`, `2h` or `1d` as a timedelta."""
    match = DURATION.match(str(value))
    if not match or len(match.group(1)) > 12:
        raise WorldError(path, f"expected a duration like 30s, 5m, 2h or 1d, got {shown(value)}")
    try:
        return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise WorldError(path, f"{shown(value)} is longer than the calendar goes") from None


def parse_time(value, path: str = "start") -> datetime:
    """An ISO date-time (a trailing Z allowed) as a naive UTC datetime."""
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if when.tzinfo is not None:
            when = when.astimezone(UTC)
    except ValueError:
        raise WorldError(path, f"expected an ISO date-time, got {shown(value)}") from None
    except OverflowError:
        raise WorldError(path, f"{shown(value)} is past the year 9999 in UTC") from None
    return when.replace(tzinfo=None)


def _mapping(value, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WorldError(path, f"expected a mapping, got {type(value).__name__} {shown(value)}")
    return value


def _list(value, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise WorldError(path, f"expected a list of names, got {shown(value)}")
    return [str(v) for v in value]


def _amount(value, path: str, largest: Decimal | None = None) -> Decimal:
    """A finite amount >= 0 (and at most `largest` if given), as Decimal."""
    if isinstance(value, bool):
        raise WorldError(path, f"expected an amount, got {shown(value)}")
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise WorldError(path, f"expected an amount, got {shown(value)}") from None
    if not amount.is_finite() or amount < 0:
        raise WorldError(path, f"expected an amount >= 0, got {shown(value)}")
    if largest is not None and amount > largest:
        raise WorldError(path, f"expected an amount at most {largest:f}, got {shown(value)}")
    return amount


def _int(value, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise WorldError(path, f"expected a whole number, got {shown(value)}")
    try:
        return int(str(value))
    except ValueError:  # a number past Python's 4300 digits for int() says so too
        raise WorldError(path, f"expected a whole number, got {shown(value)}") from None


def _unknown_keys(spec: dict, allowed: set[str], path: str) -> None:
    extra = sorted(set(map(str, spec)) - allowed)
    if extra:
        raise WorldError(f"{path}.{extra[0]}", f"unknown key; expected one of {sorted(allowed)}")


def parse_prices(value, path: str) -> dict[int, Decimal]:
    prices = _mapping(value, path)
    if not prices:
        raise WorldError(path, "expected at least one period with a price")
    return {valid_period(p, f"{path}.{p}"): _amount(v, f"{path}.{p}") for p, v in prices.items()}


def valid_period(value, path: str) -> int:
    """A BILLmanager period code: months, or the day, trial and lifetime codes."""
    period = _int(value, path)
    if period not in (DAY, TRIAL, LIFETIME) and not 1 <= period <= LONGEST_PERIOD:
        raise WorldError(path, f"expected a period code, {PERIOD_CODES}; got {shown(value)}")
    return period


def parse_addons(value, path: str) -> dict[str, Addon]:
    addons = {}
    for intname, spec in _mapping(value, path).items():
        where = f"{path}.{intname}"
        spec = _mapping(spec, where)
        _unknown_keys(
            spec, {"id", "type", "included", "max", "unit_price", "price", "items"}, where
        )
        if "id" not in spec:
            raise WorldError(f"{where}.id", "missing; every add-on needs its seller id")
        kind = spec.get("type", "integer")
        if kind not in ADDON_TYPES:
            raise WorldError(f"{where}.type", f"expected one of {ADDON_TYPES}, got {shown(kind)}")
        items = {
            str(k): _amount(v, f"{where}.items.{k}")
            for k, v in _mapping(spec.get("items"), f"{where}.items").items()
        }
        if kind == "enumeration" and not items:
            raise WorldError(f"{where}.items", "an enumeration needs at least one item")
        addons[str(intname)] = Addon(
            id=_int(spec["id"], f"{where}.id"),
            intname=str(intname),
            type=kind,
            included=_int(spec.get("included", 0), f"{where}.included"),
            max=_int(spec["max"], f"{where}.max") if spec.get("max") is not None else None,
            unit_price=_amount(spec.get("unit_price", 0), f"{where}.unit_price"),
            price=_amount(spec.get("price", 0), f"{where}.price"),
            items=items,
        )
    ids = [a.id for a in addons.values()]
    if len(ids) != len(set(ids)):
        raise WorldError(path, f"add-on ids must differ, got {sorted(ids)}")
    return addons


def parse_setup(value, path: str) -> tuple[str, timedelta]:
    if value in (None, "auto"):
        return "auto", timedelta(0)
    if value == "manual":
        return "manual", timedelta(0)
    if isinstance(value, dict) and set(value) == {"after"}:
        return "after", parse_duration(value["after"], f"{path}.after")
    raise WorldError(path, f"expected auto, manual or {{after: 10m}}, got {shown(value)}")


TARIFF_KEYS = {
    "intname",
    "name",
    "type",
    "prices",
    "addons",
    "ostempl",
    "recipes",
    "setup",
    "description",
}


def parse_tariff(tariff_id, spec, path: str) -> Tariff:
    spec = _mapping(spec, path)
    _unknown_keys(spec, TARIFF_KEYS, path)
    for key in ("intname", "type", "prices"):
        if key not in spec:
            raise WorldError(f"{path}.{key}", "missing")
    if spec["type"] not in PRODUCT_TYPES:
        raise WorldError(
            f"{path}.type", f"expected one of {PRODUCT_TYPES}, got {shown(spec['type'])}"
        )
    setup, after = parse_setup(spec.get("setup"), f"{path}.setup")
    return Tariff(
        id=_int(tariff_id, path),
        intname=str(spec["intname"]),
        name=str(spec.get("name", spec["intname"])),
        type=spec["type"],
        prices=parse_prices(spec["prices"], f"{path}.prices"),
        addons=parse_addons(spec.get("addons"), f"{path}.addons"),
        ostempl=_list(spec.get("ostempl"), f"{path}.ostempl"),
        recipes=_list(spec.get("recipes"), f"{path}.recipes"),
        setup=setup,
        setup_after=after,
        description=str(spec.get("description") or ""),
    )


def edited_tariff(tariff: Tariff, spec, path: str) -> Tariff:
    """`tariff` with the keys `spec` gives replaced (the `seller.edit_tariff` action)."""
    spec = {k: v for k, v in _mapping(spec, path).items() if k != "id"}
    _unknown_keys(spec, TARIFF_KEYS - {"type"}, path)
    changes: dict = {}
    if "prices" in spec:
        changes["prices"] = parse_prices(spec["prices"], f"{path}.prices")
    if "addons" in spec:
        changes["addons"] = parse_addons(spec["addons"], f"{path}.addons")
    for key in ("ostempl", "recipes"):
        if key in spec:
            changes[key] = _list(spec[key], f"{path}.{key}")
    for key in ("intname", "name", "description"):
        if key in spec:
            changes[key] = str(spec[key])
    if "setup" in spec:
        changes["setup"], changes["setup_after"] = parse_setup(spec["setup"], f"{path}.setup")
    return replace(tariff, **changes)


def parse_account(login, spec, path: str) -> Account:
    spec = _mapping(spec, path)
    _unknown_keys(spec, {"password", "balance", "level", "can_suspend", "email"}, path)
    if "password" not in spec:
        raise WorldError(f"{path}.password", "missing")
    level = spec.get("level", "client")
    if level not in ("client", "admin"):
        raise WorldError(f"{path}.level", f"expected client or admin, got {shown(level)}")
    can_suspend = spec.get("can_suspend", True)
    if not isinstance(can_suspend, bool):
        raise WorldError(f"{path}.can_suspend", f"expected true or false, got {shown(can_suspend)}")
    return Account(
        login=str(login),
        password=str(spec["password"]),
        level=ADMIN_LEVEL if level == "admin" else CLIENT_LEVEL,
        balance=_amount(spec.get("balance", 0), f"{path}.balance", LARGEST_AMOUNT),
        can_suspend=can_suspend,
        email=str(spec.get("email") or ""),
    )


def seller_from_world(
    section, start: datetime | None = None, seed: int = 0, path: str = "seller"
) -> Seller:
    """A new `Seller` holding the world that a scenario's `seller` section describes."""
    section = _mapping(section, path)
    _unknown_keys(section, {"currency", "accounts", "tariffs", "slow_seconds"}, path)
    currency = section.get("currency", "EUR")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise WorldError(
            f"{path}.currency", f"expected an ISO code like EUR, got {shown(currency)}"
        )
    seller = Seller(currency=currency, now=start, seed=seed)
    if "slow_seconds" in section:
        slow = _amount(section["slow_seconds"], f"{path}.slow_seconds")
        if slow > SLOW_SECONDS_MAX:
            raise WorldError(
                f"{path}.slow_seconds", f"expected at most {SLOW_SECONDS_MAX} seconds, got {slow}"
            )
        seller.slow_seconds = float(slow)
    for login, spec in _mapping(section.get("accounts"), f"{path}.accounts").items():
        seller.add_account(parse_account(login, spec, f"{path}.accounts.{login}"))
    for tariff_id, spec in _mapping(section.get("tariffs"), f"{path}.tariffs").items():
        seller.add_tariff(parse_tariff(tariff_id, spec, f"{path}.tariffs.{tariff_id}"))
    return seller
