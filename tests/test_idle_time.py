"""Idle time is free: a `wait` jumps over cron ticks at which nothing can happen on either
side, and ends exactly where a tick-by-tick run ends."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from scenarios.harness import Harness, _ceil_to_cron
from tests.end_to_end import RESELLER, SELLER_WORLD, START, world

DAY = timedelta(days=1)


def story(skip_idle: bool, http: bool = False) -> Harness:
    """Seven weeks of services that set up late, by hand, expire unpaid or are prolonged."""
    h = Harness(SELLER_WORLD, RESELLER, START, skip_idle=skip_idle, http=http)
    h.engine.import_tariff("seller", 5, h.now)
    h.engine.import_tariff("seller", 7, h.now)
    h.engine.import_tariff("seller", 8, h.now)
    kept = h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12", autoprolong=True)
    h.engine.order("alice", "8-web-1", 1, h.now)  # set up after 10 minutes, expires unpaid
    by_hand = h.engine.order("bob", "7-vds-m", 1, h.now, ostempl="debian-12")
    h.wait(timedelta(days=12))
    # ordered mid-story, between two waits: its set-up 10 minutes later must not be skipped
    h.engine.order("bob", "8-web-1", 1, h.now)
    h.wait(timedelta(hours=2))
    h.side.act("activate", {"service": h.store.item(by_hand).remote_id})
    h.wait(timedelta(days=22))
    h.engine.change_status(kept, "suspend", h.now)
    h.wait(timedelta(days=3, hours=7, minutes=3))
    h.side.fault("drop_events", 1)
    h.side.act("resume", {"service": h.store.item(kept).remote_id})
    h.wait(timedelta(days=12))
    return h


def outcome(h: Harness) -> tuple:
    seller = h.seller
    return (
        h.now,
        h.store.digest(),
        [(e.event_id, e.applied) for e in h.store.applied_events()],
        sorted(
            (s.id, s.status, s.expires, s.remoteid, tuple(s.ips)) for s in seller.services.values()
        ),
        [(e.account, e.amount, e.reason, e.date) for e in seller.ledger],
        {login: a.balance for login, a in seller.accounts.items()},
    )


def test_weeks_with_idle_stretches_skipped_end_as_they_end_tick_by_tick():
    fast, slow = story(skip_idle=True), story(skip_idle=False)
    try:
        assert outcome(fast) == outcome(slow)
        assert fast.idle_polls_skipped > 10_000  # most of seven weeks' 14,000 polls
        assert slow.idle_polls_skipped == 0
    finally:
        fast.close()
        slow.close()


def test_an_autoprolong_its_client_cannot_pay_waits_for_a_top_up_not_for_every_tick():
    seller, reseller = world(client_balances={"bob": 11})  # one month of VDS-1, no more

    def run(skip_idle: bool) -> Harness:
        h = Harness(seller, reseller, START, skip_idle=skip_idle)
        h.engine.import_tariff("seller", 5, h.now)
        h.engine.order("bob", "5-vds-1", 1, h.now, ostempl="debian-12", autoprolong=True)
        h.wait(timedelta(days=40))  # expires unpaid after a month, then stays suspended
        return h

    fast, slow = run(skip_idle=True), run(skip_idle=False)
    try:
        assert outcome(fast) == outcome(slow)
        assert fast.idle_polls_skipped > 10_000  # the ten days after its expiry too
    finally:
        fast.close()
        slow.close()


def test_the_daily_reconcile_still_runs_at_the_first_tick_of_each_day():
    h = Harness(SELLER_WORLD, RESELLER, START)
    try:
        h.engine.import_tariff("seller", 5, h.now)
        item = h.engine.order("alice", "5-vds-1", 12, h.now, ostempl="debian-12")
        h.wait(timedelta(minutes=5))
        h.side.fault("drop_events", 1)
        h.side.act("suspend", {"service": h.store.item(item).remote_id})
        h.wait(timedelta(hours=23, minutes=54))  # up to 23:59: the event was dropped
        assert h.store.item(item).status_name == "active"
        h.wait(timedelta(minutes=2))  # 00:01: the 00:00 tick reconciled
        assert h.store.item(item).status_name == "suspended"
        assert h.idle_polls_skipped > 250
    finally:
        h.close()


def test_the_call_log_between_the_two_sides_says_how_many_idle_polls_were_skipped():
    h = Harness(SELLER_WORLD, RESELLER, START)
    try:
        h.engine.import_tariff("seller", 5, h.now)
        h.wait(timedelta(hours=3))
        assert any("idle polls skipped" in line for line in h.recent_calls(20))
    finally:
        h.close()


@pytest.mark.parametrize(
    "http, years", [(False, 10), (True, 1)], ids=["in-process", "over a socket"]
)
def test_idle_years_of_one_service_take_seconds(http, years):
    h = Harness(SELLER_WORLD, RESELLER, START, http=http)
    try:
        h.engine.import_tariff("seller", 8, h.now)
        h.engine.order("alice", "8-web-1", 0, h.now)  # a lifetime service: nothing ever due
        started = time.perf_counter()
        h.wait(timedelta(days=365 * years))
        assert time.perf_counter() - started < 60  # a bound for a broken jump, not a benchmark
        assert h.idle_polls_skipped > 100_000 * years
    finally:
        h.close()


def test_the_tick_a_wait_ends_on_runs_without_asking_whether_it_is_idle():
    h = Harness(SELLER_WORLD, RESELLER, START)
    try:
        h.engine.import_tariff("seller", 5, h.now)
        h.wait(timedelta(hours=1))  # the day's reconcile done: the ticks after it are idle
        asked = []
        quiet = h._seller_quiet
        h._seller_quiet = lambda logins: asked.append(h.now) or quiet(logins)
        h.wait(timedelta(hours=1))
        # once, for the ticks skipped; the one at the wait's end runs, idle or not
        assert asked == [START + timedelta(hours=1)]
        assert h.notes[-1] == (
            START + timedelta(hours=1, minutes=5),
            "11 idle polls skipped until 2026-01-01 02:00",
        )
        assert h.last_cron == START + timedelta(hours=2)
    finally:
        h.close()


@pytest.mark.parametrize(
    "moment, tick, next_tick",
    [
        ("10:00:00", "10:00:00", "10:05:00"),
        ("10:00:00.5", "10:05:00", "10:05:00"),
        ("10:03:59", "10:05:00", "10:05:00"),
        ("10:04:00", "10:05:00", "10:05:00"),
        ("23:57:30", "00:00:00", "00:00:00"),
        ("23:55:00", "23:55:00", "00:00:00"),
    ],
)
def test_a_moments_tick_is_the_first_five_minute_one_at_or_after_it_and_the_next_after_it(
    moment, tick, next_tick
):
    h = Harness(SELLER_WORLD, RESELLER, START)
    try:
        at = datetime.fromisoformat(f"2026-01-01 {moment}")
        h.last_cron = at
        assert f"{_ceil_to_cron(at):%H:%M:%S}" == tick
        assert f"{h._next_cron():%H:%M:%S}" == next_tick
    finally:
        h.close()
