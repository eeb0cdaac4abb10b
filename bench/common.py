"""What every figure shares: its result row, paired timing, a served app and a small world.

A figure is always measured beside its floor in the same run, back to back, because these
machines are shared and drift (see `shared/reference/perf-floors.md`): only the ratio means much.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 1, 1)
SERVER_LIFETIME = 900.0  # a served app stops by itself after this many seconds, whatever happens

# The seller world the figures share: one VDS tariff with one add-on of each type.
TARIFF = {
    "intname": "vds-1",
    "name": "VDS-1",
    "type": "vds",
    "prices": {1: 10, 3: 27, 12: 100},
    "addons": {
        "ram": {"id": 11, "type": "integer", "included": 1024, "max": 8192, "unit_price": 0.002},
        "backup": {"id": 12, "type": "boolean", "price": 2},
        "panel": {"id": 13, "type": "enumeration", "items": {"none": 0, "ispmanager": 5}},
    },
    "ostempl": ["debian-12", "centos-7"],
    "recipes": ["lamp"],
}


def world(*logins: str, balance: int = 10**9) -> dict:
    """A `seller` section with tariff 5 and a rich client account per login."""
    return {
        "currency": "EUR",
        "accounts": {login: {"password": "s3cret", "balance": balance} for login in logins},
        "tariffs": {5: TARIFF},
    }


@dataclass
class Figure:
    """One row of the table and of bench.json.

    `ratio` is the figure over its floor, except where `target` says "faster" or "x real time",
    where it is how many times better the figure is; `met` compares it (or the value) with the
    target.
    """

    number: int
    name: str
    value: float
    floor: float
    ratio: float
    target: str
    met: bool
    unit: str
    floor_name: str
    note: str = ""

    @classmethod
    def within(
        cls,
        number: int,
        name: str,
        value: float,
        floor: float,
        limit: float,
        unit: str,
        floor_name: str,
        note: str = "",
    ) -> Figure:
        """A figure whose target is at most `limit` times its floor (value and floor in `unit`)."""
        ratio = value / floor
        return cls(
            number=number,
            name=name,
            value=value,
            floor=floor,
            ratio=ratio,
            target=f"<= {limit:g}x",
            met=ratio <= limit,
            unit=unit,
            floor_name=floor_name,
            note=note,
        )

    def as_json(self) -> dict:
        return asdict(self)


def paired(
    figure: Callable[[], float], floor: Callable[[], float], repetitions: int
) -> tuple[float, float]:
    """Medians of `figure()` and `floor()` run alternately, so drift touches both alike."""
    values, floors = [], []
    for _ in range(repetitions):
        floors.append(floor())
        values.append(figure())
    return statistics.median(values), statistics.median(floors)


def per_call(call: Callable[[], object], seconds: float) -> float:
    """Seconds per `call()`, over a loop of about `seconds` (at least 20 calls)."""
    calls, started = 0, time.perf_counter()
    while calls < 20 or time.perf_counter() - started < seconds:
        call()
        calls += 1
    return (time.perf_counter() - started) / calls


# -- serving an app on a local port, in a process of its own --------------------------------


def _serve(make_app: Callable, ports, threads: int) -> None:
    import logging

    import waitress

    # "Task queue depth is 2" is what a load test is for, not news.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    # However the parent ends, this server stops by itself.
    threading.Timer(SERVER_LIFETIME, os._exit, args=(0,)).start()
    server = waitress.create_server(make_app(), host="127.0.0.1", port=0, threads=threads)
    ports.put(server.effective_port)
    server.run()


@contextmanager
def served(make_app: Callable, threads: int = 8):
    """`make_app()` served by waitress on 127.0.0.1 in a forked process; yields its base URL.

    A separate process gives the server its own core and its own GIL, as a real seller has.
    """
    context = multiprocessing.get_context("fork")
    ports = context.Queue()
    process = context.Process(target=_serve, args=(make_app, ports, threads), daemon=True)
    process.start()
    try:
        port = ports.get(timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.join(10)
