"""`python run.py reseller ...` against the simulator on a real socket, with a database file."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

import run
from reseller.client import SellerClient
from reseller.engine import Engine
from reseller.jobs import scheduler_for
from reseller.store import Store
from tests.helpers import PASSWORD, dump, plain_session

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-01-01T00:00:00"
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


class Cli:
    """`run.py reseller --db FILE --now NOW ...` in-process; every line it printed is kept."""

    def __init__(self, db: Path, url: str, capsys):
        self.db, self.url, self.capsys = db, url, capsys
        self.printed: list[str] = []

    def __call__(self, *args: str, now: str = NOW) -> tuple[int, str, str]:
        try:
            code = run.main(["reseller", "--db", str(self.db), "--now", now, *args])
        except SystemExit as leaving:
            code = leaving.code
        out, err = self.capsys.readouterr()
        self.printed += [out, err]
        return code, out, err

    def ok(self, *args: str, now: str = NOW) -> str:
        code, out, err = self(*args, now=now)
        assert (code, err) == (0, ""), err
        return out

    def dump(self) -> list[str]:
        store = Store(str(self.db))
        try:
            return dump(store)
        finally:
            store.close()


@pytest.fixture
def cli(tmp_path, served, capsys):
    return Cli(tmp_path / "reseller.db", served, capsys)


@pytest.fixture
def password_file(tmp_path) -> Path:
    """The seller password in a file, as `connect --password-file` reads it."""
    path = tmp_path / "seller-password"
    path.write_text(PASSWORD + "\n")
    return path


def connect_args(cli: Cli, *source: str) -> list[str]:
    """`connect seller` to the served simulator as `reseller`, the password from `source`."""
    return ["connect", "seller", "--url", cli.url, "--login", "reseller", *source]


@pytest.fixture
def ready(cli, password_file):
    """USD at 1.10 per EUR, module `seller`, client alice with 500, tariff 5 imported."""
    cli.ok("configure", "--currency", "USD", "--rate", "EUR=1.10")
    cli.ok(*connect_args(cli, "--password-file", str(password_file)))
    cli.ok("client", "alice", "--balance", "500")
    cli.ok("import", "seller", "5")
    return cli


def test_a_reselling_story_runs_from_the_command_line(ready, sim):
    out = ready.ok(
        "order", "alice", "5-vds-1", "1", "--ostempl", "debian-12", "--addon", "ram=2048"
    )
    assert out == "service 1: operation manual\n"
    (remote,) = sim.services(remoteid="1")
    assert remote["addons"]["ram"] == 2048

    assert ready.ok("checkevent") == "seller: 1 fetched, 1 applied, unmatched []\n"
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
    ],
)
def test_a_bad_argument_is_a_clear_error_with_a_non_zero_exit(ready, args, code, says):
    before = ready.dump()

    got, out, err = ready(*args)

    assert got == code and says in err
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


def test_the_daemons_jobs_poll_every_module_and_retry(ready):
    """Each line the jobs report starts with the time it was acted at (issue 9)."""
    ready.ok("order", "alice", "5-vds-1", "1", "--ostempl", "debian-12")
    store, lines = Store(str(ready.db)), []
    with plain_session() as http:
        engine = Engine(store, lambda url, login, pw: SellerClient(url, login, pw, http))
        jobs = scheduler_for(engine, lines.append, clock=lambda: datetime(2026, 1, 1, 0, 5))
        jobs.run_all()
    store.close()

    assert sorted(job.interval for job in jobs.jobs) == [1, 5]
    assert "2026-01-01 00:05:00 checkevent seller: 1 fetched, 1 applied, 0 kept unmatched" in lines
