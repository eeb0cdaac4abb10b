"""The long-running daemon: `checkevent` and operation retries on a `schedule` scheduler.

Only the live daemon reads a clock (the wall clock, unless it is given another); its jobs call
engine methods that take `now`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import schedule

from reseller.engine import Engine
from reseller.store import stamp


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def scheduler_for(
    engine: Engine, report: Callable[[str], None], clock: Callable[[], datetime] = utc_now
) -> schedule.Scheduler:
    """A scheduler that polls every module every 5 minutes and retries operations every minute;
    every action it takes is reported on one line, with its time."""
    jobs = schedule.Scheduler()

    def poll() -> None:
        now = clock()
        tick = engine.cron(now)
        for module, outcome in tick.modules.items():
            for line in outcome.lines():
                report(f"{stamp(now)} checkevent {module}: {line}")
        say(now, tick.retried, tick.prolonged)

    def retry() -> None:
        now = clock()
        say(now, engine.operations.retry(now), engine.operations.autoprolong(now))

    def say(now: datetime, retried: list[int], prolonged: list[int]) -> None:
        for operation_id in retried:
            operation = engine.store.operation(operation_id)
            report(
                f"{stamp(now)} operation {operation_id} ({operation.kind} of service "
                f"{operation.item}): {operation.state}"
                + (
                    f", {operation.error_type}: {operation.error_msg}"
                    if operation.error_msg
                    else ""
                )
            )
        for item_id in prolonged:
            report(f"{stamp(now)} service {item_id}: autoprolong registered a prolongation")

    jobs.every(5).minutes.do(poll)
    jobs.every(1).minutes.do(retry)
    return jobs


def run_daemon(
    engine: Engine,
    report: Callable[[str], None],
    stop: threading.Event,
    tick_seconds: float = 1.0,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Run the jobs until `stop` is set (Ctrl-C or SIGTERM in the command line)."""
    jobs = scheduler_for(engine, report, clock)
    report(f"{stamp(clock())} daemon started: checkevent every 5 minutes, retries every minute")
    jobs.run_all()
    while not stop.wait(tick_seconds):
        jobs.run_pending()
    report(f"{stamp(clock())} daemon stopped")
