"""The whole seller state as JSON, saved to and loaded from a file (a demo survives a restart).

A snapshot read back is checked field by field before a `Seller` is built from it: a file
that is not one this module wrote is refused with `SnapshotError`, naming where it is wrong.
The control API keeps named snapshots in a state folder (`named`); `--state FILE` uses a path.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from simulator.model import (
    PRODUCT_TYPES,
    STATUS_NAMES,
    Account,
    Event,
    LedgerEntry,
    Seller,
    SellerError,
    Service,
    Tariff,
    period_end,
)
from simulator.world import ADDON_TYPES, SLOW_SECONDS_MAX, WorldError, valid_period

VERSION = 1
NAME_FORM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
LARGEST_AMOUNT = Decimal(10) ** 18  # beyond it, sums would outgrow Decimal's 28 digits
ID_KINDS = ("service", "event", "ledger", "ip", "item")
TOP_KEYS = {
    "version",
    "currency",
    "now",
    "seed",
    "slow_seconds",
    "next",
    "enum_ids",
    "accounts",
    "tariffs",
    "services",
    "feeds",
    "ledger",
    "faults",
}


class SnapshotError(ValueError):
    """A snapshot that cannot be loaded; `where` names the part that is wrong."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where = where
        self.problem = problem


class SnapshotNameError(ValueError):
    """A snapshot name that is not a plain file name of the allowed characters."""


def _encode(value):
    if isinstance(value, Decimal):
        return {"__decimal__": str(value)}
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, timedelta):
        return {"__seconds__": value.total_seconds()}
    raise TypeError(f"cannot save {type(value).__name__}")


def _decode(node: dict):
    if "__decimal__" in node:
        return Decimal(node["__decimal__"])
    if "__datetime__" in node:
        return datetime.fromisoformat(node["__datetime__"])
    if "__seconds__" in node:
        return timedelta(seconds=node["__seconds__"])
    return node


def _plain(value):
    """Dataclasses as dicts, and dicts with int keys kept as [key, value] pairs."""
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {"__pairs__": [[k, _plain(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _unplain(value, where: str = ""):
    if isinstance(value, dict):
        if "__pairs__" in value:
            pairs = value["__pairs__"]
            if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 for p in pairs
            ):
                raise SnapshotError(where, "expected a list of [key, value] pairs")
            return {
                _hashable(k, where): _unplain(v, f"{where}.{k}")
                for k, v in ((p[0], p[1]) for p in pairs)
            }
        return {k: _unplain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_unplain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _hashable(key, where: str):
    if not isinstance(key, str | int) or isinstance(key, bool):
        raise SnapshotError(where, f"expected a name or a number as a key, got {key!r:.60}")
    return key


# -- checking what a file holds against the model's own field types --------------------------


def _shown(value) -> str:
    return f"{type(value).__name__} {value!r:.60}"


def _checked(value, hint, where: str):
    """`value` if it has the type `hint` names (dataclasses built from their fields)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _checked(value, option, where)
            except SnapshotError:
                continue
        raise SnapshotError(
            where, f"expected {' or '.join(map(_type_name, args))}, got {_shown(value)}"
        )
    if origin is list:
        if not isinstance(value, list):
            raise SnapshotError(where, f"expected a list, got {_shown(value)}")
        return [_checked(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise SnapshotError(where, f"expected a mapping, got {_shown(value)}")
        key_hint, value_hint = args or (str, object)
        return {
            _checked(k, key_hint, where): _checked(v, value_hint, f"{where}.{k}")
            for k, v in value.items()
        }
    if is_dataclass(hint):
        return _record(value, hint, where)
    if hint is type(None):
        if value is not None:
            raise SnapshotError(where, f"expected nothing (null), got {_shown(value)}")
        return None
    if hint is float:
        hint = int | float
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return _sane(value, where)
    raise SnapshotError(where, f"expected {_type_name(hint)}, got {_shown(value)}")


def _sane(value, where: str):
    """Values of the right type that the model still cannot work with are refused too."""
    if isinstance(value, Decimal) and not (
        value.is_finite() and value.copy_abs() <= LARGEST_AMOUNT
    ):
        raise SnapshotError(where, f"expected an amount within ±{LARGEST_AMOUNT}, got {value}")
    if isinstance(value, datetime) and value.tzinfo is not None:
        raise SnapshotError(where, f"expected a time without a zone (UTC), got {value}")
    return value


def _type_name(hint) -> str:
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def _record(value, cls, where: str):
    """A dataclass `cls` built from the mapping `value`, every field checked."""
    if not isinstance(value, dict):
        raise SnapshotError(where, f"expected a mapping, got {_shown(value)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(map(str, value)) - set(known))
    if unknown:
        raise SnapshotError(f"{where}.{unknown[0]}", f"unknown field of {cls.__name__}")
    built = {}
    for name, spec in known.items():
        if name not in value:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise SnapshotError(f"{where}.{name}", "missing")
            continue
        built[name] = _checked(value[name], hints[name], f"{where}.{name}")
    return cls(**built)


def _member(value, allowed, where: str):
    if value not in allowed:
        raise SnapshotError(where, f"expected one of {sorted(allowed)}, got {value!r:.60}")
    return value


def _faults(saved) -> dict:
    """The saved faults, `{queued, used}` (or an older `{kind: times}`), checked."""
    if isinstance(saved, dict) and "queued" in saved:
        saved = _checked(saved, dict[str, list[dict] | dict[str, int]], "faults")
        queued = _checked(saved["queued"], list[dict], "faults.queued")
        for i, entry in enumerate(queued):
            if not isinstance(entry.get("used", 0), int) or not isinstance(entry.get("kind"), str):
                raise SnapshotError(f"faults.queued[{i}]", f"expected a queued fault, got {entry}")
        _checked(saved.get("used", {}), dict[str, int], "faults.used")
    else:
        saved = _checked(saved, dict[str, int], "faults")
    probe = Seller().faults  # Faults.restore names a bad kind, times or aim with ValueError
    try:
        probe.restore(saved)
    except (KeyError, TypeError, ValueError) as error:
        raise SnapshotError("faults", str(error)) from None
    return saved


ADDON_VALUE_TYPES = {"integer": int, "boolean": bool, "enumeration": str}


def _check_addon_values(service: Service, tariff: Tariff, where: str) -> None:
    """A service's add-on values are of the kind its tariff's add-ons take."""
    for name, value in service.addons.items():
        addon = tariff.addons.get(name)
        if addon is None:  # one the tariff has since dropped: shown, never priced
            continue
        kind = ADDON_VALUE_TYPES[addon.type]
        if type(value) is not kind and not (kind is str and value is None):
            raise SnapshotError(
                f"{where}.addons.{name}", f"expected {addon.type} value, got {_shown(value)}"
            )


def _period(period: int, where: str) -> None:
    try:
        valid_period(period, where)
    except WorldError as error:
        raise SnapshotError(where, error.problem) from None


def _check_ids_ahead(seller: Seller) -> None:
    """The next ids must come after every id in use, or a new one would replace an old one."""
    used = {
        "service": seller.services,
        "event": [e.id for events in seller.feeds.values() for e in events],
        "ledger": [e.id for e in seller.ledger],
    }
    for kind, ids in used.items():
        if ids and seller._next[kind] <= max(ids):
            raise SnapshotError(
                f"next.{kind}", f"expected more than {max(ids)}, got {seller._next[kind]}"
            )


# -- to and from a dict ---------------------------------------------------------------------


def to_dict(seller: Seller) -> dict:
    """Every piece of seller state that survives a restart (sessions and call log do not)."""
    return {
        "version": VERSION,
        "currency": seller.currency,
        "now": seller.now,
        "seed": seller.seed,
        "slow_seconds": seller.slow_seconds,
        "next": dict(seller._next),
        "enum_ids": [[a, i, n] for (a, i), n in seller._enum_ids.items()],
        "accounts": [_plain(a) for a in seller.accounts.values()],
        "tariffs": [_plain(t) for t in seller.tariffs.values()],
        "services": [_plain(s) for s in seller.services.values()],
        "feeds": [_plain(e) for events in seller.feeds.values() for e in events],
        "ledger": [_plain(e) for e in seller.ledger],
        "faults": {"queued": seller.faults.to_list(), "used": dict(seller.faults.used)},
    }


def from_dict(data) -> Seller:
    """A new `Seller` from `to_dict`'s output; SnapshotError naming what is wrong otherwise."""
    if not isinstance(data, dict):
        raise SnapshotError("", f"expected a JSON object, got {_shown(data)}")
    if data.get("version") != VERSION:
        raise SnapshotError("version", f"expected {VERSION}, got {data.get('version')!r:.60}")
    missing = sorted(TOP_KEYS - set(data))
    if missing:
        raise SnapshotError(missing[0], "missing")
    unknown = sorted(set(map(str, data)) - TOP_KEYS)
    if unknown:
        raise SnapshotError(unknown[0], "unknown key")
    data = _unplain(data)
    seller = Seller(
        _checked(data["currency"], str, "currency"),
        _checked(data["now"], datetime, "now"),
        _checked(data["seed"], int, "seed"),
    )
    seller.slow_seconds = _checked(data["slow_seconds"], float, "slow_seconds")
    if not 0 <= seller.slow_seconds <= SLOW_SECONDS_MAX:
        raise SnapshotError(
            "slow_seconds", f"expected 0 to {SLOW_SECONDS_MAX}, got {seller.slow_seconds}"
        )
    next_ids = _checked(data["next"], dict[str, int], "next")
    for kind in ID_KINDS:
        if kind not in next_ids:
            raise SnapshotError(f"next.{kind}", "missing")
    seller._next.update({kind: next_ids[kind] for kind in ID_KINDS})
    for i, entry in enumerate(_checked(data["enum_ids"], list[list[int | str]], "enum_ids")):
        if len(entry) != 3 or not isinstance(entry[1], str) or isinstance(entry[2], str):
            raise SnapshotError(f"enum_ids[{i}]", f"expected [addon id, item, id], got {entry}")
        seller._enum_ids[(entry[0], entry[1])] = entry[2]
    for account in _checked(data["accounts"], list[Account], "accounts"):
        seller.add_account(account)
    for i, tariff in enumerate(_checked(data["tariffs"], list[Tariff], "tariffs")):
        _member(tariff.type, PRODUCT_TYPES, f"tariffs[{i}].type")
        for name, addon in tariff.addons.items():
            where = f"tariffs[{i}].addons.{name}"
            _member(addon.type, ADDON_TYPES, f"{where}.type")
            unnumbered = sorted(set(addon.items) - set(addon.item_ids))
            if addon.type == "enumeration" and unnumbered:
                raise SnapshotError(f"{where}.item_ids", f"no id for the item {unnumbered[0]!r}")
        for period in tariff.prices:
            _period(period, f"tariffs[{i}].prices")
        seller.tariffs[tariff.id] = tariff
    for i, service in enumerate(_checked(data["services"], list[Service], "services")):
        where = f"services[{i}]"
        _member(service.account, seller.accounts, f"{where}.account")
        _member(service.tariff, seller.tariffs, f"{where}.tariff")
        _member(service.status, STATUS_NAMES, f"{where}.status")
        _member(service.type, PRODUCT_TYPES, f"{where}.type")
        _period(service.period, f"{where}.period")
        if service.setup_due is not None:  # the set-up will need the period's end
            try:
                period_end(service.setup_due, service.period)
            except SellerError as error:
                raise SnapshotError(f"{where}.setup_due", error.msg) from None
        _check_addon_values(service, seller.tariffs[service.tariff], where)
        seller.services[service.id] = service
        seller._schedule(service.setup_due, service, "setup")
        seller._schedule(service.expires, service, "expiry")
    for i, event in enumerate(_checked(data["feeds"], list[Event], "feeds")):
        seller.feeds[_member(event.account, seller.accounts, f"feeds[{i}].account")].append(event)
    seller.ledger = _checked(data["ledger"], list[LedgerEntry], "ledger")
    _check_ids_ahead(seller)
    seller.faults.restore(_faults(data["faults"]))
    return seller


# -- files ----------------------------------------------------------------------------------


def save(seller: Seller, path: str | Path) -> None:
    """Write the snapshot to `path` with mode 0600 (it holds passwords), atomically."""
    path = Path(path)
    text = json.dumps(to_dict(seller), default=_encode, indent=1)
    # written beside the target and renamed over it, so a reader never sees half a file
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: str | Path) -> Seller:
    """The seller a snapshot file holds; SnapshotError if it is no snapshot, OSError if unread."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return parse(text)


def parse(text: str) -> Seller:
    """The seller a snapshot's text holds; SnapshotError if it is not one."""
    try:
        data = json.loads(text, object_hook=_decode)
    except RecursionError:
        raise SnapshotError("", "nested too deeply to be a snapshot") from None
    except (ValueError, TypeError, ArithmeticError) as error:
        raise SnapshotError("", f"not a snapshot's JSON: {error}") from None
    return from_dict(data)


def named(state_dir: Path, name) -> Path:
    """The file of the snapshot `name` in `state_dir`; SnapshotNameError if it is no plain name."""
    if not isinstance(name, str) or not NAME_FORM.fullmatch(name) or ".." in name:
        raise SnapshotNameError(
            "expected 1 to 100 of A-Z a-z 0-9 . _ - starting with a letter or digit and without "
            f"'..', got {name!r:.120}"
        )
    return state_dir / f"{name}.json"


def names(state_dir: Path) -> list[str]:
    """The snapshots saved in `state_dir`, by name."""
    if not state_dir.is_dir():
        return []
    return sorted(
        p.name.removesuffix(".json")
        for p in state_dir.glob("*.json")
        if NAME_FORM.fullmatch(p.name.removesuffix(".json"))
    )


def as_json(seller: Seller) -> dict:
    """The snapshot as plain JSON values (for `GET /_sim/state`)."""
    return json.loads(json.dumps(to_dict(seller), default=_encode))
