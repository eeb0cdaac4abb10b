"""The long-running daemon: `checkevent` and operation retries on a `schedule` scheduler.

Only the live daemon reads the wall clock; its jobs call engine methods that take `now`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import schedule

from reseller.engine import Engine


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def scheduler_for(
    engine: Engine, report: Callable[[str], None], clock: Callable[[], datetime] = utc_now
) -> schedule.Scheduler:
    """A scheduler that polls every module every 5 minutes and retries operations every minute."""
    jobs = schedule.Scheduler()

    def poll() -> None:
        for module, outcome in engine.cron(clock()).items():
            if isinstance(outcome, str):
                report(f"checkevent {module}: seller unreachable ({outcome}); next try in 5m")
            else:
                report(
                    f"checkevent {module}: {outcome.fetched} fetched, {outcome.applied} "
                    f"applied, {len(outcome.unmatched)} kept unmatched"
                )

    def retry() -> None:
        ran = engine.run_due(clock())
        if ran:
            report(f"retried operations {ran}")

    jobs.every(5).minutes.do(poll)
    jobs.every(1).minutes.do(retry)
    return jobs


def run_daemon(
    engine: Engine, report: Callable[[str], None], stop: threading.Event, tick_seconds: float = 1.0
) -> None:
    """Run the jobs until `stop` is set (Ctrl-C in the command line)."""
    jobs = scheduler_for(engine, report)
    report("daemon started: checkevent every 5 minutes, retries every minute")
    jobs.run_all()
    while not stop.wait(tick_seconds):
        jobs.run_pending()
