"""The whole seller state as JSON, saved to and loaded from a file (a demo survives a restart)."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from simulator.model import Account, Addon, Event, LedgerEntry, Seller, Service, Tariff

VERSION = 1


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


def _unplain(value):
    if isinstance(value, dict):
        if "__pairs__" in value:
            return {k: _unplain(v) for k, v in value["__pairs__"]}
        return {k: _unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    return value


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


def from_dict(data: dict) -> Seller:
    if data.get("version") != VERSION:
        raise ValueError(f"snapshot version {data.get('version')!r} is not {VERSION}")
    data = _unplain(data)
    seller = Seller(data["currency"], data["now"], data["seed"])
    seller.slow_seconds = data["slow_seconds"]
    seller._next.update(data["next"])
    seller._enum_ids = {(a, i): n for a, i, n in data["enum_ids"]}
    for account in data["accounts"]:
        seller.add_account(Account(**account))
    for tariff in data["tariffs"]:
        tariff["addons"] = {k: Addon(**v) for k, v in tariff["addons"].items()}
        seller.tariffs[tariff["id"]] = Tariff(**tariff)
    for service in data["services"]:
        restored = Service(**service)
        seller.services[restored.id] = restored
        seller._schedule(restored.setup_due, restored, "setup")
        seller._schedule(restored.expires, restored, "expiry")
    for event in data["feeds"]:
        seller.feeds[event["account"]].append(Event(**event))
    seller.ledger = [LedgerEntry(**entry) for entry in data["ledger"]]
    seller.faults.restore(data["faults"])
    return seller


def save(seller: Seller, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(seller), default=_encode, indent=1))


def load(path: str | Path) -> Seller:
    return from_dict(json.loads(Path(path).read_text(), object_hook=_decode))


def as_json(seller: Seller) -> dict:
    """The snapshot as plain JSON values (for `GET /_sim/state`)."""
    return json.loads(json.dumps(to_dict(seller), default=_encode))
