"""The coverage map of a suite: what its runs exercised on both sides, and what none did.

Taken from what happened, never from the YAML: the seller's events (status changes, event
kinds), its call log (faults each function met), its fault counters (feed faults), the engine's
store (its services' status changes, the events it applied), the engine's deaths (crash points)
and the services either side held (periods, product types).

The JSON (`--coverage FILE`), every dimension alike:

    {"version": 1,
     "scenarios": ["scenarios/library/x.yaml", ...],
     "dimensions": {
       "seller_transitions": {"seen": {"active -> suspended": {"count": 2,
                                                              "scenarios": ["..."]}},
                              "missing": ["suspended -> deleted", ...]},
       "reseller_transitions": ..., "events_made": ..., "events_applied": ...,
       "fault_kinds": ..., "faults": {"seen": {"itemevent: drop_events": ...}, "missing": []},
       "crash_points": ..., "periods": ..., "product_types": ..., "product_periods": ...}}

Keys: a transition is `from -> to` (`new` before a service's first status); a fault is
`function: kind`; a product period is `type period`. `missing` lists the keys known to be possible
that no run exercised (`faults` and `product_periods` name none: `fault_kinds`, `periods` and
`product_types` do).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from reseller.model import STATUS_NAMES as RESELLER_STATUS
from scenarios.harness import CRASH_POINTS, Harness
from simulator.faults import CALL_KINDS, FEED_FUNC, FEED_KINDS, KINDS
from simulator.model import DAY, LIFETIME, PRODUCT_TYPES, TRIAL
from simulator.model import STATUS_NAMES as SELLER_STATUS

VERSION = 1
NEW = "new"
# Every status change the seller's model makes (`Seller._set_status`) and a service's birth.
STATUS_TRANSITIONS = (
    f"{NEW} -> ordered",
    "ordered -> active",
    "active -> suspended",
    "suspended -> active",
    "ordered -> deleted",
    "active -> deleted",
    "suspended -> deleted",
)
# Every kind of event the seller makes (`Seller._emit`'s callers).
EVENT_KINDS = (
    "open",
    "suspend",
    "resume",
    "close",
    "expire",
    "pricelist",
    "param",
    "addon",
    "ip_add",
    "ip_del",
)
# The engine learns of changes late: an import brings a service in any status, and a service
# may be suspended before the engine saw it set up.
RESELLER_TRANSITIONS = STATUS_TRANSITIONS + (
    f"{NEW} -> active",
    f"{NEW} -> suspended",
    "ordered -> suspended",
)
PERIOD_KINDS = ("trial", "day", "months", "lifetime")
KNOWN = {
    "seller_transitions": STATUS_TRANSITIONS,
    "reseller_transitions": RESELLER_TRANSITIONS,
    "events_made": EVENT_KINDS,
    "events_applied": EVENT_KINDS,
    "fault_kinds": KINDS,
    "faults": (),
    "crash_points": CRASH_POINTS,
    "periods": PERIOD_KINDS,
    "product_types": PRODUCT_TYPES,
    "product_periods": (),
}
DIMENSIONS = tuple(KNOWN)


def period_kind(period: int) -> str:
    """A period as the map counts it: trial, day, lifetime, or months (any number of them)."""
    return {TRIAL: "trial", DAY: "day", LIFETIME: "lifetime"}.get(period, "months")


@dataclass
class Coverage:
    """What runs exercised: per dimension, each key's count and the scenarios that did it."""

    seen: dict[str, dict[str, int]] = field(default_factory=dict)
    where: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    def note(self, dimension: str, key: str, path: str, count: int = 1) -> None:
        self.seen.setdefault(dimension, {})
        self.seen[dimension][key] = self.seen[dimension].get(key, 0) + count
        self.where.setdefault(dimension, {}).setdefault(key, set()).add(path)

    def add(self, other: Coverage) -> Coverage:
        for dimension, keys in other.seen.items():
            for key, count in keys.items():
                for path in other.where[dimension][key]:
                    self.where.setdefault(dimension, {}).setdefault(key, set()).add(path)
                self.seen.setdefault(dimension, {})
                self.seen[dimension][key] = self.seen[dimension].get(key, 0) + count
        return self

    def count(self, dimension: str, key: str) -> int:
        return self.seen.get(dimension, {}).get(key, 0)

    def scenarios(self, dimension: str, key: str) -> list[str]:
        return sorted(self.where.get(dimension, {}).get(key, ()))

    def missing(self, dimension: str) -> list[str]:
        """The keys known to be possible in `dimension` that no run exercised."""
        return [key for key in KNOWN[dimension] if not self.count(dimension, key)]

    def to_dict(self) -> dict:
        """Plain data (`{dimension: {key: {count, scenarios}}}`), as `from_dict` reads it."""
        return {
            dimension: {
                key: {"count": count, "scenarios": self.scenarios(dimension, key)}
                for key, count in sorted(self.seen.get(dimension, {}).items())
            }
            for dimension in DIMENSIONS
        }

    @classmethod
    def from_dict(cls, data: dict) -> Coverage:
        covered = cls()
        for dimension, keys in data.items():
            for key, entry in keys.items():
                covered.seen.setdefault(dimension, {})[key] = entry["count"]
                covered.where.setdefault(dimension, {})[key] = set(entry["scenarios"])
        return covered


def suite_coverage(files: list[dict]) -> Coverage:
    """The coverage of every file a recorder recorded, together."""
    covered = Coverage()
    for record in files:
        covered.add(Coverage.from_dict(record["coverage"]))
    return covered


def document(files: list[dict]) -> dict:
    """The coverage map as `--coverage` writes it (the shape the module's docstring gives)."""
    covered = suite_coverage(files)
    seen = covered.to_dict()
    return {
        "version": VERSION,
        "scenarios": [record["path"] for record in files],
        "dimensions": {
            dimension: {"seen": seen[dimension], "missing": covered.missing(dimension)}
            for dimension in DIMENSIONS
        },
    }


def write_json(files: list[dict], target: str) -> None:
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(json.dumps(document(files), indent=2) + "\n")


class Tracker:
    """Watches one run from its set-up to its end; `finish` gives what the run exercised."""

    def __init__(self, h: Harness):
        seller = h.seller
        with seller.lock:
            self.seller_status = {s.id: SELLER_STATUS[s.status] for s in seller.services.values()}
            self.first_event = max((e.id for e in seller.events_made), default=0)
            self.feed_faults = {kind: seller.faults.used[kind] for kind in FEED_KINDS}
        self.crashes = h.crashes
        self.crash_points: list[str] = []
        self.item_status: dict[int, str] = {}
        self.item_moves: list[tuple[str, str]] = []
        self.store = None
        self._watch(h, initial=True)

    def _watch(self, h: Harness, initial: bool = False) -> None:
        """Have the engine's store say each status change of its services as it makes it.

        A temporary trigger: it lives in the connection, outside the engine's tables. A new
        engine after a crash opens a new store: what changed before it is watched again is
        found by comparing statuses after the step.
        """
        if h.store is self.store:
            return
        self.store = h.store
        conn = h.store.db.conn
        conn.create_function("bmsim_item_status", 3, self._item_moved)
        conn.executescript(
            """
            CREATE TEMP TRIGGER IF NOT EXISTS bmsim_item_added AFTER INSERT ON item
            BEGIN SELECT bmsim_item_status(new.id, NULL, new.status); END;
            CREATE TEMP TRIGGER IF NOT EXISTS bmsim_item_moved AFTER UPDATE OF status ON item
            WHEN old.status IS NOT new.status
            BEGIN SELECT bmsim_item_status(new.id, old.status, new.status); END;
            """
        )
        self._catch_up(h, initial)

    def _item_moved(self, item: int, old: int | None, new: int) -> None:
        before = self.item_status.get(item, NEW) if old is None else RESELLER_STATUS[old]
        after = RESELLER_STATUS[new]
        self.item_moves.append((before, after))
        self.item_status[item] = after

    def _catch_up(self, h: Harness, initial: bool = False) -> None:
        """Note the status changes the trigger did not see (none, unless a new engine took
        over); `initial`: take the statuses as they are, before the run did anything."""
        for item in h.store.items():
            known = self.item_status.get(item.id)
            if initial:
                self.item_status[item.id] = item.status_name
            elif known != item.status_name:
                self.item_moves.append((known or NEW, item.status_name))
                self.item_status[item.id] = item.status_name

    def stepped(self, h: Harness, step) -> None:
        if h.crashes > self.crashes:
            self.crash_points += [step.crash] * (h.crashes - self.crashes)
            self.crashes = h.crashes
        self._watch(h)
        self._catch_up(h)

    def finish(self, h: Harness, path: str) -> Coverage:
        covered = Coverage()
        seller = h.seller
        with seller.lock:
            status = dict(self.seller_status)
            made = {}
            for event in seller.events_made:
                made[event.id] = event.type
                if event.id <= self.first_event:
                    continue
                covered.note("events_made", event.type, path)
                before = status.get(event.service)
                if before is None:
                    covered.note("seller_transitions", f"{NEW} -> ordered", path)
                    before = "ordered"  # every service the seller makes is born ordered
                after = SELLER_STATUS[event.status]
                if after != before:
                    covered.note("seller_transitions", f"{before} -> {after}", path)
                status[event.service] = after
            for service in seller.services.values():
                if service.id not in status:  # made and still waiting for its set-up
                    covered.note("seller_transitions", f"{NEW} -> ordered", path)
                period = period_kind(service.period)
                covered.note("product_types", service.type, path)
                covered.note("periods", period, path)
                covered.note("product_periods", f"{service.type} {period}", path)
            for call in seller.calls:
                if call["result"] in CALL_KINDS:
                    covered.note("faults", f"{call['func'] or '-'}: {call['result']}", path)
                    covered.note("fault_kinds", call["result"], path)
            for kind, before in self.feed_faults.items():
                hits = seller.faults.used[kind] - before
                if hits:
                    covered.note("faults", f"{FEED_FUNC}: {kind}", path, hits)
                    covered.note("fault_kinds", kind, path, hits)
        self._catch_up(h)
        for before, after in self.item_moves:
            covered.note("reseller_transitions", f"{before} -> {after}", path)
        for applied in h.store.applied_events():
            if applied.event_id in made:
                covered.note("events_applied", made[applied.event_id], path)
        for item in h.store.items():
            covered.note("periods", period_kind(item.period), path)
        for point in self.crash_points:
            covered.note("crash_points", point, path)
        return covered
