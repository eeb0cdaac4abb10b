"""`python run.py reseller ...` against the simulator on a real socket, with a database file."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import socket
import stat
import struct
import subprocess
import sys
import termios
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import run
from reseller.client import SellerClient
from reseller.engine import Engine
from reseller.jobs import scheduler_for
from reseller.store import Store
from simulator.app import create_app
from simulator.server import LocalServer
from simulator.world import seller_from_world
from tests.helpers import NOW, PASSWORD, STYLES, Cli, Screen, connect_args, plain_session

ROOT = Path(__file__).resolve().parent.parent
CONNECTED = "module seller connected (id 1)\n"


def run_py(db: Path, *args: str, **options) -> subprocess.CompletedProcess:
    """`python run.py reseller --db DB --now NOW ...` as a process of its own."""
    return subprocess.run(
        [sys.executable, "run.py", "reseller", "--db", str(db), "--now", NOW, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        **options,
    )


def test_a_reselling_story_runs_from_the_command_line(ready, sim):
    out = ready.ok(
        "order", "alice", "5-vds-1", "1", "--ostempl", "debian-12", "--addon", "ram=2048"
    )
    assert out == "service 1: operation manual\n"
    (remote,) = sim.services(remoteid="1")
    assert remote["addons"]["ram"] == 2048

    assert ready.ok("checkevent") == (
        "seller: 1 fetched, 1 applied, 0 kept unmatched\n"
        "seller: operation 1 (open of service 1): done\n"
    )
    assert '"status": 2' in ready.ok("services")
    assert '"state": "done"' in ready.ok("operations")
    ready.ok("suspend", "1")
    ready.ok("checkevent", "seller")
    assert sim.service(remote["id"])["status"] == "suspended"
    assert ready.ok("reconcile", "seller") == "no drift\n"


def test_a_sync_by_local_id_or_intname_says_what_changed(ready, sim):
    sim.act("edit_tariff", id=5, ostempl=["debian-12"])

    assert ready.ok("pricelist.sync", "elid=1") == "ostempl centos-7 removed\n"
    assert ready.ok("pricelist.sync", "5-vds-1") == "nothing changed\n"


def test_the_operators_price_makes_a_period_orderable(ready):
    ready.ok("set-price", "5-vds-1", "2=19")
    code, _, err = ready("order", "alice", "5-vds-1", "6", "--ostempl", "debian-12")

    assert (code, err) == (
        1,
        "error: period: tariff 5-vds-1 has no price for period 6; it has [1, 2, 3, 12]\n",
    )


def test_a_refused_command_says_why_exits_1_and_changes_nothing(ready):
    before = ready.dump()

    code, out, err = ready("order", "carol", "5-vds-1", "1")

    assert (code, out, err) == (1, "", "error: unknown: no client 'carol'\n")
    assert ready.dump() == before


def test_the_password_is_never_printed(ready, sim):
    ready("connect", "again", "--url", ready.url, "--login", "reseller", "--password", PASSWORD)
    ready("connect", "wrong", "--url", ready.url, "--login", "second", "--password", "x" + PASSWORD)
    ready.ok("order", "alice", "5-vds-1", "1", "--ostempl", "debian-12")
    sim.advance("2h")
    for command in (["checkevent"], ["services"], ["operations"], ["reconcile", "seller"]):
        ready(*command, now="2026-01-01T02:00:00")

    assert all(PASSWORD not in printed for printed in ready.printed)
    assert any("duplicate_connection" in printed for printed in ready.printed)
    assert any("error: auth: Invalid username or password" in p for p in ready.printed)


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["teleport"], 2, "invalid choice: 'teleport'"),
        (["order", "alice", "5-vds-1", "one"], 2, "invalid int value: 'one'"),
        (["connect", "seller", "--login", "reseller", "--password", "pw"], 2, "--url"),
        (["configure", "--rate", "EUR"], 1, "--rate: expected NAME=VALUE, got 'EUR'"),
        (["configure", "--rate", "EUR=lots"], 1, "error: value: rate of EUR: 'lots' is not"),
        (["configure", "--order-periods", "1,x"], 1, "error: value: order periods"),
        (
            ["connect", "s", "--url", "u", "--login", "l", "--password", "p", "--period", "2-1"],
            1,
            "--period: expected FROM:TO[:TARIFF], got '2-1'",
        ),
        (["order", "alice", "5-vds-1", "1", "--addon", "ram"], 1, "--addon: expected NAME=VALUE"),
        (["set-price", "5-vds-1", "two=19"], 1, "error: value: period 'two' is not a period code"),
        (["set-price", "5-vds-1", "2=free"], 1, "'free' is not an amount"),
        (["pricelist.sync", "elid=99"], 1, "error: unknown: no tariff with id 99"),
        (["topup", "alice", "-5"], 1, "error: value:"),
        (["prolong", "7", "1"], 1, "error: unknown: no service 7"),
        (["set-addons", "7", "ram"], 1, "error: value: add-on: expected NAME=VALUE, got 'ram'"),
        (["set-module", "7", "manual"], 1, "error: unknown: no service 7"),
        (["import-services", "seller", "printer"], 1, "cannot import services of type"),
        (["assign", "12345", "carol"], 1, "error: unknown: no client 'carol'"),
        (["--clock", "127.0.0.1:8080", "services"], 2, "expected a simulator's base URL"),
        (["daemon", "--poll-every", "0s"], 2, "--poll-every: expected a duration above 0"),
        (["daemon", "--retry-every", "soon"], 2, "--retry-every: expected a duration"),
    ],
)
def test_a_bad_argument_is_a_clear_error_with_a_non_zero_exit(ready, args, code, says):
    before = ready.dump()

    got, out, err = ready(*args)

    assert got == code and says in err
    (error,) = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert error.startswith("error: "), "one line"
    assert out == "" and "Traceback" not in err
    assert ready.dump() == before


def test_a_bad_now_is_refused(ready):
    code, _, err = ready("services", now="yesterday")

    assert (code, err) == (2, "error: --now: 'yesterday' is not an ISO date-time\n")


def test_a_seller_nobody_answers_at_is_unavailable(cli, password_file):
    # Bound but never listening: the port refuses connections, and no other test (an xdist
    # worker's server, say) can be given it meanwhile, as it could once it was closed.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{bound.getsockname()[1]}"

        code, out, err = cli(
            "connect", "s", "--url", nobody, "--login", "l", "--password-file", str(password_file)
        )

    assert code == 1 and err.startswith(f"error: unavailable: cannot reach {nobody}")
    assert PASSWORD not in err


def test_a_database_that_cannot_be_opened_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "dir" / "reseller.db"

    code = run.main(["reseller", "--db", str(missing), "--now", NOW, "services"])

    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: --db: cannot open {missing}")


def test_the_command_runs_as_a_process_and_exits_with_its_status(tmp_path, served):
    db = tmp_path / "r.db"

    connected = run_py(
        db, "connect", "seller", "--url", served, "--login", "reseller", "--password", PASSWORD
    )
    refused = run_py(db, "import", "seller", "5")

    assert (connected.returncode, connected.stdout) == (0, CONNECTED)
    assert refused.returncode == 1
    assert (
        refused.stderr == "error: no_rate: no main currency is set, so prices cannot be imported\n"
    )


# -- the seller password and the database file ----------------------------------------------


@pytest.fixture
def no_password_in_environment(monkeypatch):
    """No $SELLER_PASSWORD, whatever the shell that runs the tests has set."""
    monkeypatch.delenv("SELLER_PASSWORD", raising=False)


def test_connect_reads_the_password_from_the_first_line_of_a_file_without_a_warning(
    cli, tmp_path, password_file
):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("x" + PASSWORD + "\n" + PASSWORD + "\n")

    code, _, err = cli(*connect_args(cli, "--password-file", str(wrong)))
    assert (code, err) == (1, "error: auth: Invalid username or password\n")

    assert cli.ok(*connect_args(cli, "--password-file", str(password_file))) == CONNECTED


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "cannot read"), ("", "is empty"), ("\n", "is empty")],
)
def test_a_password_file_missing_or_empty_is_a_clear_error_and_nothing_is_written(
    cli, tmp_path, content, says
):
    path = tmp_path / "password"
    if content is not None:
        path.write_text(content)
    cli.ok("configure", "--currency", "USD")
    before = cli.dump()

    code, out, err = cli(*connect_args(cli, "--password-file", str(path)))

    assert (code, out) == (1, "")
    assert err.startswith("error: value: --password-file: ")
    assert str(path) in err and says in err
    assert PASSWORD not in err
    assert cli.dump() == before


def test_connect_takes_the_password_from_seller_password_without_a_warning(cli, monkeypatch):
    monkeypatch.setenv("SELLER_PASSWORD", "x" + PASSWORD)
    code, _, err = cli(*connect_args(cli))
    assert (code, err) == (1, "error: auth: Invalid username or password\n")

    monkeypatch.setenv("SELLER_PASSWORD", PASSWORD)
    assert cli.ok(*connect_args(cli)) == CONNECTED


def test_a_password_file_wins_over_seller_password(cli, monkeypatch, password_file):
    monkeypatch.setenv("SELLER_PASSWORD", "x" + PASSWORD)

    assert cli.ok(*connect_args(cli, "--password-file", str(password_file))) == CONNECTED


def test_connect_with_password_still_works_and_warns_that_the_process_list_shows_it(
    cli, no_password_in_environment
):
    code, out, err = cli(*connect_args(cli, "--password", PASSWORD))

    assert (code, out) == (0, CONNECTED)
    (warning,) = err.splitlines()
    assert warning.startswith("warning: --password shows in the process list")
    assert "--password-file" in warning and "$SELLER_PASSWORD" in warning
    assert PASSWORD not in err


def test_connect_without_a_password_or_a_terminal_is_a_clear_error_and_writes_nothing(
    cli, monkeypatch, no_password_in_environment
):
    cli.ok("configure", "--currency", "USD")
    before = cli.dump()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # input from a pipe: no one to ask

    code, out, err = cli(*connect_args(cli))

    assert (code, out) == (1, "")
    assert err.startswith("error: value: connect needs the seller password")
    assert "--password-file" in err and "$SELLER_PASSWORD" in err
    assert cli.dump() == before


def test_a_script_run_without_a_terminal_gets_the_error_instead_of_a_prompt(tmp_path, served):
    environment = {k: v for k, v in os.environ.items() if k != "SELLER_PASSWORD"}
    args = ["connect", "seller", "--url", served, "--login", "reseller"]

    asked = run_py(tmp_path / "r.db", *args, stdin=subprocess.DEVNULL, env=environment)
    given = run_py(
        tmp_path / "r.db",
        *args,
        stdin=subprocess.DEVNULL,
        env={**environment, "SELLER_PASSWORD": PASSWORD},
    )

    assert (asked.returncode, asked.stdout) == (1, "")
    assert asked.stderr.startswith("error: value: connect needs the seller password")
    assert (given.returncode, given.stdout, given.stderr) == (0, CONNECTED, "")


def test_a_new_database_file_is_readable_and_writable_by_its_owner_only(cli, password_file):
    umask = os.umask(0o022)  # the usual umask, under which a new file is readable by all
    try:
        cli.ok("configure", "--currency", "USD")
        cli.ok(*connect_args(cli, "--password-file", str(password_file)))
    finally:
        os.umask(umask)

    files = sorted(cli.db.parent.glob(cli.db.name + "*"))
    assert cli.db in files
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {
        f.name: "0o600" for f in files
    }


def test_the_daemons_jobs_poll_every_module_and_retry(ready, sim):
    """Each line the jobs report starts with the time it was acted at (issue 9)."""
    ready.ok("order", "alice", "5-vds-1", "1", "--ostempl", "debian-12")
    sim.fault("down")
    ready("order", "alice", "5-vds-1", "1", "--ostempl", "debian-12")
    store, lines = Store(str(ready.db)), []
    with plain_session() as http:
        engine = Engine(store, lambda url, login, pw: SellerClient(url, login, pw, http))
        jobs = scheduler_for(engine, lines.append, clock=lambda: datetime(2026, 1, 1, 0, 5))
        jobs.run_all()
    store.close()

    assert sorted(job.interval for job in jobs.jobs) == [60, 300]
    assert lines == [
        "2026-01-01 00:05:00 checkevent seller: 1 fetched, 1 applied, 0 kept unmatched",
        "2026-01-01 00:05:00 checkevent seller: service 1: open (seller event 1): active",
        "2026-01-01 00:05:00 checkevent seller: operation 1 (open of service 1): done",
        "2026-01-01 00:05:00 retried operation 2 (open of service 2): manual",
    ]


# -- what scripts read, and what people see at a terminal -----------------------------------


@pytest.fixture
def screen(cli, monkeypatch) -> Screen:
    """The commands' stdout is a terminal 200 columns wide."""
    cli.screen = Screen()
    monkeypatch.setenv("COLUMNS", "200")
    return cli.screen


@pytest.fixture
def set_up(ready, sim):
    """alice's service 1 (5-vds-1, autoprolong) set up at the seller and its event applied."""
    ready.ok("order", "alice", "5-vds-1", "1", "--ostempl", "debian-12", "--autoprolong")
    ready.ok("checkevent")
    return ready


def test_piped_services_and_operations_print_one_json_object_a_line_with_todays_keys(set_up):
    services = [json.loads(line) for line in set_up.ok("services").splitlines()]
    operations = [json.loads(line) for line in set_up.ok("operations").splitlines()]

    assert services == [
        {
            "id": 1,
            "account": 1,
            "pricelist": 1,
            "status": 2,
            "expiredate": "2026-02-01",
            "remote_id": 1000,
        }
    ]
    assert [list(op) for op in operations] == [
        ["id", "item", "kind", "state", "attempts", "next_try", "error_type", "error_msg"]
    ]
    assert (operations[0]["kind"], operations[0]["state"]) == ("open", "done")


def test_piped_clients_print_one_json_object_a_line_with_the_balance_as_text(set_up):
    set_up.ok("client", "bob", "--balance", "5")

    assert [json.loads(line) for line in set_up.ok("clients").splitlines()] == [
        {"id": 1, "name": "alice", "balance": "489.00", "services": 1},
        {"id": 2, "name": "bob", "balance": "5", "services": 0},
    ]


def test_at_a_terminal_services_operations_and_clients_are_tables_with_status_words(set_up, screen):
    set_up.ok("services")
    services = screen.shown()
    set_up.ok("operations")
    operations = screen.shown()
    set_up.ok("clients")
    clients = screen.shown()

    (row,) = [line for line in services.splitlines() if "alice" in line]
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == [
        "1",
        "alice",
        "5-vds-1",
        "active",
        "2026-02-01",
        "on",
        "seller",
        "1000",
        "open done",
    ]
    assert services.splitlines()[-1] == "1 service"
    assert "done" in operations and operations.splitlines()[-1] == "1 operation"
    assert "489.00 USD" in clients and clients.splitlines()[-1] == "1 client"
    assert "{" not in services + operations + clients


def test_a_real_terminal_gets_the_table_and_a_pipe_the_json(set_up, tmp_path):
    command = [sys.executable, "run.py", "reseller", "--db", str(set_up.db), "services"]
    piped = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
    with subprocess.Popen(command, cwd=ROOT, stdout=follower, stderr=subprocess.PIPE) as shown:
        os.close(follower)
        screen = b""
        while chunk := _read(leader):
            screen += chunk
        assert shown.wait(30) == 0, shown.stderr.read()
    os.close(leader)

    assert json.loads(piped.stdout)["status"] == 2
    text = STYLES.sub("", screen.decode())
    assert "active" in text and "1 service" in text and "{" not in text


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # the terminal closed: the command ended
        return b""


def test_every_command_confirms_what_it_did(set_up, sim):
    cli = set_up
    cli.ok("import", "seller", "7")
    sim.act("create_service", account="reseller", tariff=8, domain="old.example")

    said = [
        (["configure", "--order-periods", "1"], "configured: main currency USD; rates: "),
        (["topup", "alice", "50"], "client alice topped up by 50: balance 539.00 USD"),
        (["set-price", "5-vds-1", "2=19"], "tariff 5-vds-1: period 2 costs 19"),
        (["prolong", "1", "1"], "service 1: prolong for period 1: operation 2 manual"),
        (["suspend", "1"], "service 1: suspend: operation 3 manual"),
        (["resume", "1"], "service 1: resume: operation 4 manual"),
        (["set-addons", "1", "backup=on"], "service 1: add-ons backup=on: operation 5 manual"),
        (["set-module", "1", "manual"], "service 1: processing module seller -> manual"),
        (["change-tariff", "1", "7-vds-2"], "service 1: tariff 5-vds-1 -> 7-vds-2"),
        (["set-module", "1", "seller"], "service 1: processing module manual -> seller"),
        (["assign", "1001", "alice"], "seller service 1001 assigned to alice as service 2 "),
        (["delete", "2"], "service 2: delete: operation 6 manual"),
    ]
    for args, sentence in said:
        assert cli.ok(*args).startswith(sentence), args

    assert cli.ok("configure") == (
        "configured: main currency USD; rates: 1 EUR = 1.10 USD; order periods: 1\n"
    )
    assert sim.service(1000)["addons"]["backup"] is True


def test_an_order_the_seller_refuses_prints_its_line_and_exits_1_with_the_reason(
    cli, password_file
):
    cli.ok("configure", "--currency", "USD", "--rate", "EUR=1.10")
    poor = ["connect", "seller", "--url", cli.url, "--login", "poor", "--password", "pw"]
    assert cli(*poor)[0] == 0
    cli.ok("client", "alice", "--balance", "500")
    cli.ok("import", "seller", "5")

    code, out, err = cli("order", "alice", "5-vds-1", "1", "--ostempl", "debian-12")

    assert (code, out) == (1, "service 1: operation failed\n")
    assert err == "error: not_enough_money: insufficient funds: 10.00 EUR needed\n"


def test_an_operation_the_seller_cannot_be_reached_for_warns_that_the_daemon_retries_it(
    set_up, sim
):
    sim.fault("down")

    code, out, err = set_up("suspend", "1")

    assert (code, out) == (0, "service 1: suspend: operation 2 running\n")
    assert err.startswith("warning: unavailable: ")
    assert err.endswith("; the daemon tries it again at 2026-01-01 00:01:00\n")


def test_checkevent_says_when_another_engine_is_polling_the_module(set_up):
    store = set_up.store()
    try:
        module = store.module("seller").id
        store.open_poll(module, "the daemon", datetime(2026, 1, 1), timedelta(minutes=1))
    finally:
        store.close()

    assert set_up.ok("checkevent") == "seller: another engine is polling this module; skipped\n"


def test_checkevent_says_when_it_reconciled_first_because_the_last_poll_was_lost(set_up):
    store = set_up.store()
    try:
        module = store.module("seller").id
        store.open_poll(module, "a killed engine", datetime(2025, 12, 31), timedelta(minutes=1))
    finally:
        store.close()

    out = set_up.ok("checkevent")

    assert out.startswith("seller: 0 fetched, 0 applied, 0 kept unmatched; "), out
    assert "the last poll was lost, reconciled first (" in out, out


# -- the new commands -------------------------------------------------------------------------


def test_set_addons_changes_a_services_addons_at_the_seller_and_charges_the_increase(set_up, sim):
    out = set_up.ok("set-addons", "1", "ram=2048", "panel=ispmanager")

    assert out == "service 1: add-ons ram=2048, panel=ispmanager: operation 2 manual\n"
    assert sim.service(1000)["addons"] == {"ram": 2048, "backup": False, "panel": "ispmanager"}
    code, _, err = set_up("set-addons", "1", "ram=2048", "panel=ispmanager")
    assert (code, err) == (
        1,
        "error: value: the service already has (or is being given) these add-on values\n",
    )


def test_import_services_lists_what_can_be_assigned_and_assign_gives_it_to_a_client(
    set_up, sim, screen
):
    for domain in ("old.example", "older.example", "new.example"):
        sim.act("create_service", account="reseller", tariff=8, domain=domain)

    set_up.ok("import-services", "seller", "vhost", "--mask", "old*")
    listed = screen.shown()
    set_up.ok("assign", "1001", "alice")
    assigned = screen.shown()
    set_up.ok("import-services", "seller", "vhost", "--mask", "new*")
    left = screen.shown()

    assert "old.example" in listed and "older.example" in listed and "new." not in listed
    assert listed.splitlines()[-2:] == [
        "2 vhost services of module seller",
        "give one to a client with: assign REMOTE CLIENT",
    ]
    assert assigned == (
        "seller service 1001 assigned to alice as service 2 (8-web-1, active, expires 2026-02-01)\n"
    )
    assert "1003" in left and left.splitlines()[-2] == "1 vhost service of module seller"


def test_import_services_piped_prints_one_listed_service_a_line(set_up, sim):
    sim.act("create_service", account="reseller", tariff=8, domain="old.example")

    (row,) = [
        json.loads(line) for line in set_up.ok("import-services", "seller", "vhost").splitlines()
    ]

    assert (row["remote_id"], row["name"], row["itemtype"]) == (1001, "old.example", "vhost")


def test_change_tariff_is_refused_under_the_billmanager_module_and_done_under_manual(set_up):
    set_up.ok("import", "seller", "7")
    code, _, err = set_up("change-tariff", "1", "7-vds-2")
    assert code == 1 and err.startswith("error: manual_module: service 1 cannot change tariff")

    set_up.ok("set-module", "1", "manual")
    set_up.ok("change-tariff", "1", "7-vds-2")
    set_up.ok("set-module", "1", "seller")

    (service,) = [json.loads(line) for line in set_up.ok("services").splitlines()]
    assert service["pricelist"] == 2


# -- one clock: --clock URL, --now, the wall clock -----------------------------------------------


def createdate(cli: Cli, item: int) -> str:
    store = cli.store()
    try:
        return store.item(item).createdate
    finally:
        store.close()


def test_with_clock_a_command_acts_at_the_simulators_time(ready, sim):
    sim.to(datetime(2026, 1, 5, 10, 30))

    ready.ok("order", "alice", "5-vds-1", "1", "--ostempl", "debian-12", now=None, clock=ready.url)

    assert createdate(ready, 1) == "2026-01-05 10:30:00"


def test_now_wins_over_clock(ready, sim):
    sim.to(datetime(2026, 1, 5, 10, 30))

    ready.ok("order", "alice", "5-vds-1", "1", "--ostempl", "debian-12", clock=ready.url)

    assert createdate(ready, 1) == "2026-01-01 00:00:00"


@pytest.fixture
def far_from_utc(monkeypatch):
    """The machine's local time is Tokyo's, nine hours ahead of UTC."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_now_with_a_zone_is_the_same_moment_in_utc(ready):
    ready.ok("topup", "alice", "5", now="2026-01-01T03:00:00+03:00")
    ready.ok("topup", "alice", "5", now="2026-01-01T00:00:00Z")

    assert expense_dates(ready) == ["2026-01-01 00:00:00"] * 2


def test_without_now_or_clock_a_command_acts_at_the_wall_clock_in_utc(ready, far_from_utc):
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ready.ok("order", "alice", "5-vds-1", "1", "--ostempl", "debian-12", now=None)
    after = datetime.now(UTC).replace(tzinfo=None)

    assert before <= datetime.fromisoformat(createdate(ready, 1)) <= after


@pytest.fixture
def nobody() -> str:
    """A local URL nothing listens at (its port is held, so no other test takes it)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def test_a_clock_nobody_answers_at_is_a_one_line_error_and_changes_nothing(ready, nobody):
    before = ready.dump()

    code, out, err = ready("topup", "alice", "5", now=None, clock=nobody)

    assert (code, out) == (1, "")
    assert err == f"error: unavailable: cannot reach the clock at {nobody}/_sim/clock: " + (
        "Connection refused\n"
    )
    assert ready.dump() == before
    assert ready("services", now=None, clock=nobody)[0] == 0, "a listing reads no clock"


TOKEN = "t0ken-for-the-clock-tests"


@pytest.fixture
def guarded(sim_world):
    """A served simulator whose control API wants TOKEN, its clock at 2026-03-10 08:00."""
    app = create_app(seller_from_world(sim_world, datetime(2026, 3, 10, 8)), token=TOKEN)
    server = LocalServer(app)
    yield server.url
    server.close()


def expense_dates(cli: Cli) -> list[str]:
    store = cli.store()
    try:
        return [e.date for e in store.expenses() if e.reason == "topup"]
    finally:
        store.close()


def test_a_guarded_simulators_clock_is_read_with_the_token_from_token_or_simulator_token(
    ready, guarded, monkeypatch
):
    monkeypatch.delenv("SIMULATOR_TOKEN", raising=False)
    code, _, err = ready("topup", "alice", "5", now=None, clock=guarded)
    assert (code, err) == (
        1,
        f"error: auth: the clock at {guarded}/_sim/clock answered HTTP 401: give the "
        "simulator's token (--token or $SIMULATOR_TOKEN)\n",
    )

    ready.ok("--token", TOKEN, "topup", "alice", "5", now=None, clock=guarded)
    monkeypatch.setenv("SIMULATOR_TOKEN", TOKEN)
    ready.ok("topup", "alice", "5", now=None, clock=guarded + "/billmgr")

    assert expense_dates(ready) == ["2026-03-10 08:00:00"] * 2
