"""Figure 4: a simulated year of reselling, in simulated seconds per wall second.

1,000 services ordered with autoprolong on the first day; then a year on the harness's one
clock: the cron's `checkevent` every 5 minutes, each service prolonged monthly by autoprolong,
and a seller-side change per service per week (alternately a parameter and an add-on), made
through the control API as a scenario's `seller.` steps are. The floor is real time.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import timedelta

from bench.common import START, Figure, world
from scenarios.harness import Harness

TARGET = 500_000
RESELLER = {
    "currency": "EUR",
    "clients": {"alice": {"balance": 10**9}},
    "modules": {"seller": {"account": "reseller", "password": "s3cret"}},
}


def simulate(services: int, days: int) -> tuple[float, dict]:
    """Wall seconds the simulated span took (the orders before it not counted), and counts."""
    h = Harness(world("reseller"), RESELLER, START)
    try:
        h.engine.import_tariff("seller", 5, h.now)
        items = [
            h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12", autoprolong=True)
            for _ in range(services)
        ]
        h.wait(timedelta(minutes=5))
        remotes = [h.store.item(item).remote_id for item in items]
        # Each service's weekly change has its own moment in the week; the harness makes the
        # changes of each simulated hour at its end, as a scenario's steps after a `wait`.
        slot = timedelta(weeks=1) / services
        moments = (START + slot * n for n in range(int(timedelta(days=days) / slot)))
        schedule = deque((m, remotes[n % services]) for n, m in enumerate(moments))
        began, simulated_from = time.perf_counter(), h.now
        changes = 0
        for hour in range(1, days * 24 + 1):
            h.advance(START + timedelta(hours=hour))
            while schedule and schedule[0][0] < h.now:
                _seller_change(h, schedule.popleft()[1], changes)
                changes += 1
        h.wait(timedelta(minutes=5))
        wall = time.perf_counter() - began
        counts = {
            "simulated": (h.now - simulated_from).total_seconds(),
            "changes": changes,
            "prolongations": sum(
                1 for item in items for op in h.store.operations(item) if op.kind == "prolong"
            ),
            "events": len(h.store.applied_events()),
        }
        return wall, counts
    finally:
        h.close()


def _seller_change(h: Harness, remote: int, n: int) -> None:
    if n % 2:
        body = {"service": remote, "addon": "ram", "value": 1024 * (1 + n % 4)}
        h.side.act("set_addon", body)
    else:
        h.side.act("set_param", {"service": remote, "name": "hostname", "value": n})


def measure(quick: bool) -> list[Figure]:
    services, days = (100, 35) if quick else (1000, 365)  # quick: one month's prolongations
    wall, counts = simulate(services, days)
    speed = counts["simulated"] / wall
    return [
        Figure(
            number=4,
            name=f"a simulated {'year' if days == 365 else f'{days} days'}, {services:,} services",
            value=speed,
            floor=1.0,
            ratio=speed,
            target=f">= {TARGET:,}x real time",
            met=speed >= TARGET,
            unit="sim-s/s",
            floor_name="real time: 1 simulated second per wall second",
            note=(
                f"{wall:.1f}s wall; {counts['prolongations']:,} prolongations, "
                f"{counts['changes']:,} seller-side changes, {counts['events']:,} events applied"
            ),
        )
    ]
