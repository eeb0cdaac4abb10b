"""Build a `Seller` from the `seller` section of a scenario file, naming any bad key."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from simulator.model import (
    ADMIN_LEVEL,
    CLIENT_LEVEL,
    PRODUCT_TYPES,
    Account,
    Addon,
    Seller,
    Tariff,
)

DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
ADDON_TYPES = ("integer", "boolean", "enumeration")


class WorldError(ValueError):
    """A bad world description; the message names the key path and what was expected."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def parse_duration(value, path: str = "duration") -> timedelta:
    """`30s`, `5m`, `2h` or `1d` as a timedelta."""
    match = DURATION.match(str(value))
    if not match:
        raise WorldError(path, f"expected a duration like 30s, 5m, 2h or 1d, got {value!r}")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def parse_time(value, path: str = "start") -> datetime:
    """An ISO date-time (a trailing Z allowed) as a naive UTC datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise WorldError(path, f"expected an ISO date-time, got {value!r}") from None


def _mapping(value, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WorldError(path, f"expected a mapping, got {type(value).__name__} {value!r}")
    return value


def _list(value, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise WorldError(path, f"expected a list of names, got {value!r}")
    return [str(v) for v in value]


def _amount(value, path: str) -> Decimal:
    if isinstance(value, bool):
        raise WorldError(path, f"expected an amount, got {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise WorldError(path, f"expected an amount, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise WorldError(path, f"expected an amount >= 0, got {value!r}")
    return amount


def _int(value, path: str) -> int:
    if isinstance(value, bool):
        raise WorldError(path, f"expected a whole number, got {value!r}")
    try:
        return int(str(value))
    except ValueError:
        raise WorldError(path, f"expected a whole number, got {value!r}") from None


def _unknown_keys(spec: dict, allowed: set[str], path: str) -> None:
    extra = sorted(set(map(str, spec)) - allowed)
    if extra:
        raise WorldError(f"{path}.{extra[0]}", f"unknown key; expected one of {sorted(allowed)}")


def parse_prices(value, path: str) -> dict[int, Decimal]:
    prices = _mapping(value, path)
    if not prices:
        raise WorldError(path, "expected at least one period with a price")
    return {_int(p, f"{path}.{p}"): _amount(v, f"{path}.{p}") for p, v in prices.items()}


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
            raise WorldError(f"{where}.type", f"expected one of {ADDON_TYPES}, got {kind!r}")
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
    raise WorldError(path, f"expected auto, manual or {{after: 10m}}, got {value!r}")


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
        raise WorldError(f"{path}.type", f"expected one of {PRODUCT_TYPES}, got {spec['type']!r}")
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
        raise WorldError(f"{path}.level", f"expected client or admin, got {level!r}")
    can_suspend = spec.get("can_suspend", True)
    if not isinstance(can_suspend, bool):
        raise WorldError(f"{path}.can_suspend", f"expected true or false, got {can_suspend!r}")
    return Account(
        login=str(login),
        password=str(spec["password"]),
        level=ADMIN_LEVEL if level == "admin" else CLIENT_LEVEL,
        balance=_amount(spec.get("balance", 0), f"{path}.balance"),
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
        raise WorldError(f"{path}.currency", f"expected an ISO code like EUR, got {currency!r}")
    seller = Seller(currency=currency, now=start, seed=seed)
    if "slow_seconds" in section:
        seller.slow_seconds = float(_amount(section["slow_seconds"], f"{path}.slow_seconds"))
    for login, spec in _mapping(section.get("accounts"), f"{path}.accounts").items():
        seller.add_account(parse_account(login, spec, f"{path}.accounts.{login}"))
    for tariff_id, spec in _mapping(section.get("tariffs"), f"{path}.tariffs").items():
        seller.add_tariff(parse_tariff(tariff_id, spec, f"{path}.tariffs.{tariff_id}"))
    return seller
