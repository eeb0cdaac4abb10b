"""Faults queued for the next BILLmanager API calls, counted as the scenario format says.

Each queued fault is a counter of its own, optionally aimed at one function (a glob such as
`*.order.param`) and one account. A call uses at most one call fault: the first kind in
`CALL_KINDS` order that has a counter aimed at it, and of that kind the oldest counter.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase

CALL_KINDS = ("down", "error", "slow", "lose_reply")
FEED_KINDS = ("drop_events", "duplicate_events", "reorder_events")
KINDS = CALL_KINDS + FEED_KINDS
FEED_FUNC = "itemevent"


@dataclass
class Fault:
    """One `seller.fault`: `times` calls left to hit, aimed at `func` and `account` if set."""

    id: int
    kind: str
    times: int
    func: str | None = None
    account: str | None = None
    used: int = 0

    def aims_at(self, func: str, account: str | None) -> bool:
        """Whether a call of `func` by `account` is one this fault counts."""
        if self.func is not None and not fnmatchcase(func, self.func):
            return False
        return self.account is None or self.account == account


class Faults:
    """The queued faults; `used` counts, per kind, the calls and reads they have hit."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.queued: list[Fault] = []
        self.used: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._next_id = 1

    def add(
        self, kind: str, times: int, func: str | None = None, account: str | None = None
    ) -> Fault | None:
        """Queue `times` of `kind` (0 is a no-op); ValueError naming the key that is wrong."""
        if kind not in KINDS:
            raise ValueError(f"kind: unknown fault '{kind}'; expected one of {', '.join(KINDS)}")
        if not isinstance(times, int) or isinstance(times, bool) or times < 0:
            raise ValueError(f"times: expected a whole number >= 0, not {times!r}")
        for key, value in (("func", func), ("account", account)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{key}: expected a non-empty name, not {value!r}")
        if kind in FEED_KINDS and func is not None and not fnmatchcase(FEED_FUNC, func):
            raise ValueError(
                f"func: {kind} shapes reads of the event feed ({FEED_FUNC}); "
                f"{func!r} never matches it"
            )
        if times == 0:
            return None
        fault = Fault(self._next_id, kind, times, func, account)
        self._next_id += 1
        self.queued.append(fault)
        return fault

    def clear(self) -> None:
        self.queued = []

    @property
    def counts(self) -> dict[str, int]:
        """Calls or reads left per kind, over every counter of that kind."""
        totals = dict.fromkeys(KINDS, 0)
        for fault in self.queued:
            totals[fault.kind] += fault.times
        return totals

    def pending(self) -> dict[str, int]:
        return {kind: n for kind, n in self.counts.items() if n}

    def _use(self, fault: Fault) -> str:
        fault.times -= 1
        fault.used += 1
        self.used[fault.kind] += 1
        if not fault.times:
            self.queued.remove(fault)
        return fault.kind

    def _first(self, kind: str, func: str, account: str | None, counts=None) -> Fault | None:
        """The oldest counter of `kind` aimed at the call (and that `counts` it, if given)."""
        for fault in self.queued:
            if fault.kind != kind or not fault.aims_at(func, account):
                continue
            if counts is None or counts(fault):
                return fault
        return None

    def take_for_call(self, func: str, account: str | None) -> str | None:
        """The fault a call meets before the seller acts: `down`, `error` or `slow`, if any."""
        for kind in ("down", "error", "slow"):
            fault = self._first(kind, func, account)
            if fault is not None:
                return self._use(fault)
        return None

    def take_lost_reply(self, func: str, account: str | None, changed_state: bool) -> bool:
        """Whether the reply to a call the seller carried out is lost (`lose_reply`).

        It counts calls that changed the seller's state; one aimed at the event feed counts
        every read of it, empty or not.
        """

        def counts(fault: Fault) -> bool:
            return changed_state or (fault.func is not None and func == FEED_FUNC)

        fault = self._first("lose_reply", func, account, counts)
        if fault is None:
            return False
        self._use(fault)
        return True

    def shape_feed(self, events: list, account: str | None = None) -> list:
        """Apply every feed fault in force for `account` to one read; an empty read uses none."""
        if not events:
            return events
        active = set()
        for kind in FEED_KINDS:
            fault = self._first(kind, FEED_FUNC, account)
            if fault is not None:
                active.add(self._use(fault))
        if "drop_events" in active:
            return []
        if "duplicate_events" in active:
            events = [e for event in events for e in (event, event)]
        if "reorder_events" in active:
            events = list(events)
            self.rng.shuffle(events)
        return events

    def to_list(self) -> list[dict]:
        """The queued counters as plain values, oldest first."""
        return [asdict(fault) for fault in self.queued]

    def restore(self, saved: dict) -> None:
        """The faults a snapshot saved (`{queued, used}`, or an older `{kind: times}`)."""
        if "queued" in saved:
            queued, used = saved["queued"], saved.get("used")
        else:
            queued, used = [{"kind": k, "times": n} for k, n in saved.items() if n], None
        self.queued = []
        for entry in queued:
            fault = self.add(entry["kind"], entry["times"], entry.get("func"), entry.get("account"))
            if fault is not None:
                fault.used = entry.get("used", 0)
        self.used.update(used or {})
