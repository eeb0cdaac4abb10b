"""Figure 7: peak memory (RSS) of the simulator, of the engine, and of the whole stack.

Each is measured in a fresh interpreter of its own (`python -m bench.memory SIDE SIZE`), so no
other figure's garbage counts. The floor is the same interpreter with the same imports and an
empty world, read just before it fills up. The whole stack is one process as a scenario run
is: the simulator's app with its call log, and an engine whose seller client reaches it
in-process, polling a change to every one of its services and applying it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

from bench.common import ROOT, START, Figure

LIMIT_MIB = 512


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory (`VmRSS`) or its peak so far (`VmHWM`), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def fill_simulator(services: int, events: int) -> None:
    """A seller with `services` services and `events` events queued on its accounts' feeds."""
    from bench.common import world
    from simulator.world import seller_from_world

    logins = [f"reseller{n}" for n in range(10)]
    seller = seller_from_world(world(*logins), START)
    floor = rss_mib()
    made = []
    for n in range(services):  # each order queues its `open` event
        account = seller.accounts[logins[n % len(logins)]]
        made.append(seller.order(account, "vds", 5, 1, remoteid=str(n), params={}))
    for n in range(events - services):
        seller.set_param(made[n % services].id, "hostname", f"web{n}")
    seller.advance_to(START + timedelta(minutes=5))
    queued = sum(len(feed) for feed in seller.feeds.values())
    assert len(seller.services) == services and queued == events, (len(seller.services), queued)
    _report(floor)


def fill_engine(items: int) -> None:
    """An engine (in memory, as scenarios run it) with `items` services, then a cron's work."""
    from bench.events import engine_with_services, feed

    engine = engine_with_services(None, [], 0)
    floor = rss_mib()
    engine = engine_with_services(None, feed(10_000), items)
    report = engine.checkevent("seller", START + timedelta(minutes=5))
    engine.run_due(START + timedelta(minutes=5))
    assert report.applied == 10_000 and len(engine.store.items()) == items
    _report(floor)


def fill_stack(services: int) -> None:
    """Simulator and engine in one process, `services` linked on both, then a poll of a change
    to each through the API (the reply parsed by the engine's client, the call logged)."""
    from bench.common import world
    from reseller.client import SellerClient
    from reseller.engine import Engine
    from reseller.model import ACTIVE, AddonSpec
    from reseller.store import Store, day, stamp
    from simulator.app import create_app
    from simulator.transport import in_process_client
    from simulator.world import seller_from_world

    seller = seller_from_world(world("reseller"), START)
    app = create_app(seller)
    store = Store(None)
    store.set_setting("currency", "EUR")
    floor = rss_mib()
    account = seller.accounts["reseller"]
    module = store.add_module("seller", "http://simulator", "reseller", "s3cret", [], START).id
    with store.atomic():
        tariff = store.add_tariff("5-vds-1", "VDS-1", "vds", module, 5, "EUR")
        store.set_prices(tariff, {1: Decimal(10)})
        store.add_addon(tariff, AddonSpec("ram", "integer", 11, True, 1024, 8192, Decimal("0.002")))
        client = store.add_client("alice", Decimal(1000))
        for _ in range(services):
            remote = seller.order(account, "vds", 5, 1, remoteid="", params={})
            item = store.add_item(
                account=client,
                pricelist=tariff,
                itemtype="vds",
                processingmodule=module,
                remote_module=module,
                remote_id=remote.id,
                period=1,
                status=ACTIVE,
                expiredate=day(remote.expires),
                autoprolong=False,
                createdate=stamp(START),
            )
            seller.set_remoteid(remote, str(item))
            store.set_item_addon(item, "ram", "1024")
            store.add_ip(item, remote.ips[0])
    seller.read_events(account)  # the orders' `open` events: the engine made them active already
    http = in_process_client(app)
    engine = Engine(store, lambda url, login, password: SellerClient(url, login, password, http))
    for remote in list(seller.services.values()):
        seller.set_param(remote.id, "hostname", f"web{remote.id}")
    now = START + timedelta(minutes=5)
    seller.advance_to(now)
    report = engine.checkevent("seller", now)
    engine.run_due(now)
    assert report.applied == services, (report.applied, services)
    assert len(seller.calls) > 0
    _report(floor)


def _report(floor: float) -> None:
    print(json.dumps({"peak": rss_mib("VmHWM"), "floor": floor}))


def _measure(side: str, *sizes: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", side, *map(str, sizes)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.memory {side} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(quick: bool) -> list[Figure]:
    services, events, items = (10_000, 100_000, 10_000) if quick else (100_000, 1_000_000, 100_000)
    figures = []
    for side, sizes, name in (
        ("simulator", (services, events), f"simulator, {services:,} services, {events:,} events"),
        ("engine", (items,), f"engine, {items:,} items, after a checkevent"),
        ("stack", (items,), f"whole stack in one process, {items:,} services, a poll of each"),
    ):
        got = _measure(side, *sizes)
        figures.append(
            Figure(
                number=7,
                name=name,
                value=got["peak"],
                floor=got["floor"],
                ratio=got["peak"] / got["floor"],
                target=f"<= {LIMIT_MIB:,} MiB",
                met=got["peak"] <= LIMIT_MIB,
                unit="MiB",
                floor_name="the same interpreter and imports with an empty world",
            )
        )
    return figures


if __name__ == "__main__":
    side, *sizes = sys.argv[1:]
    {"simulator": fill_simulator, "engine": fill_engine, "stack": fill_stack}[side](
        *map(int, sizes)
    )
