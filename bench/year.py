"""Figure 4: a simulated year of reselling, in simulated seconds per wall second, at three sizes.

N services ordered with autoprolong on the first day; then a year on the harness's one clock:
the cron's `checkevent` every 5 minutes, its daily reconcile, each service prolonged monthly by
autoprolong, and a seller-side change per service per week (alternately a parameter and an
add-on), made through the control API as a scenario's `seller.` steps are. The floor is real
time. The rates at 100, 1,000 and 10,000 services are the scaling curve; each size has a wall
budget, and a run that spends it stops there and names the span it reached.

Beside them, per simulated change (a seller change, its event, applied): the year's wall time
over its changes, against sqlite-utils writing each change's rows (the stored event, its
applied mark, the service's new value) one by one into a file of the same kind.

Figure 8: ten idle years of one lifetime service, in simulated seconds per wall second.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from collections import deque
from datetime import timedelta
from pathlib import Path

import sqlite_utils

from bench.common import START, Figure, world
from reseller.store import SCHEMA, day, stamp
from scenarios.harness import Harness

TARGETS = {100: 500_000, 1000: 2_000_000, 10_000: 500_000}
BUDGETS = {100: 30.0, 1000: 60.0, 10_000: 120.0}  # wall seconds; the full bench ends in 10 min
PER_CHANGE_LIMIT = 5.0
IDLE_TARGET = 50_000_000
RESELLER = {
    "currency": "EUR",
    "clients": {"alice": {"balance": 10**9}},
    "modules": {"seller": {"account": "reseller", "password": "s3cret"}},
}


def simulate(services: int, days: int, budget: float | None = None) -> tuple[float, dict]:
    """Wall seconds the simulated span took (the orders before it not counted), and counts;
    with `budget`, the span ends at the first simulated hour after that many wall seconds."""
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
            if budget is not None and time.perf_counter() - began > budget:
                break
        h.wait(timedelta(minutes=5))
        wall = time.perf_counter() - began
        operations = h.store.operations()
        counts = {
            "simulated": (h.now - simulated_from).total_seconds(),
            "days": (h.now - START).total_seconds() / 86400,
            "changes": changes,
            "prolongations": sum(1 for op in operations if op.kind == "prolong"),
            "events": len(h.store.applied_events()),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
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


def change_rows_floor(changes: int, services: int) -> float:
    """Wall seconds sqlite-utils takes to write `changes` changes' rows, a simulated hour's
    changes at a time (as the engine gets them: a poll after each hour's changes)."""
    per_hour = max(1, round(services / (7 * 24)))
    with tempfile.TemporaryDirectory(prefix="bench-year-") as folder:
        db = sqlite_utils.Database(str(Path(folder) / "floor.db"))
        db.enable_wal()
        db.execute("PRAGMA synchronous=NORMAL")
        for name in ("itemevent", "itemevent_applied", "item_param"):
            columns, pk = SCHEMA[name]
            db[name].create(columns, pk=pk)
        began = time.perf_counter()
        for first in range(0, changes, per_hour):
            batch = range(first, min(first + per_hour, changes))
            items = {n: 1 + n % services for n in batch}
            with db.conn:
                db["itemevent"].insert_all(
                    {
                        "processingmodule": 1,
                        "event_id": n + 1,
                        "type": "param",
                        "remote_item": 100_000 + items[n],
                        "remoteid": str(items[n]),
                        "status": 2,
                        "expiredate": day(START),
                        "name": "hostname",
                        "value": str(n),
                        "ips": json.dumps(["203.0.113.1"]),
                        "fetched": stamp(START),
                        "unmatched": 0,
                    }
                    for n in batch
                )
                db["itemevent_applied"].insert_all(
                    {
                        "processingmodule": 1,
                        "event_id": n + 1,
                        "item": items[n],
                        "applied": stamp(START),
                    }
                    for n in batch
                )
                db["item_param"].upsert_all(
                    ({"item": items[n], "name": "hostname", "value": str(n)} for n in batch),
                    pk=("item", "name"),
                )
        took = time.perf_counter() - began
        db.close()
    return took


def idle_years(years: int) -> tuple[float, float]:
    """Wall seconds of `years` idle years of one yearly autoprolonged service, and the
    simulated seconds."""
    h = Harness(world("reseller"), RESELLER, START)
    try:
        h.engine.import_tariff("seller", 5, h.now)
        h.engine.order("alice", "5-vds-1", 12, h.now, ostempl="debian-12", autoprolong=True)
        h.wait(timedelta(minutes=5))
        began, simulated_from = time.perf_counter(), h.now
        h.wait(timedelta(days=365 * years))
        return time.perf_counter() - began, (h.now - simulated_from).total_seconds()
    finally:
        h.close()


def _span(counts: dict) -> str:
    days = counts["days"]
    return "year" if days >= 365 else f"{days:.0f} days (wall budget spent)"


def measure(quick: bool) -> list[Figure]:
    sizes, days = ((30, 100), 35) if quick else ((100, 1000, 10_000), 365)
    runs = {n: simulate(n, days, None if quick else BUDGETS[n]) for n in sizes}
    curve = ", ".join(f"{n:,} -> {c['simulated'] / w:,.0f}" for n, (w, c) in runs.items())
    figures = []
    for n, (wall, counts) in runs.items():
        speed = counts["simulated"] / wall
        target = TARGETS.get(n, 500_000)
        figures.append(
            Figure(
                number=4,
                name=f"a simulated {_span(counts) if not quick else f'{days} days'}, "
                f"{n:,} services",
                value=speed,
                floor=1.0,
                ratio=speed,
                target=f">= {target:,}x real time",
                met=speed >= target and counts["days"] >= days,
                unit="sim-s/s",
                floor_name="real time: 1 simulated second per wall second",
                note=(
                    f"{wall:.1f}s wall; {counts['prolongations']:,} prolongations, "
                    f"{counts['changes']:,} seller-side changes, {counts['events']:,} events "
                    f"applied; peak RSS of the process (simulator, engine, call log) "
                    f"{counts['peak_rss_mib']:,.0f} MiB"
                    + (f"; curve (services -> sim-s/s): {curve}" if n == max(runs) else "")
                ),
            )
        )
    largest = max(runs)
    wall, counts = runs[largest]
    floor = change_rows_floor(counts["changes"], largest) / max(counts["changes"], 1)
    per_change = wall / max(counts["changes"], 1)
    figures.append(
        Figure.within(
            4,
            f"per simulated change, {largest:,} services",
            per_change * 1e6,
            floor * 1e6,
            PER_CHANGE_LIMIT,
            unit="µs",
            floor_name="sqlite-utils insert_all of each hour's changes' rows (event, applied mark, "
            "value), one transaction an hour",
            note="the year's wall time over its seller-side changes (polls, reconciles and "
            "prolongations included)",
        )
    )
    return figures


def measure_idle(quick: bool) -> list[Figure]:
    years = 1 if quick else 10
    wall, simulated = idle_years(years)
    speed = simulated / wall
    return [
        Figure(
            number=8,
            name=f"{years} idle year{'s' if years > 1 else ''} of one service",
            value=speed,
            floor=1.0,
            ratio=speed,
            target=f">= {IDLE_TARGET:,}x real time",
            met=speed >= IDLE_TARGET,
            unit="sim-s/s",
            floor_name="real time: 1 simulated second per wall second",
            note=f"{wall:.1f}s wall",
        )
    ]
