"""`run.py seller ...`: a person drives a running simulator's seller side from the shell.

On a terminal every command confirms in a sentence or a table; piped, one JSON object a line.
A refusal exits 1, a bad argument 2, a simulator nobody runs 3, each with one line on stderr.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import flask
import pytest
import requests
from rich.console import Console

import run
from simulator import cli as seller_cli
from simulator.app import create_app
from simulator.server import LocalServer
from simulator.side import SocketSide

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def url(app):
    """The conftest world served on a free port."""
    with LocalServer(app, threads=2) as server:
        yield server.url


@pytest.fixture
def side(url):
    with SocketSide(url) as side:
        yield side


@pytest.fixture
def cli(url, capsys):
    """`run.py seller --url URL WORDS...` in this process: exit status, stdout, stderr."""

    def command(*words: str, terminal: bool = False):
        out = io.StringIO()
        console = Console(file=out, force_terminal=terminal, width=120, color_system=None)
        code = seller_cli.main(run.parser().parse_args(["seller", "--url", url, *words]), console)
        return code, out.getvalue(), capsys.readouterr().err

    return command


@pytest.fixture
def ordered(url) -> int:
    """A VPS ordered through the API on the manual tariff (7): it waits for `activate`."""
    data = {"func": "vds.order.param", "authinfo": "reseller:s3cret", "pricelist": 7}
    data |= {"period": 1, "sok": "ok", "skipbasket": "on", "out": "json"}
    return int(requests.post(f"{url}/billmgr", data=data, timeout=5).json()["doc"]["id"]["$"])


@pytest.fixture
def active(side) -> int:
    return side.create_service("reseller", 5)["id"]


def record(out: str) -> dict:
    (line,) = out.splitlines()
    return json.loads(line)


# -- the seller's staff ----------------------------------------------------------------------


def test_activate_confirms_in_a_sentence_on_a_terminal(cli, ordered, side):
    code, out, err = cli("activate", str(ordered), terminal=True)

    assert (code, err) == (0, "")
    assert out == f"activated service {ordered}: now active, expires 2026-02-01\n"
    assert side.service(ordered)["status"] == "active"


def test_activate_piped_prints_one_json_object_with_the_service(cli, ordered):
    code, out, _ = cli("activate", str(ordered))

    confirmed = record(out)
    assert code == 0
    assert (confirmed["done"], confirmed["id"], confirmed["status"]) == (
        "activate",
        ordered,
        "active",
    )


@pytest.mark.parametrize(
    ("words", "sentence"),
    [
        (["suspend", "{id}"], "suspended service {id}: now suspended"),
        (["delete", "{id}"], "deleted service {id}: now deleted"),
        (["add_ip", "{id}", "10.0.0.8"], "added 10.0.0.8 to service {id}: its IPs are"),
        (["add-ip", "{id}", "10.0.0.8"], "added 10.0.0.8 to service {id}: its IPs are"),
        (["set_addon", "{id}", "ram", "2048"], "set add-on ram of service {id} to 2048"),
        (["set_param", "{id}", "hostname", "web1"], "set hostname of service {id} to web1"),
    ],
)
def test_each_staff_action_on_a_service_confirms_what_it_did(cli, active, side, words, sentence):
    code, out, err = cli(*(w.format(id=active) for w in words), terminal=True)

    assert (code, err) == (0, "")
    assert out.startswith(sentence.format(id=active))
    service = side.service(active)
    expected = {
        "suspend": ("status", "suspended"),
        "delete": ("status", "deleted"),
        "set_addon": ("addons", service["addons"] | {"ram": 2048}),
        "set_param": ("params", service["params"] | {"hostname": "web1"}),
    }.get(words[0].replace("-", "_"), ("ips", service["ips"][:1] + ["10.0.0.8"]))
    assert service[expected[0]] == expected[1]


def test_resume_and_remove_ip_undo_suspend_and_add_ip(cli, active, side):
    side.suspend(active)
    side.add_ip(active, "10.0.0.8")

    assert cli("resume", str(active), terminal=True)[1].startswith(f"resumed service {active}")
    code, out, _ = cli("remove_ip", str(active))

    assert code == 0 and record(out)["ip"] == "10.0.0.8"
    assert "10.0.0.8" not in side.service(active)["ips"]
    assert side.service(active)["status"] == "active"


def test_topup_confirms_the_new_balance(cli, side):
    code, out, _ = cli("topup", "reseller", "12.50", terminal=True)

    assert (code, out) == (0, "topped up reseller with 12.50: balance 112.50 EUR\n")
    assert side.balance("reseller") == Decimal("112.50")


def test_edit_tariff_takes_yaml_values_per_key(cli, side, url):
    code, out, _ = cli("edit_tariff", "5", "prices={1: 12, 12: 120}", "setup=manual")

    assert code == 0 and record(out) == {
        "done": "edit_tariff",
        "id": "5",
        "changed": ["prices", "setup"],
    }
    (tariff,) = [t for t in side.state()["tariffs"] if t["id"] == 5]
    assert tariff["setup"] == "manual"


def test_edit_tariff_without_an_equals_sign_is_a_bad_argument(cli):
    code, out, err = cli("edit_tariff", "5", "prices")

    assert (code, out, err) == (2, "", "error: edit_tariff: expected KEY=VALUE, got 'prices'\n")


def test_create_service_confirms_the_new_service(cli, side):
    code, out, _ = cli(
        "create_service", "other", "8", "--remoteid", "shop-7", "--domain", "example.com"
    )

    created = record(out)
    assert code == 0 and created["done"] == "create_service"
    assert (created["account"], created["name"], created["remoteid"]) == (
        "other",
        "example.com",
        "shop-7",
    )
    assert [s["id"] for s in side.services(account="other")] == [created["id"]]


# -- refusals and a simulator that is not there ----------------------------------------------


def test_a_refusal_exits_1_with_the_sellers_reason_in_one_line(cli, active):
    code, out, err = cli("activate", str(active))

    assert (code, out) == (1, "")
    assert err == f"error: value: service {active} is not ordered\n"


def test_an_unknown_service_is_refused_as_missed(cli):
    assert cli("suspend", "4242")[::2] == (1, "error: missed: no service 4242\n")


def test_a_value_the_simulator_cannot_read_exits_2_naming_it(cli):
    code, _, err = cli("topup", "reseller", "lots")

    assert (code, err) == (2, "error: control: amount: expected an amount, got 'lots'\n")


def test_a_simulator_nobody_runs_exits_3_in_one_line(capsys):
    with socket.socket() as bound:  # bound, never listening: the port refuses, and stays ours
        bound.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{bound.getsockname()[1]}"

        code = run.main(["seller", "--url", nobody, "clock"])

    assert code == 3
    assert (
        capsys.readouterr().err == f"error: no simulator answers at {nobody} (connection refused)\n"
    )


def test_a_url_that_is_not_http_is_a_bad_argument(capsys):
    assert run.main(["seller", "--url", "127.0.0.1:8080", "clock"]) == 2
    assert (
        capsys.readouterr().err == "error: --url: expected http://HOST:PORT, got '127.0.0.1:8080'\n"
    )


# -- faults ----------------------------------------------------------------------------------


def test_fault_queues_one_aimed_at_a_function_and_faults_lists_then_clears_them(cli, side):
    code, out, _ = cli("fault", "lose_reply", "--func", "itemevent", "--times", "2", terminal=True)
    assert (code, out) == (0, "queued lose_reply for the next 2 calls of itemevent\n")
    assert cli("fault", "drop_events", "--account", "reseller", terminal=True)[1] == (
        "queued drop_events for the next read of the event feed by reseller\n"
    )

    listed = [json.loads(line) for line in cli("faults")[1].splitlines()]
    table = cli("faults", terminal=True)[1]
    cleared = cli("faults", "--clear", terminal=True)[1]

    assert [(f["kind"], f["times"], f["func"]) for f in listed] == [
        ("lose_reply", 2, "itemevent"),
        ("drop_events", 1, None),
    ]
    assert "lose_reply" in table and "itemevent" in table and table.endswith("2 queued faults\n")
    assert cleared == "cleared 2 queued faults\n"
    assert side.faults() == []


def test_an_unknown_fault_kind_or_a_count_that_is_no_number_is_a_bad_argument(cli):
    code, _, err = cli("fault", "explode")
    assert code == 2 and err.startswith("error: control: kind: unknown fault 'explode'")
    code, _, err = cli("fault", "down", "--times", "two")
    assert (code, err) == (2, "error: --times: expected a whole number, got 'two'\n")


# -- the clock -------------------------------------------------------------------------------


def test_clock_shows_the_time_and_moves_on_by_a_duration_or_to_a_time(cli, ordered, side):
    assert (
        cli("clock", terminal=True)[1] == "clock: 2026-01-01 00:00:00 (manual clock); nothing due\n"
    )

    code, out, _ = cli("clock", "+5m", terminal=True)
    assert (code, out) == (
        0,
        "moved the clock to 2026-01-01 00:05:00 (manual clock); nothing due\n",
    )
    code, out, _ = cli("clock", "2026-03-01T00:00")

    assert code == 0
    assert record(out) == {
        "done": "clock",
        "mode": "manual",
        "next_due": None,
        "now": "2026-03-01 00:00:00",
        "speed": 0,
    }


def test_a_clock_that_would_go_back_is_refused(cli):
    cli("clock", "+1d")

    code, _, err = cli("clock", "2026-01-01T00:00")

    assert code == 1 and err.startswith("error: value: the clock cannot go back")


# -- reads -----------------------------------------------------------------------------------


def test_services_is_a_table_on_a_terminal_and_one_json_object_a_service_piped(cli, side):
    first = side.create_service("reseller", 5, remoteid="a")["id"]
    side.create_service("other", 8)

    table = cli("services", terminal=True)[1]
    piped = [json.loads(line) for line in cli("services")[1].splitlines()]
    mine = [json.loads(line) for line in cli("services", "--account", "reseller")[1].splitlines()]

    assert "│ status" not in table and "┃ status" in table and table.endswith("2 services\n")
    assert f"│ {first} │ reseller │ 5 vds-1 │ active" in table
    assert [s["account"] for s in piped] == ["reseller", "other"]
    assert [s["id"] for s in mine] == [first]


def test_service_shows_every_field_of_one_service(cli, active):
    table = cli("service", str(active), terminal=True)[1]
    piped = record(cli("service", str(active))[1])

    assert table.index("│ id ") < table.index("│ status ") < table.index("│ ips ")
    assert "ostempl=debian-12" in table
    assert piped["id"] == active and piped["params"] == {"ostempl": "debian-12"}


def test_balance_and_ledger_show_money_as_the_seller_keeps_it(cli, side):
    side.create_service("reseller", 5)

    assert cli("balance", "reseller", terminal=True)[1] == "reseller: 90.00 EUR\n"
    assert record(cli("balance", "reseller")[1]) == {
        "login": "reseller",
        "balance": "90.00",
        "currency": "EUR",
    }
    (entry,) = [json.loads(line) for line in cli("ledger", "--account", "reseller")[1].splitlines()]
    assert (entry["amount"], entry["reason"]) == ("-10.00", "create_service")


def test_calls_filter_by_function_and_keep_the_last(cli, url, active):
    for func in ("whoami", "itemevent", "itemevent"):
        requests.post(
            f"{url}/billmgr", data={"func": func, "authinfo": "reseller:s3cret"}, timeout=5
        )

    everything = cli("calls")[1].splitlines()
    code, out, _ = cli("calls", "--func", "itemevent", "--last", "1")
    table = cli("calls", "--func", "item*", terminal=True)[1]

    assert code == 0 and len(everything) == 3
    assert [(c["id"], c["func"]) for c in map(json.loads, out.splitlines())] == [(3, "itemevent")]
    assert table.count("itemevent") == 2 and table.endswith("2 calls\n")
    assert cli("calls", "--last", "0")[::2] == (
        2,
        "error: --last: expected a number above 0, got 0\n",
    )


def test_load_and_reset_replace_the_seller(cli, side, tmp_path):
    story = tmp_path / "story.yaml"
    story.write_text(
        "name: x\nstart: 2026-04-01T00:00:00Z\nseller:\n  accounts:\n    shop: {password: pw}\n"
        "steps: []\n"
    )

    code, out, _ = cli("load", str(story), terminal=True)
    assert (code, out) == (
        0,
        f"loaded {story}: 1 account, 0 tariffs; clock at 2026-04-01 00:00:00\n",
    )
    assert side.balance("shop") == 0
    code, out, _ = cli("reset", terminal=True)

    assert (code, out) == (0, "reset: an empty seller, clock at 2026-01-01 00:00:00\n")
    assert side.state()["accounts"] == []


def test_snapshot_and_restore_by_name_bring_the_seller_back(cli, side):
    assert cli("snapshot", "before", terminal=True)[:2] == (0, "saved snapshot before\n")
    side.topup("reseller", 50)

    code, out, _ = cli("restore", "before", terminal=True)

    assert (code, out) == (0, "restored snapshot before: clock at 2026-01-01 00:00:00\n")
    assert side.balance("reseller") == 100
    assert record(cli("snapshots")[1]) == {"name": "before"}


def test_a_snapshot_never_saved_exits_1_and_a_name_that_is_a_path_exits_2(cli):
    code, out, err = cli("restore", "nowhere")
    assert (code, out, err) == (1, "", "error: missed: name: no snapshot 'nowhere'\n")

    code, _, err = cli("snapshot", "../up")
    assert code == 2 and err.startswith("error: control: name: expected 1 to 100 of")


def test_a_simulator_without_a_state_folder_refuses_a_snapshot_with_exit_1(capsys):
    with LocalServer(create_app(), threads=2) as server:
        code = run.main(["seller", "--url", server.url, "snapshot", "before"])

    assert code == 1  # the simulator's set-up refused it, not the command's words
    assert capsys.readouterr().err.startswith("error: control: name: no state folder: start")


# -- the token, the process, the console script ----------------------------------------------


def test_the_token_is_sent_as_a_bearer_token_from_the_option_or_the_environment(
    monkeypatch, capsys
):
    app = flask.Flask("guarded")
    seen = []

    @app.route("/_sim/clock")
    def clock():
        seen.append(flask.request.headers.get("Authorization"))
        return {"now": "2026-01-01 00:00:00", "next_due": None, "mode": "manual", "speed": 0}

    with LocalServer(app, threads=1) as server:
        assert run.main(["seller", "--url", server.url, "--token", "opt", "clock"]) == 0
        monkeypatch.setenv("SIMULATOR_TOKEN", "env")
        assert run.main(["seller", "--url", server.url, "clock"]) == 0

    assert seen == ["Bearer opt", "Bearer env"]


def test_a_guarded_simulator_that_refuses_the_token_exits_1_saying_so(capsys):
    app = flask.Flask("guarded")
    app.route("/_sim/clock")(lambda: ("no", 401))

    with LocalServer(app, threads=1) as server:
        code = run.main(["seller", "--url", server.url, "clock"])

    assert code == 1
    assert capsys.readouterr().err == "error: auth: HTTP 401: the simulator wants a valid token\n"


def test_a_simulator_guarded_by_a_token_refuses_the_command_without_it_and_obeys_with_it(
    monkeypatch, capsys
):
    token = "a-token-of-sixteen-or-more"

    with LocalServer(create_app(token=token), threads=2) as server:
        refused = run.main(["seller", "--url", server.url, "clock"])
        err = capsys.readouterr().err
        monkeypatch.setenv("SIMULATOR_TOKEN", token)
        obeyed = run.main(["seller", "--url", server.url, "clock", "+5m"])

    assert (refused, obeyed) == (1, 0)
    assert err.startswith("error: auth: token: missing; the control API needs its token")
    assert json.loads(capsys.readouterr().out)["now"] == "2026-01-01 00:05:00"


def test_the_command_runs_as_a_process_with_the_url_from_the_environment(url, active):
    def seller_process(*words):
        return subprocess.run(
            [sys.executable, "run.py", "seller", *words],
            cwd=ROOT,
            env={"BMSIM_URL": url, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )

    suspended = seller_process("suspend", str(active))
    again = seller_process("suspend", str(active))

    assert suspended.returncode == 0 and json.loads(suspended.stdout)["status"] == "suspended"
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr == f"error: value: service {active} is not active\n"


def test_bmsim_is_the_same_command_line_as_run_py():
    bmsim = Path(sys.executable).with_name("bmsim")

    version = subprocess.run([bmsim, "--version"], capture_output=True, text=True, timeout=60)
    helped = subprocess.run([bmsim, "seller", "--help"], capture_output=True, text=True, timeout=60)

    assert version.returncode == 0 and version.stdout.startswith("bmsim ")
    assert run.version() in version.stdout
    assert "activate" in helped.stdout and "clock" in helped.stdout
