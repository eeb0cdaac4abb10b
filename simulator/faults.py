"""Faults queued for the next BILLmanager API calls, counted as the scenario format says."""

from __future__ import annotations

import random

CALL_KINDS = ("down", "error", "slow", "lose_reply")
FEED_KINDS = ("drop_events", "duplicate_events", "reorder_events")
KINDS = CALL_KINDS + FEED_KINDS


class Faults:
    """Each kind keeps its own count; a call uses up at most one call fault."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.used: dict[str, int] = dict.fromkeys(KINDS, 0)

    def add(self, kind: str, times: int) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind '{kind}'; expected one of {', '.join(KINDS)}")
        if not isinstance(times, int) or isinstance(times, bool) or times < 0:
            raise ValueError(f"fault times must be a whole number >= 0, not {times!r}")
        self.counts[kind] += times

    def clear(self) -> None:
        self.counts = dict.fromkeys(KINDS, 0)

    def pending(self) -> dict[str, int]:
        return {kind: n for kind, n in self.counts.items() if n}

    def take_for_call(self, changes_state: bool) -> str | None:
        """The call fault this call suffers, tried in the order down, error, slow, lose_reply."""
        for kind in CALL_KINDS:
            if kind == "lose_reply" and not changes_state:
                continue
            if self.counts[kind]:
                self.counts[kind] -= 1
                self.used[kind] += 1
                return kind
        return None

    def shape_feed(self, events: list) -> list:
        """Apply every feed fault in force to one read; an empty read uses none up."""
        if not events:
            return events
        active = [kind for kind in FEED_KINDS if self.counts[kind]]
        for kind in active:
            self.counts[kind] -= 1
            self.used[kind] += 1
        if "drop_events" in active:
            return []
        if "duplicate_events" in active:
            events = [e for event in events for e in (event, event)]
        if "reorder_events" in active:
            events = list(events)
            self.rng.shuffle(events)
        return events
