"""`run.py reseller daemon` as a process of its own against a served simulator whose clock a
test moves (by hand, or fast): one clock, a log line for each action, SIGTERM and Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from simulator.app import seller_of
from simulator.server import LocalServer
from tests.helpers import Cli, connect_args

ROOT = Path(__file__).resolve().parent.parent
FAST = ("--poll-every", "0.1s", "--retry-every", "0.1s")


class Daemon:
    """`run.py reseller --db DB OPTIONS daemon --poll-every 0.1s ...` running; its log lines
    (and stderr) are read as they come."""

    def __init__(self, db: Path, *options: str):
        command = [sys.executable, "run.py", "reseller", "--db", str(db), *options, "daemon"]
        self.process = subprocess.Popen(
            [*command, *FAST], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.arrived = threading.Condition()
        self.readers = [
            threading.Thread(target=self._read, args=(stream, kept), daemon=True)
            for stream, kept in (
                (self.process.stdout, self.lines),
                (self.process.stderr, self.errors),
            )
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, kept: list[str]) -> None:
        for line in stream:
            with self.arrived:
                kept.append(line.rstrip("\n"))
                self.arrived.notify_all()

    def matching(self, pattern: str, since: int = 0) -> list[str]:
        return [line for line in self.lines[since:] if re.search(pattern, line)]

    def wait_for(self, pattern: str, count: int = 1, since: int = 0, timeout: float = 10) -> None:
        """Until `count` lines from line `since` on match `pattern`."""
        with self.arrived:
            found = self.arrived.wait_for(
                lambda: len(self.matching(pattern, since)) >= count, timeout
            )
        assert found, f"no {pattern!r} in the daemon's log:\n" + "\n".join(self.lines)

    def polls_at(self, when: str, count: int = 2) -> None:
        """Until the daemon polled `count` times at the simulated time `when`: it has seen it."""
        self.wait_for(rf"^{when} checkevent seller: \d+ fetched", count)

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, list[str]]:
        """Send `signum`; the exit status and the lines that went to stderr."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=15)
        for reader in self.readers:
            reader.join(timeout=5)
        return code, self.errors

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def daemon():
    """`daemon(db, *options)` starts the daemon; whatever a test leaves running is killed."""
    started: list[Daemon] = []

    def start(db: Path, *options: str) -> Daemon:
        started.append(Daemon(db, *options))
        return started[-1]

    yield start
    for one in started:
        one.kill()


@pytest.fixture
def two_services(ready, sim):
    """alice's `kept` (service 1, autoprolong) and `lapsed` (service 2) of tariff 6, which the
    seller sets up 10 minutes after the order; ordered at the simulator's 00:00."""
    ready.ok("import", "seller", "6")
    ready.ok("order", "alice", "6-vds-later", "1", "--autoprolong", now=None, clock=ready.url)
    ready.ok("order", "alice", "6-vds-later", "1", now=None, clock=ready.url)
    return ready


def test_at_a_hand_moved_clock_set_ups_a_prolongation_and_an_expiry_happen_once_each_in_order(
    two_services, sim, daemon
):
    running = daemon(two_services.db, "--clock", two_services.url)
    running.polls_at("2026-01-01 00:00:00")
    assert not running.matching("open \\(seller event"), "nothing is set up before 00:10"

    sim.advance("10m")
    running.wait_for(r"operation 2 \(open of service 2\): done")
    sim.to(datetime(2026, 1, 30, 12))  # the expiry, 2026-02-01 00:10, is more than a day off
    running.polls_at("2026-01-30 12:00:00")
    assert not running.matching("autoprolong")
    sim.to(datetime(2026, 1, 31, 6))
    running.wait_for(
        r"^2026-01-31 06:00:00 checkevent seller: operation 3 \(prolong of service 1\)"
    )
    sim.to(datetime(2026, 2, 1, 6))
    running.wait_for(r"^2026-02-01 06:00:00 checkevent seller: service 2: suspend")
    running.polls_at("2026-02-01 06:00:00", count=4)
    code, errors = running.stop(signal.SIGTERM)

    assert (code, errors) == (0, [])
    assert running.lines[-1].endswith(" (wall) daemon stopped")
    actions = [
        line
        for line in running.lines
        if re.search(r"\(seller event|autoprolong|operation \d", line)
    ]
    assert actions == [
        "2026-01-01 00:10:00 checkevent seller: service 1: open (seller event 1): active",
        "2026-01-01 00:10:00 checkevent seller: service 2: open (seller event 2): active",
        "2026-01-01 00:10:00 checkevent seller: operation 1 (open of service 1): done",
        "2026-01-01 00:10:00 checkevent seller: operation 2 (open of service 2): done",
        "2026-01-31 06:00:00 service 1: autoprolong registered a prolongation "
        "(operation 3: manual)",
        "2026-01-31 06:00:00 checkevent seller: service 1: expire (seller event 3): "
        "expires 2026-03-01",
        "2026-01-31 06:00:00 checkevent seller: operation 3 (prolong of service 1): done",
        "2026-02-01 06:00:00 checkevent seller: service 2: suspend (seller event 4): suspended",
    ]
    assert [entry["reason"] for entry in sim.debits()] == ["order", "order", "prolong"]
    assert (sim.service(1000)["status"], sim.service(1000)["expires"]) == ("active", "2026-03-01")


def test_a_fast_clock_prolongs_once_per_expiry_and_never_pays_ahead_of_it(
    two_services, sim, daemon
):
    running = daemon(two_services.db, "--clock", two_services.url)
    running.polls_at("2026-01-01 00:00:00", count=1)
    stop = threading.Event()

    def days_fly() -> None:  # two simulated days every 20 ms of wall time
        while not stop.wait(0.02) and sim.now < datetime(2026, 3, 20):
            sim.advance("2d")

    flying = threading.Thread(target=days_fly)
    flying.start()
    flying.join(timeout=30)
    stop.set()
    # however few ticks saw the month go by, both expiries are prolonged in the end
    running.wait_for(r"checkevent seller: service 1: expire \(seller event \d+\): expires 2026-04")
    running.polls_at(f"{sim.now:%Y-%m-%d %H:%M:%S}")
    code, errors = running.stop(signal.SIGTERM)

    store = two_services.store()
    try:
        prolongations = [op for op in store.operations(1) if op.kind == "prolong"]
        charged = [e.amount for e in store.expenses() if e.reason == "prolong"]
        expiry = store.item(1).expiredate
    finally:
        store.close()
    assert (code, errors) == (0, [])
    froms = [op.params["before"] for op in prolongations]
    assert froms == ["2026-02-01", "2026-03-01"], "each expiry prolonged once, in order"
    assert charged == [Decimal("-11.00")] * 2
    assert [e["reason"] for e in sim.debits()] == ["order", "order", "prolong", "prolong"]
    assert sim.service(1000)["expires"] == expiry == "2026-04-01"
    assert sim.service(1001)["status"] == "suspended"
    assert len(running.matching(r"service 2: suspend \(seller event")) == 1


@pytest.fixture
def simulator_process():
    """`run.py simulator --port 0` as a process of its own (a seller that can die); its URL."""
    process = subprocess.Popen(
        [sys.executable, "run.py", "simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    banner = process.stdout.readline()
    url = re.search(r"http://127\.0\.0\.1:\d+", banner)
    assert url, banner
    yield url[0], process
    process.kill()
    process.wait(timeout=5)
    process.stdout.close()


def test_an_unreachable_seller_or_clock_is_one_line_a_tick_and_the_daemon_goes_on(
    sim_app, cli, password_file, simulator_process, daemon, capsys
):
    seller = LocalServer(sim_app)
    here = Cli(cli.db, seller.url, capsys)
    here.ok(*connect_args(here, "--password-file", str(password_file)))
    seller.close()
    clock, simulator = simulator_process
    running = daemon(here.db, "--clock", clock)
    unreachable = f"cannot reach {seller.url}: Connection refused"
    running.wait_for(rf"checkevent seller: seller unreachable \({unreachable}\); next", 2)
    simulator.terminate()
    simulator.wait(timeout=5)
    mark = len(running.lines)
    running.wait_for(r"\(wall\) retry skipped: cannot reach the clock at ", 2, mark)
    running.wait_for(r"\(wall\) checkevent skipped: cannot reach the clock at ", 2, mark)
    code, errors = running.stop(signal.SIGINT)

    assert (code, errors) == (0, [])
    assert running.matching(
        rf"^\S+ \S+ checkevent seller: seller unreachable \({unreachable}\); next try in 0.1s$"
    )
    assert running.matching(
        rf"^\S+ \S+ \(wall\) checkevent skipped: cannot reach the clock at {clock}/_sim/clock: "
        r"Connection refused; next try in 0.1s$"
    )
    assert running.lines[-1].endswith(" (wall) daemon stopped")


def test_a_second_signal_stops_the_daemon_at_once_while_a_seller_call_hangs(ready, sim, daemon):
    # the first poll's call waits 3 s for its reply: a daemon that waited for it could not
    # stop within 2 s, one that stops at once does so on the busiest machine
    seller_of(sim.app).slow_seconds = 3.0
    sim.fault("slow")
    running = daemon(ready.db, "--clock", ready.url)
    running.wait_for("daemon started")
    started = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    code, errors = running.stop(signal.SIGINT)

    assert (code, errors) == (0, [])
    assert time.monotonic() - started < 2.0
    assert running.lines[-1].endswith(" daemon stopped at once")
