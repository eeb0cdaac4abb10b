"""An engine in an OS process of its own, for `tests/test_processes.py`: `python -c` runs `main`.

Every role opens the database file it is given, builds a real engine (its seller client over
a real socket, the CLI's 10-second timeout) and prints `ready` once its imports are done. A role
that races another then waits for a line on stdin, so two processes started together act
within a millisecond of each other; each prints what it did as one JSON line at the end. Times
are the engine's fixed clock, passed in as the CLI's `--now` would be.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import requests

from reseller.client import SellerClient
from reseller.engine import Engine
from reseller.errors import ResellerError
from reseller.model import ACTIVE, FAILED, SUSPENDED
from reseller.store import Store

# A process left behind by a failed test ends on its own.
LONGEST_RUN = 60.0
# Between two passes of the retry job: still hundreds a second, but the process racing it
# gets the CPU it needs on a busy machine.
PASS_PAUSE = 0.002


def engine_on(db: str) -> Engine:
    session = requests.Session()
    session.trust_env = False
    return Engine(
        Store(db), lambda url, login, password: SellerClient(url, login, password, session)
    )


def say(**fields) -> None:
    print(json.dumps(fields), flush=True)


def wait_for_start() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def retry_job(engine: Engine, now: datetime, stop_file: str, progress: str) -> None:
    """The daemon's retry job at one time, pass after pass from the start line until
    `stop_file` appears, writing how many passes it has made to `progress` after each."""
    wait_for_start()
    ran: set[int] = set()
    passes, first, deadline = 0, time.time(), time.monotonic() + LONGEST_RUN
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        ran.update(engine.run_due(now))
        passes += 1
        Path(progress).write_text(str(passes))
        time.sleep(PASS_PAUSE)
    say(passes=passes, first=first, last=time.time(), ran=sorted(ran))


def order(engine: Engine, now: datetime) -> None:
    """`engine.order`, released by the start line."""
    wait_for_start()
    item = engine.order("alice", "5-vds-1", 1, now, ostempl="debian-12")
    say(item=item, state=engine.store.latest_operation(item).state)


def checkevent(engine: Engine, now: datetime, module: str) -> None:
    """One `checkevent` of `module`, released by the start line."""
    wait_for_start()
    report = engine.checkevent(module, now)
    say(busy=report.busy, fetched=report.fetched, applied=report.applied, summary=report.summary())


def change(engine: Engine, now: datetime, kind: str, item: int) -> None:
    """One change of a service (`set_addons` of more RAM, or `prolong`), released by the start
    line."""
    wait_for_start()
    if kind == "set_addons":
        operation = engine.set_addons(item, {"ram": 2048}, now)
    else:
        operation = engine.prolong(item, 1, now)
    say(operation=operation, state=engine.store.operation(operation).state)


class Work:
    """A seeded plan of everything an engine does, step after step until the process is killed."""

    def __init__(self, engine: Engine, now: datetime, seed: int):
        self.engine, self.now, self.rng = engine, now, random.Random(seed)
        self.store = engine.store

    def items(self, *statuses: int, itemtype: str | None = None) -> list[int]:
        return [
            i.id
            for i in self.store.items()
            if i.remote_id is not None
            and (not statuses or i.status in statuses)
            and (itemtype is None or i.itemtype == itemtype)
        ]

    def pick(self, ids: list[int]) -> int:
        if not ids:
            raise ResellerError("value", "no service to act on yet")
        return self.rng.choice(ids)

    def order(self) -> str:
        tariff = self.rng.choice([t.intname for t in self.store.tariffs()])
        plan = self.engine.tariff(tariff)
        options = {"autoprolong": self.rng.random() < 0.3}
        if plan.itemtype == "vds":
            options["ostempl"] = plan.ostempl[0]
            options["addons"] = self.addons(plan)
        if plan.itemtype == "vhost":
            options["domain_name"] = f"site{self.rng.randrange(10**6)}.example"
        client = self.rng.choice(["alice", "alice", "alice", "bob"])
        period = self.rng.choice(sorted(p for p in plan.prices if p > 0))
        return f"service {self.engine.order(client, tariff, period, self.now, **options)}"

    def addons(self, plan) -> dict:
        chosen = {}
        for name, spec in plan.addons.items():
            if not spec.enabled or self.rng.random() < 0.5:
                continue
            if spec.type == "integer":
                chosen[name] = self.rng.choice(
                    [spec.included, spec.included * 2, spec.included * 3]
                )
            elif spec.type == "boolean":
                chosen[name] = self.rng.choice(["on", "off"])
            else:
                chosen[name] = self.rng.choice(sorted(spec.items or {}))
        return chosen

    def prolong(self) -> str:
        item = self.store.item(self.pick(self.items(ACTIVE, SUSPENDED)))
        period = self.rng.choice(
            [p for p in self.store.tariff_by_id(item.pricelist).prices if p > 0]
        )
        return f"operation {self.engine.prolong(item.id, period, self.now)}"

    def set_addons(self) -> str:
        item = self.store.item(self.pick(self.items(ACTIVE, SUSPENDED, itemtype="vds")))
        plan = self.store.tariff_by_id(item.pricelist)
        addons = self.addons(plan) or {
            "backup": "on" if item.addons.get("backup") != "on" else "off"
        }
        return f"operation {self.engine.set_addons(item.id, addons, self.now)}"

    def status(self, kind: str, status: int) -> str:
        return (
            f"operation {self.engine.change_status(self.pick(self.items(status)), kind, self.now)}"
        )

    def restart(self) -> str:
        failed = {op.item for op in self.store.operations() if op.state == FAILED}
        return f"operation {self.engine.restart(self.pick(sorted(failed)), self.now)}"

    def checkevent(self) -> str:
        return self.engine.checkevent("seller", self.now).summary()

    def actions(self) -> dict:
        """The plan's actions by name, with their weights."""
        return {
            "order": (4, self.order),
            "checkevent": (3, self.checkevent),
            "run_due": (2, lambda: f"ran {self.engine.run_due(self.now)}"),
            "prolong": (2, self.prolong),
            "set_addons": (2, self.set_addons),
            "suspend": (1, lambda: self.status("suspend", ACTIVE)),
            "resume": (1, lambda: self.status("resume", SUSPENDED)),
            "close": (1, lambda: self.status("close", self.rng.choice([ACTIVE, SUSPENDED]))),
            "restart": (1, self.restart),
            "cron": (1, lambda: f"cron retried {self.engine.cron(self.now).retried}"),
        }

    def next_action(self) -> tuple[str, Callable[[], str]]:
        actions = self.actions()
        name = self.rng.choices(list(actions), [weight for weight, _ in actions.values()])[0]
        return name, actions[name][1]


def work(engine: Engine, now: datetime, seed: int) -> None:
    """The plan of `seed`, each step said before it runs: the last line is where it died."""
    plan = Work(engine, now, seed)
    print("ready", flush=True)
    deadline = time.monotonic() + LONGEST_RUN
    step = 0
    while time.monotonic() < deadline:
        step += 1
        name, action = plan.next_action()
        print(f"step {step}: {name}", flush=True)
        try:
            print(f"  {action()}", flush=True)
        except ResellerError as error:  # refused here or by the seller, or no seller reply
            print(f"  {error.type}: {error.message}", flush=True)


def main(argv: list[str]) -> int:
    role, db, now = argv[0], argv[1], datetime.fromisoformat(argv[2])
    engine = engine_on(db)
    if role == "retry_job":
        retry_job(engine, now, argv[3], argv[4])
    elif role == "order":
        order(engine, now)
    elif role == "checkevent":
        checkevent(engine, now, argv[3])
    elif role == "change":
        change(engine, now, argv[3], int(argv[4]))
    elif role == "work":
        work(engine, now, int(argv[3]))
    else:
        raise SystemExit(f"unknown role {role!r}")
    return 0
