"""The long-running daemon: `checkevent` and operation retries on a `schedule` scheduler, and
the clocks a live process acts at.

Only the command line and the daemon read a clock: the wall clock (UTC), or a simulator's
(`GET /_sim/clock`) so that the engine and a served simulator keep one time. The scheduler
ticks on wall time; each job reads the clock as it starts and calls engine methods that take
`now`.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

import requests
import schedule

from reseller.client import unreachable_reason
from reseller.engine import Engine, ModuleTick
from reseller.errors import ResellerError
from reseller.model import STATUS_AFTER, STATUS_NAMES, StoredEvent
from reseller.store import stamp

Clock = Callable[[], datetime]
CLOCK_PATH = "/_sim/clock"
CLOCK_FORMAT = "%Y-%m-%d %H:%M:%S"
POLL_EVERY = 300.0  # seconds: the seller's feed is polled every 5 minutes
RETRY_EVERY = 60.0


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ClockError(ResellerError):
    """The simulator's clock could not be read: unreachable, refused the token, or garbage."""


def clock_base(url: str) -> str:
    """A simulator's base URL from what a user gives: `/billmgr` or `/_sim/clock` don't count."""
    base = url.strip().rstrip("/")
    return base.removesuffix(CLOCK_PATH).removesuffix("/billmgr").rstrip("/")


class SimulatorClock:
    """A served simulator's clock: `now` as `GET URL/_sim/clock` gives it, read at each call."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 5.0,
    ):
        self.url = clock_base(url) + CLOCK_PATH
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.session = session or requests.Session()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SimulatorClock({self.url!r})"  # never the token

    def __call__(self) -> datetime:
        """The simulator's `now`; `ClockError` when it cannot be read."""
        try:
            reply = self.session.get(self.url, headers=self.headers, timeout=self.timeout)
        except requests.Timeout:
            raise ClockError(
                "unavailable", f"no reply from the clock at {self.url} within {self.timeout:g}s"
            ) from None
        except requests.RequestException as error:
            raise ClockError(
                "unavailable", f"cannot reach the clock at {self.url}: {unreachable_reason(error)}"
            ) from None
        if reply.status_code in (401, 403):
            raise ClockError(
                "auth",
                f"the clock at {self.url} answered HTTP {reply.status_code}: "
                "give the simulator's token (--token or $SIMULATOR_TOKEN)",
            )
        if reply.status_code != 200:
            raise ClockError(
                "unavailable", f"the clock at {self.url} answered HTTP {reply.status_code}"
            )
        try:
            return datetime.strptime(reply.json()["now"], CLOCK_FORMAT)
        except (ValueError, KeyError, TypeError):
            raise ClockError(
                "unavailable",
                f"{self.url} is not a simulator's clock: expected "
                '{"now": "YYYY-MM-DD HH:MM:SS"}, got ' + repr(reply.text[:80]),
            ) from None


def every(seconds: float) -> str:
    """An interval as people write it: `5m`, `1m`, `30s`, `0.5s`."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def scheduler_for(
    engine: Engine,
    report: Callable[[str], None],
    clock: Clock = utc_now,
    poll_every: float = POLL_EVERY,
    retry_every: float = RETRY_EVERY,
) -> schedule.Scheduler:
    """A scheduler that polls every module every `poll_every` wall seconds and retries
    operations every `retry_every`; every action it takes is reported on one line, with the
    time it acted at. A clock or seller that cannot be reached is reported the same way, and
    the next tick tries again."""
    jobs = schedule.Scheduler()

    def poll(now: datetime) -> None:
        tick = engine.cron(now)
        for module, outcome in tick.modules.items():
            for line in module_lines(engine, outcome, every(poll_every)):
                report(f"{stamp(now)} checkevent {module}: {line}")
        say(now, tick.retried, tick.prolonged)

    def retry(now: datetime) -> None:
        say(now, engine.operations.retry(now), engine.operations.autoprolong(now))

    def say(now: datetime, retried: list[int], prolonged: list[int]) -> None:
        for operation_id in retried:
            report(f"{stamp(now)} retried {described(engine, operation_id)}")
        for item_id in prolonged:
            operation = engine.store.latest_operation(item_id)
            report(
                f"{stamp(now)} service {item_id}: autoprolong registered a prolongation "
                f"(operation {operation.id}: {operation.state})"
            )

    def guarded(name: str, job: Callable[[datetime], None], interval: float):
        def run() -> None:
            again = f"next try in {every(interval)}"
            try:
                now = clock()
            except ClockError as error:
                report(f"{stamp(utc_now())} (wall) {name} skipped: {error.message}; {again}")
                return
            try:
                job(now)
            except ResellerError as error:
                report(f"{stamp(now)} {name}: {error.type}: {error.message}; {again}")
            except Exception as error:  # a bug: say so, keep the trace, and keep the daemon up
                report(f"{stamp(now)} {name} failed ({type(error).__name__}: {error}); {again}")
                traceback.print_exc(file=sys.stderr)

        return run

    jobs.every(poll_every).seconds.do(guarded("checkevent", poll, poll_every))
    jobs.every(retry_every).seconds.do(guarded("retry", retry, retry_every))
    return jobs


def module_lines(engine: Engine, tick: ModuleTick, next_try: str) -> list[str]:
    """What one cron tick did for a module, in the order it did it: the poll (each event it
    applied, each operation it completed), then the daily reconcile; or why it could not."""
    if tick.error:
        return [f"seller unreachable ({tick.error}); next try in {next_try}"]
    lines = []
    if tick.events:
        lines.append(tick.events.summary())
        lines += [event_line(item_id, event) for item_id, event in tick.events.applied_to]
        lines += [described(engine, operation) for operation in tick.events.completed]
    if tick.reconciled is not None:
        lines.append(f"daily reconcile: {len(tick.reconciled)} repairs")
        lines += [f"  {change}" for change in tick.reconciled]
    return lines


def event_line(item_id: int, event: StoredEvent) -> str:
    """`service 2: suspend (seller event 7): suspended`: an applied event and what it said."""
    if event.type in STATUS_AFTER:
        said = STATUS_NAMES[STATUS_AFTER[event.type]]
    elif event.type == "expire":
        said = f"expires {event.expiredate}"
    elif event.type in ("addon", "param"):
        said = f"{event.name}={event.value}"
    else:
        said = event.value
    return f"service {item_id}: {event.type} (seller event {event.event_id}): {said}"


def described(engine: Engine, operation_id: int) -> str:
    """`operation 2 (prolong of service 1): manual`, with its error if it has one."""
    operation = engine.store.operation(operation_id)
    line = f"operation {operation_id} ({operation.kind} of service {operation.item})"
    line += f": {operation.state}"
    if operation.error_msg:
        line += f", {operation.error_type}: {operation.error_msg}"
    return line


def run_daemon(
    engine: Engine,
    report: Callable[[str], None],
    stop: threading.Event,
    clock: Clock = utc_now,
    poll_every: float = POLL_EVERY,
    retry_every: float = RETRY_EVERY,
    clock_name: str = "the wall clock (UTC)",
) -> None:
    """Run the jobs until `stop` is set (SIGTERM or Ctrl-C in the command line)."""
    jobs = scheduler_for(engine, report, clock, poll_every, retry_every)
    # these two lines are at wall time: marked so when the jobs act at another clock's
    wall = "" if clock is utc_now else " (wall)"
    report(
        f"{stamp(utc_now())}{wall} daemon started: checkevent every {every(poll_every)}, "
        f"retries every {every(retry_every)} (wall time), acting at {clock_name}"
    )
    jobs.run_all()
    # wake often enough to start each job within a tenth of its interval
    tick = min(1.0, poll_every / 10, retry_every / 10)
    while not stop.wait(tick):
        jobs.run_pending()
    report(f"{stamp(utc_now())}{wall} daemon stopped")
