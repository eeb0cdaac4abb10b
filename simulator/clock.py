"""The served simulator's clock, kept at the edge: manual, the wall clock's, or a sped-up one.

`Seller` never reads the wall clock: it has a `now` that only `advance_to` moves. A `Clock`
decides how far to move it. Manual, only `POST /_sim/clock` does; `real` and `speed` turn
wall time into simulated time, and a `Ticker` thread brings the seller up to it as it
passes, so set-ups and expiries happen with no request coming in, each once, in order.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from simulator.model import Seller

log = logging.getLogger(__name__)
MODES = ("manual", "real", "speed")
# How long the ticker sleeps at most: a due time that appears meanwhile is met this late at
# worst (in wall time); what it runs still happens at its own simulated time.
LONGEST_NAP = 0.5


def wall_utc() -> datetime:
    """The wall clock as a naive UTC datetime, as the seller keeps its times."""
    return datetime.now(UTC).replace(tzinfo=None)


class Clock:
    """How simulated time passes: `manual` (never by itself), `real` (wall time), or `speed`.

    `speed` simulated seconds pass per wall second (1 for `real`, 0 for `manual`).
    """

    def __init__(
        self,
        mode: str = "manual",
        speed: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        utc_now: Callable[[], datetime] = wall_utc,
    ):
        if mode not in MODES:
            raise ValueError(f"clock: expected one of {', '.join(MODES)}, got {mode!r}")
        if mode == "speed":
            if (
                isinstance(speed, bool)
                or not isinstance(speed, int | float)
                or not math.isfinite(speed)
                or speed <= 0
            ):
                raise ValueError(f"speed: expected a number above 0, got {speed!r}")
        elif speed is not None:
            raise ValueError(f"speed: only a `speed` clock takes one, not a {mode} clock")
        self.mode = mode
        if mode == "speed" and float(speed).is_integer():
            speed = int(speed)  # `60`, not `60.0`, in what the clock reports
        self.speed = {"manual": 0, "real": 1}.get(mode, speed)
        self.monotonic = monotonic
        self.utc_now = utc_now
        self._anchor: tuple[float, datetime] | None = None

    @property
    def running(self) -> bool:
        """Whether simulated time passes by itself."""
        return self.mode != "manual"

    def anchor(self, seller: Seller) -> None:
        """Let simulated time run on from `seller`'s now (from the wall's, if later, for `real`)."""
        start = seller.now
        if self.mode == "real":
            start = max(start, self.utc_now().replace(microsecond=0))
        self._anchor = (self.monotonic(), start)

    def now(self) -> datetime | None:
        """The simulated time now, to the second; None for a manual clock or before `anchor`."""
        if not self.running or self._anchor is None:
            return None
        wall, start = self._anchor
        passed = timedelta(seconds=(self.monotonic() - wall) * self.speed)
        return (start + passed).replace(microsecond=0)

    def catch_up(self, seller: Seller) -> None:
        """Bring `seller` up to the simulated time, running what falls due on the way."""
        with seller.lock:
            target = self.now()
            if target is None:
                return
            if seller.now > target:
                # Moved forward by hand (`POST /_sim/clock`): time runs on from there.
                self._anchor = (self.monotonic(), seller.now)
            else:
                seller.advance_to(target)

    def wall_seconds_until(self, when: datetime) -> float | None:
        """Wall seconds until the simulated time reaches `when`; None for a manual clock."""
        now = self.now()
        if now is None:
            return None
        return max(0.0, (when - now).total_seconds() / self.speed)

    def view(self) -> dict:
        """The clock's mode and speed, as `GET /_sim/clock` reports them."""
        return {"mode": self.mode, "speed": self.speed}


class Ticker:
    """A thread that keeps the served seller up to a running clock, requests or none."""

    def __init__(self, clock: Clock, seller: Callable[[], Seller]):
        self.clock = clock
        self.seller = seller  # called each time: a reset replaces the seller
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="simulator-clock", daemon=True)

    def start(self) -> Ticker:
        if self.clock.running:
            self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stopped.is_set():
            seller = self.seller()
            try:
                self.clock.catch_up(seller)
            except Exception:  # a bug: say so, and let requests and the next tick go on
                log.exception("the simulator's clock could not bring the seller up to time")
            with seller.lock:
                due = seller.next_due()
            nap = LONGEST_NAP if due is None else self.clock.wall_seconds_until(due)
            self.stopped.wait(min(LONGEST_NAP, nap if nap is not None else LONGEST_NAP))

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
