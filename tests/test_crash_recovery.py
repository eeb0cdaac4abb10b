"""The engine killed at its worst moments and started again on the same SQLite file.

In-process, the crash hook raises an exception nothing in the engine catches, and a new
Engine and Store open the file, as after a restart. Over a socket, a separate process runs
the engine and really dies (`os._exit`) at the point; this process then carries on with the
file it left. Either way it resumes: no order placed twice, no service lost, no event lost
or applied twice, and a sync either happened whole or not at all.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from reseller.store import Store
from scenarios import invariants
from scenarios.harness import Harness
from tests.end_to_end import PASSWORD, Crash, assert_invariants, crash_at, harness, restart_engine

ROOT = Path(__file__).resolve().parents[1]
WAIT = timedelta(minutes=10)


def settled(h: Harness) -> None:
    for name in ("converged", "operations_settle"):
        problems = invariants.CHECKS[name](h)
        assert not problems, f"{name}: {problems}"
    assert_invariants(h)


def outcome(h: Harness) -> dict:
    """What a run ended with on both sides, to compare a crashed run with a clean one."""
    return {
        "services": [
            (i.status, i.expiredate, sorted(i.addons.items()), len(i.ips)) for i in h.store.items()
        ],
        "operations": [(o.kind, o.state) for o in h.store.operations()],
        "clients": [c.balance for c in h.store.clients()],
        "seller": sorted(
            (s.status, s.expires, s.remoteid, tuple(sorted(s.addons.items())))
            for s in h.seller.services.values()
        ),
        "seller balance": h.seller.accounts["reseller"].balance,
        "applied events": [e.event_id for e in h.store.applied_events()],
    }


def active_service(h: Harness) -> int:
    h.engine.import_tariff("seller", 5, h.now)
    item = h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12")
    h.wait(timedelta(minutes=5))
    return item


def order(h: Harness):
    h.engine.import_tariff("seller", 5, h.now)
    return lambda: h.engine.order("alice", "5-vds-1", 3, h.now, ostempl="debian-12")


def prolong(h: Harness):
    item = active_service(h)
    return lambda: h.engine.prolong(item, 12, h.now)


def change_addons(h: Harness):
    item = active_service(h)
    return lambda: h.engine.set_addons(item, {"ram": 2048, "panel": "ispmanager"}, h.now)


def poll_a_batch(h: Harness):
    """Several events for two services, so a crash can come in the middle of applying them."""
    items = [active_service(h), h.engine.order("bob", "5-vds-1", 1, h.now, ostempl="debian-12")]
    for item in items:
        remote = h.store.item(item).remote_id
        h.side.act("add_ip", {"service": remote})
        h.side.act("set_param", {"service": remote, "name": "hostname", "value": "x"})
    h.side.act("suspend", {"service": h.store.item(items[0]).remote_id})
    return lambda: h.engine.checkevent("seller", h.now)


def sync(h: Harness):
    h.engine.import_tariff("seller", 5, h.now)
    h.side.act(
        "edit_tariff",
        {
            "id": 5,
            "ostempl": ["ubuntu-24"],
            "recipes": [],
            "addons": {
                "panel": {"id": 13, "type": "enumeration", "items": {"none": 0, "plesk": 9}},
                "disk": {"id": 14, "included": 20, "max": 200, "unit_price": 0.1},
            },
        },
    )
    return lambda: h.engine.sync_tariff("5-vds-1", h.now)


CASES = [
    ("order", "after_seller_accepted", order),
    ("order", "order_accepted_before_link", order),
    ("prolong", "after_seller_accepted", prolong),
    ("set_addons", "after_seller_accepted", change_addons),
    ("checkevent", "events_saved", poll_a_batch),
    ("checkevent", "applying_events", poll_a_batch),
    ("sync", "syncing_tariff", sync),
]


def clean_run(setup) -> dict:
    h = harness()
    try:
        setup(h)()
        h.wait(WAIT)
        settled(h)
        return outcome(h)
    finally:
        h.close()


def tables(h: Harness) -> list:
    """Every local tariff whole: prices, add-ons with their items, templates and software."""
    return h.store.tariffs()


@pytest.mark.parametrize(
    ("action", "point", "setup"), CASES, ids=[f"{a} at {p}" for a, p, _ in CASES]
)
def test_the_engine_killed_mid_action_resumes_on_its_database_as_if_never_killed(
    action, point, setup, tmp_path
):
    db = str(tmp_path / "reseller.db")
    h = harness(db_path=db)
    try:
        act = setup(h)
        tariff_before = tables(h)
        crash_at(h.engine, point)
        with pytest.raises(Crash):
            act()
        restart_engine(h)
        if action == "sync":
            assert tables(h) == tariff_before, "half a sync was written"
        h.wait(WAIT)
        if action == "sync":
            assert h.engine.sync_tariff("5-vds-1", h.now), "the sync had nothing left to do"
            assert h.engine.sync_tariff("5-vds-1", h.now) == []
        settled(h)
        assert outcome(h) == clean_run(setup)
    finally:
        h.close()


def test_a_crash_while_polling_loses_no_event_and_applies_none_twice(tmp_path):
    db = str(tmp_path / "reseller.db")
    h = harness(db_path=db)
    try:
        poll_a_batch(h)
        pending = len(h.seller.feeds["reseller"])
        for point in ("events_saved", "applying_events"):
            crash_at(h.engine, point)
            with pytest.raises(Crash):
                h.engine.checkevent("seller", h.now)
            restart_engine(h)
            h.side.act("add_ip", {"service": h.store.items()[0].remote_id})
            pending += 1
        h.engine.checkevent("seller", h.now)
        applied = [e.event_id for e in h.store.applied_events()]
        assert len(applied) == len(set(applied))
        assert applied == sorted(applied)
        assert not h.store.pending_events(h.engine.module("seller").id)
        assert max(applied) >= pending
        settled(h)
    finally:
        h.close()


# -- a real process, really killed ----------------------------------------------------------

ENGINE_PROCESS = textwrap.dedent(
    """
    import os, sys
    from datetime import datetime
    import requests
    from reseller.client import SellerClient
    from reseller.engine import Engine
    from reseller.store import Store

    db, url, now, action, point = sys.argv[1:6]
    now = datetime.fromisoformat(now)
    session = requests.Session()
    session.trust_env = False
    engine = Engine(Store(db), lambda u, login, pw: SellerClient(u, login, pw, session))
    engine.crash_point = lambda name: os._exit(86) if name == point else None
    if action == "order":
        engine.order("alice", "5-vds-1", 3, now, ostempl="debian-12")
    elif action == "prolong":
        engine.prolong(1, 12, now)
    elif action == "set_addons":
        engine.set_addons(1, {"ram": 2048, "panel": "ispmanager"}, now)
    elif action == "checkevent":
        engine.checkevent("seller", now)
    elif action == "sync":
        engine.sync_tariff("5-vds-1", now)
    sys.exit(0)
    """
)


@pytest.mark.parametrize(
    ("action", "point", "setup"), CASES, ids=[f"{a} at {p}" for a, p, _ in CASES]
)
def test_an_engine_process_killed_at_a_crash_point_leaves_a_database_the_next_one_resumes(
    action, point, setup, tmp_path
):
    db = str(tmp_path / "reseller.db")
    h = harness(http=True, db_path=db)
    try:
        setup(h)
        tariff_before = tables(h)
        h.store.close()  # the setup's engine stopped cleanly; the next one dies
        died = subprocess.run(
            [sys.executable, "-c", ENGINE_PROCESS, db, h.url, h.now.isoformat(), action, point],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert died.returncode == 86, died.stderr
        h.store = Store(db)  # the setup's store was closed: open it again, as a new process
        restart_engine(h)
        if action == "sync":
            assert tables(h) == tariff_before, "half a sync was written"
            h.engine.sync_tariff("5-vds-1", h.now)
        h.wait(WAIT)
        settled(h)
        assert outcome(h) == clean_run(setup)
        assert PASSWORD not in died.stdout + died.stderr
    finally:
        h.close()


def test_a_failed_block_nested_in_others_undoes_its_own_writes_and_nothing_around_them(store):
    store.set_setting("step", 0)
    with store.atomic():
        store.set_setting("step", 1)
        with pytest.raises(KeyError), store.atomic():
            store.set_setting("step", 2)
            with store.atomic():
                store.set_setting("step", 3)
            with pytest.raises(RuntimeError), store.atomic():
                store.set_setting("step", 4)
                raise RuntimeError("undone")
            assert store.setting("step") == 3
            raise KeyError("undone")
        assert store.setting("step") == 1
        with store.atomic():
            store.set_setting("after", 5)

    assert (store.setting("step"), store.setting("after")) == (1, 5)
    assert not store.db.conn.in_transaction
