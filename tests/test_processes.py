"""Real OS processes on one database file against the simulator on a real socket.

Two engine processes race for one order while the seller is slow to answer, two poll one
module's feed at once, and an engine doing a seeded plan of work is killed with SIGKILL at a
random moment, again and again, each time finished by a new engine on the same file. However
they interleave, nothing is ordered, charged or applied twice, and nothing is lost.

CI runs a few trials; `PROCESS_RACE_TRIALS` and `PROCESS_KILLS` ask for more (and
`PROCESS_SEED` for another plan): `PROCESS_KILLS=50 pytest tests/test_processes.py`.
"""

from __future__ import annotations

import io
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fnmatch import fnmatchcase
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from reseller.model import (
    ACCEPTED,
    DONE,
    FAILED,
    MANUAL,
    OPEN,
    OPERATION_LEASE,
    SELLER_DEBITS,
)
from scenarios import invariants
from scenarios.harness import Harness, SellerRefused
from tests.end_to_end import PASSWORD, assert_invariants, harness

ROOT = Path(__file__).resolve().parents[1]
CHILD = "import sys; from tests.engine_process import main; sys.exit(main(sys.argv[1:]))"
RACE_TRIALS = int(os.environ.get("PROCESS_RACE_TRIALS", "3"))
KILLS = int(os.environ.get("PROCESS_KILLS", "6"))
SEED = int(os.environ.get("PROCESS_SEED", "0"))
# How many passes the retry job must make over an order held at the seller before it is let
# through: each would send it again, were the claim not to keep it out.
PASSES_WHILE_HELD = 3
STATE_CHANGING = ("*.order.param", "*.edit", "*.suspend", "*.resume", "*.delete", "service.prolong")
# How long every call that changes the seller's state, and every read of its feed, takes in
# the kill test: a kill often lands while a call is out (after the engine committed that it
# sent it, or opened its poll mark, and before it heard back).
BUSY_SECONDS = {**dict.fromkeys(STATE_CHANGING, 0.05), "itemevent": 0.1}
STAFF_PAUSE = 0.05  # between two changes by the seller's staff while an engine works
READY_WITHIN = 20.0


@dataclass
class SlowCall:
    """One call the middleware held back: its function, the remoteid it sent, its wall times."""

    func: str
    remoteid: str | None
    start: float
    end: float


class SlowSeller:
    """WSGI middleware before the simulator: a BILLmanager call whose `func` matches a glob of
    `delays` waits that many seconds before the seller sees it, as a busy seller's would; one
    matching a glob of `holds` waits until the test lets it through (`hold`), so what the test
    does meanwhile happens while the call is out however slow the machine.

    It counts the calls inside it, so a test can let the calls of a killed process finish (a
    lease outlives any call) before another engine takes over.
    """

    def __init__(self, app):
        self.app = app
        self.delays: dict[str, float] = {}
        self.holds: dict[str, threading.Event] = {}
        self.slowed: list[SlowCall] = []
        self.arrived: list[str] = []  # the functions of the calls it holds back, as they come
        self.inside = 0
        self.lock = threading.Lock()

    def hold(self, func: str) -> threading.Event:
        """Hold every call of `func` (a glob) until the event returned is set."""
        self.holds[func] = threading.Event()
        return self.holds[func]

    def release(self) -> None:
        """Let every held call through, and hold no more."""
        for gate in self.holds.values():
            gate.set()
        self.holds.clear()

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").endswith("billmgr"):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        params = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        params.update(parse_qsl(body.decode("utf-8", "replace")))
        func = params.get("func", "")
        delay = next((s for glob, s in self.delays.items() if fnmatchcase(func, glob)), 0)
        gate = next((g for glob, g in self.holds.items() if fnmatchcase(func, glob)), None)
        with self.lock:
            self.inside += 1
            if delay or gate:
                self.arrived.append(func)
        try:
            start = time.time()
            time.sleep(delay)
            if gate is not None:
                gate.wait(READY_WITHIN)  # a test that never lets it through fails, not hangs
            reply = self.app(environ, start_response)  # Flask has answered whole by now
            if delay or gate:
                with self.lock:
                    self.slowed.append(SlowCall(func, params.get("remoteid"), start, time.time()))
            return reply
        finally:
            with self.lock:
                self.inside -= 1

    def wait_for(self, func: str, timeout: float = READY_WITHIN) -> None:
        """Wait until a call of `func` is held back here: it has left the engine."""
        assert wait_until(lambda: func in self.arrived, timeout), f"no {func} call came"

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no call is inside: a dead process's last call has reached the seller."""
        time.sleep(0.05)  # a request still in the server's buffers comes in first
        deadline = time.monotonic() + timeout
        while self.inside and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not self.inside, "a call to the seller never finished"


def wait_until(condition, timeout: float = READY_WITHIN) -> bool:
    """Whether `condition()` came true within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def h(tmp_path):
    """A harness over a real socket with its database in a file, rich enough for many orders."""
    h = harness(
        http=True,
        db_path=str(tmp_path / "reseller.db"),
        seller_balance=10**6,
        client_balances={"alice": 10**6},
    )
    yield h
    h.close()


@pytest.fixture
def slow(h) -> SlowSeller:
    """The served simulator behind a `SlowSeller` (Flask's own way to add WSGI middleware)."""
    middleware = SlowSeller(h.app.wsgi_app)
    h.app.wsgi_app = middleware
    yield middleware
    middleware.release()  # a failed test's held calls end before the server stops


class Processes:
    """Engine processes of this test (`tests/engine_process.py`); every one is killed at the end."""

    def __init__(self, db: str):
        self.db = db
        self.started: list[subprocess.Popen] = []

    def start(self, *argv: str) -> subprocess.Popen:
        """`python ARGV...` at the repo root; unbuffered pipes, so reading `ready` reads no more."""
        process = subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        self.started.append(process)
        return process

    def engine(self, role: str, h: Harness, *extra: str) -> subprocess.Popen:
        return self.start("-c", CHILD, role, self.db, h.now.isoformat(), *extra)

    @staticmethod
    def ready(process: subprocess.Popen) -> None:
        """Wait for the process's `ready` line (its imports done, its engine built)."""
        readable, _, _ = select.select([process.stdout], [], [], READY_WITHIN)
        line = process.stdout.readline() if readable else b""
        if line.strip() != b"ready":
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"an engine process did not start: {line!r}\n{err.decode()[-2000:]}")

    @staticmethod
    def go(*processes: subprocess.Popen) -> None:
        for process in processes:
            process.stdin.write(b"go\n")

    @staticmethod
    def finish(process: subprocess.Popen, timeout: float = 30.0) -> tuple[str, str]:
        """Its output once it ends; it must end well, and never show the seller's password."""
        out, err = (b.decode() for b in process.communicate(timeout=timeout))
        assert PASSWORD not in out + err
        assert process.returncode == 0, f"exit {process.returncode}\n{out[-2000:]}\n{err[-3000:]}"
        return out, err

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.communicate()


@pytest.fixture
def processes(h):
    started = Processes(h.db_path)
    yield started
    started.kill_all()


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def accepted_without_debit(h: Harness) -> list[str]:
    """Every order, prolongation and add-on change the engine holds accepted has the seller's
    debit behind it (the seller's ledger records each it accepts, even at 0).

    Stricter than `money_conserved`, which compares counts only where a debit exists: in these
    tests the seller's staff never change add-ons or expiry dates, so only the engine's own
    calls can have done such work.
    """
    debits = Counter((e.service, e.reason) for e in h.seller.ledger if e.reason in SELLER_DEBITS)
    reasons = {kind: reason for reason, kind in SELLER_DEBITS.items()}
    problems = []
    for item in h.store.items():
        accepted = Counter(op.kind for op in h.store.operations(item.id) if op.accepted)
        for kind, count in accepted.items():
            seller = debits[(item.remote_id, reasons.get(kind))]
            if kind in reasons and count > seller:
                problems.append(
                    f"service {item.id}: {count} {kind} operation(s) accepted, but the seller "
                    f"debited {seller} (seller service {item.remote_id})"
                )
    return problems


def problems_after_drain(h: Harness) -> list[str]:
    """`converged` (which drains first), then the invariants every step keeps."""
    found = [f"converged: {p}" for p in invariants.CHECKS["converged"](h)]
    found += [f"accepted_without_debit: {p}" for p in accepted_without_debit(h)]
    for name in (
        "money_conserved",
        "one_remote_per_service",
        "events_applied_once",
        "balances_within_limits",
        "statuses_move_legally",
    ):
        found += [f"{name}: {p}" for p in invariants.CHECKS[name](h)]
    return found


# -- two processes, one order -----------------------------------------------------------------


def passes(progress: Path) -> int:
    """How many passes the retry job has made (it writes the count after each)."""
    try:
        return int(progress.read_text() or 0)
    except FileNotFoundError:
        return 0


def race_for_an_order(
    h: Harness, slow: SlowSeller, processes: Processes, orderer: str, stop: Path
) -> tuple:
    """The retry job and an order started at one moment; the order is held at the seller
    until the retry job has passed over it a few times (or the orderer, having lost the claim
    to the job, has ended). The new item, the job's report, and whether they raced so."""
    progress = stop.with_suffix(".passes")
    gate = slow.hold("*.order.param")
    arrived = len(slow.arrived)
    retry = processes.engine("retry_job", h, str(stop), str(progress))
    if orderer == "cli":
        buyer = processes.start(
            "run.py", "reseller", "--db", h.db_path, "--now", h.now.isoformat(),
            "order", "alice", "5-vds-1", "1", "--ostempl", "debian-12",
        )  # fmt: skip
        processes.ready(retry)
        processes.go(retry)
    else:
        buyer = processes.engine("order", h)
        processes.ready(retry)
        processes.ready(buyer)
        processes.go(retry, buyer)
    assert wait_until(lambda: len(slow.arrived) > arrived), "no order reached the seller"
    held_at = passes(progress)
    raced = wait_until(
        lambda: passes(progress) >= held_at + PASSES_WHILE_HELD or buyer.poll() is not None
    )
    gate.set()
    out, _ = processes.finish(buyer)
    stop.touch()
    job, _ = processes.finish(retry)
    if orderer == "cli":
        item = int(out.split()[1].rstrip(":"))
    else:
        item = last_json(out)["item"]
    return item, last_json(job), raced


def test_two_processes_racing_for_one_order_against_a_slow_seller_send_it_once(
    h, slow, processes, tmp_path
):
    h.engine.import_tariff("seller", 5, h.now)
    price = h.engine.tariff("5-vds-1").price_for(1, {})
    for trial in range(RACE_TRIALS):
        orderer = ("engine", "cli")[trial % 2]
        balance = h.store.client("alice").balance
        item, _job, raced = race_for_an_order(
            h, slow, processes, orderer, tmp_path / f"stop-{trial}"
        )
        what = f"trial {trial} ({orderer} order, service {item})"

        sent = [c for c in slow.slowed if c.remoteid == str(item)]
        assert len(sent) == 1, f"{what}: {len(sent)} order calls reached the seller"
        assert raced, f"{what}: the retry job was not running while the order was at the seller"
        calls = [
            c
            for c in h.side.calls()
            if c["func"] == "vds.order.param" and c["params"].get("remoteid") == str(item)
        ]
        assert len(calls) == 1, f"{what}: the seller's call log has {len(calls)} orders"
        remotes = h.side.services(remoteid=str(item))
        assert len(remotes) == 1, f"{what}: the seller has {len(remotes)} services"
        debits = [
            e
            for e in h.side.ledger(account="reseller")
            if e["reason"] == "order" and e["service"] == remotes[0]["id"]
        ]
        assert len(debits) == 1, f"{what}: the seller debited {len(debits)} orders"

        charges = [e for e in h.store.expenses() if e.item == item and e.amount < 0]
        assert [(e.reason, e.amount) for e in charges] == [("order", -price)], what
        assert h.store.client("alice").balance == balance - price, what
        operations = h.store.operations(item)
        assert [(op.kind, op.outcome) for op in operations] == [(OPEN, ACCEPTED)], what
        assert operations[0].state in (MANUAL, DONE), f"{what}: {operations[0]}"
        assert operations[0].attempts == 1, f"{what}: {operations[0].attempts} attempts"
        assert h.store.item(item).remote_id == remotes[0]["id"], what

    found = problems_after_drain(h)
    assert not found, "\n".join(found)
    assert all(op.state == DONE for op in h.store.operations())


# -- two processes, one feed ------------------------------------------------------------------


def test_two_processes_polling_one_module_at_once_apply_every_event_once(h, slow, processes):
    h.engine.import_tariff("seller", 5, h.now)
    items = [h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12") for _ in range(2)]
    for item in items:
        remote = h.store.item(item).remote_id
        h.side.add_ip(remote)
        h.side.set_param(remote, "hostname", "x")
    h.side.suspend(h.store.item(items[0]).remote_id)
    feed = [event.id for event in h.seller.feeds["reseller"]]
    assert len(feed) >= 7
    h.side.clear_calls()
    gate = slow.hold("itemevent")

    pollers = [processes.engine("checkevent", h, "seller") for _ in range(2)]
    for poller in pollers:
        processes.ready(poller)
    processes.go(*pollers)
    slow.wait_for("itemevent")
    # the feed's read held until the other poller has ended (or read the feed too)
    wait_until(lambda: any(p.poll() is not None for p in pollers) or len(slow.arrived) > 1)
    gate.set()
    reports = [last_json(processes.finish(poller)[0]) for poller in pollers]

    assert sorted(r["busy"] for r in reports) == [False, True], reports
    polled = next(r for r in reports if not r["busy"])
    assert (polled["fetched"], polled["applied"]) == (len(feed), len(feed)), reports
    reads = [c for c in h.side.calls() if c["func"] == "itemevent"]
    assert len(reads) == 1, f"the feed was read {len(reads)} times"
    applied = [e.event_id for e in h.store.applied_events()]
    assert sorted(applied) == sorted(feed), "an event was lost or applied twice"
    assert not h.seller.feeds["reseller"]
    assert not h.store.pending_events(h.engine.module("seller").id)

    found = problems_after_drain(h)
    assert not found, "\n".join(found)


# -- kill -9 at random points -----------------------------------------------------------------


def staff_change(h: Harness, rng: random.Random) -> None:
    """A change by the seller's staff to one of the reseller's services, so the engine's polls
    have events to apply (never to add-ons or expiry dates: see `accepted_without_debit`)."""
    remotes = [s for s in h.seller.services.values() if s.account == "reseller" and s.status != 4]
    if not remotes:
        return
    action = rng.choice(["add_ip", "set_param", "suspend", "resume"])
    body = {"service": rng.choice(remotes).id}
    if action == "set_param":
        body |= {"name": "hostname", "value": f"h{rng.randrange(1000)}"}
    try:
        h.side.act(action, body)
    except SellerRefused:  # suspending a suspended one, say: the staff just can't
        pass


def kill_while_working(h: Harness, slow: SlowSeller, processes: Processes, seed: int, delay: float):
    """An engine process doing the plan of `seed`, killed `delay` seconds into its work while
    the seller's staff make changes too; what it said it was doing."""
    staff = random.Random(seed)
    slow.delays.update(BUSY_SECONDS)
    worker = processes.engine("work", h, str(seed))
    processes.ready(worker)
    kill_at = time.monotonic() + delay
    while time.monotonic() < kill_at:
        staff_change(h, staff)
        time.sleep(min(STAFF_PAUSE, max(0.0, kill_at - time.monotonic())))
    os.kill(worker.pid, signal.SIGKILL)
    out, err = (b.decode() for b in worker.communicate(timeout=30))
    assert PASSWORD not in out + err
    assert worker.returncode == -signal.SIGKILL, f"it died by itself\n{out[-2000:]}\n{err[-3000:]}"
    slow.wait_idle()
    slow.delays.clear()
    return out.splitlines()


def test_an_engine_killed_at_random_points_leaves_work_the_next_one_finishes_exactly_once(
    h, slow, processes
):
    for tariff in (5, 7, 8):  # a VPS set up at once, one set up by hand, hosting after 10m
        h.engine.import_tariff("seller", tariff, h.now)
    plans = random.Random(SEED)
    steps = 0
    for kill in range(KILLS):
        # drawn before anything that depends on timing, so a kill's seed and delay stay its own
        seed, delay = plans.randrange(2**32), plans.uniform(0.005, 1.0)
        said = kill_while_working(h, slow, processes, seed, delay)
        steps += sum(line.startswith("step ") for line in said)
        h.restart_engine()
        h.wait(OPERATION_LEASE + timedelta(minutes=1))  # past the dead engine's claims
        found = problems_after_drain(h)
        assert not found, (
            f"kill {kill} (PROCESS_SEED={SEED}, plan seed {seed}, after {delay:.3f}s), "
            "the killed engine's last lines:\n  " + "\n  ".join(said[-6:]) + "\n" + "\n".join(found)
        )
    settle = invariants.CHECKS["operations_settle"](h)
    assert not settle, "\n".join(settle)
    assert_invariants(h)
    assert steps >= KILLS, "the killed engines did next to no work"
    spent = sum((e.amount for e in h.store.expenses() if e.amount < 0), Decimal(0))
    assert spent < 0, "no killed engine ever charged for anything"


CHANGES = {"set_addons": "vds.edit", "prolong": "service.prolong"}


@pytest.mark.parametrize("first", ["poll", "retry"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_an_engine_killed_while_the_seller_refuses_its_change_leaves_it_unaccepted(
    h, slow, processes, change, first
):
    """The seller's staff delete a service; before the engine hears of it, it sends a paid
    change, which the seller refuses, and dies before the reply. The next engine must not hold
    that change accepted, whether it first polls (a daemon's first tick: the deletion's event)
    or first retries (a look-up, once the lease runs out): the seller never did it."""
    call = CHANGES[change]
    h.engine.import_tariff("seller", 5, h.now)
    item = h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12")
    h.wait(timedelta(minutes=5))
    remote = h.store.item(item).remote_id
    h.side.delete(remote)
    slow.hold(call)

    worker = processes.engine("change", h, change, str(item))
    processes.ready(worker)
    processes.go(worker)
    slow.wait_for(call)
    os.kill(worker.pid, signal.SIGKILL)
    out, err = (b.decode() for b in worker.communicate(timeout=30))
    assert PASSWORD not in out + err
    assert worker.returncode == -signal.SIGKILL, f"it ended by itself\n{out}\n{err[-3000:]}"
    slow.release()
    slow.wait_idle()
    refused = [c for c in h.side.calls() if c["func"] == call][-1]
    assert refused["result"] == "value", refused  # the seller did nothing: the service is gone

    h.restart_engine()
    if first == "poll":
        h.engine.cron(h.now)
    h.wait(OPERATION_LEASE + timedelta(minutes=1))
    operation = h.store.latest_operation(item)
    assert operation.kind == {"set_addons": "setparam", "prolong": "prolong"}[change]
    assert not operation.accepted, f"held accepted, the seller having refused it: {operation}"
    assert operation.state == FAILED and operation.error_type, operation
    found = problems_after_drain(h)
    assert not found, "\n".join(found)


def test_a_cli_checkevent_while_another_process_polls_says_it_skipped(h, slow, processes):
    """`run.py reseller checkevent` run while the daemon's poll is out says it skipped the
    module, as the daemon's own log does, rather than that the feed was empty."""
    h.engine.import_tariff("seller", 5, h.now)
    h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12")
    slow.hold("itemevent")
    poller = processes.engine("checkevent", h, "seller")
    processes.ready(poller)
    processes.go(poller)
    slow.wait_for("itemevent")
    cli = processes.start(
        "run.py", "reseller", "--db", h.db_path, "--now", h.now.isoformat(), "checkevent", "seller"
    )
    out, _ = processes.finish(cli)
    slow.release()
    polled = last_json(processes.finish(poller)[0])
    assert not polled["busy"] and polled["applied"] == 1, polled
    assert "another engine is polling this module" in out, out


def test_a_resume_whose_event_died_with_its_poll_settles_though_the_staff_suspend_again(
    h, slow, processes
):
    """A resume the seller accepted; the engine polling for its event is killed while the
    seller hands the feed over, so the event is gone; the seller's staff then suspend the
    service again. The next engine must still settle the resume (done, or failed with a
    reason): the suspension it hears of presupposes the resume happened."""
    h.engine.import_tariff("seller", 5, h.now)
    item = h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12")
    h.wait(timedelta(minutes=5))
    h.engine.change_status(item, "suspend", h.now)
    h.engine.checkevent("seller", h.now)
    resume = h.engine.change_status(item, "resume", h.now)
    assert (h.store.operation(resume).state, h.store.operation(resume).outcome) == (
        MANUAL,
        ACCEPTED,
    )
    slow.hold("itemevent")

    poller = processes.engine("checkevent", h, "seller")
    processes.ready(poller)
    processes.go(poller)
    slow.wait_for("itemevent")
    os.kill(poller.pid, signal.SIGKILL)
    poller.communicate(timeout=30)
    slow.release()
    slow.wait_idle()
    assert not h.seller.feeds["reseller"], "the seller kept the feed it handed to the dead engine"
    h.side.suspend(h.store.item(item).remote_id)

    h.restart_engine()
    h.wait(OPERATION_LEASE + timedelta(minutes=1))
    settle = invariants.CHECKS["operations_settle"](h)
    assert not settle, "\n".join(settle)
    found = problems_after_drain(h)
    assert not found, "\n".join(found)
