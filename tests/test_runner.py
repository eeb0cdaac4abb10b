"""The scenario runner: the clock, checks, failures, properties and the command line."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import yaml

import run
from scenarios.harness import Harness, StepFailure
from scenarios.runner import run_file

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios" / "library"
START = datetime(2026, 1, 1)
SELLER = {
    "currency": "EUR",
    "accounts": {"reseller": {"password": "s3cret", "balance": 100}},
    "tariffs": {
        5: {
            "intname": "vds-1",
            "name": "VDS-1",
            "type": "vds",
            "prices": {1: 10},
            "ostempl": ["debian-12"],
        },
    },
}
RESELLER = {
    "currency": "EUR",
    "clients": {"alice": {"balance": 100}},
    "modules": {"seller": {"account": "reseller", "password": "s3cret"}},
}


def scenario(tmp_path: Path, name: str, steps: list, **extra) -> str:
    document = {"name": name, "seller": SELLER, "reseller": RESELLER, "steps": steps, **extra}
    path = tmp_path / f"{name.replace(' ', '_')}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


ORDER = [
    {"import": {"module": "seller", "tariff": 5}},
    {
        "order": {"client": "alice", "tariff": "5-vds-1", "period": 1, "ostempl": "debian-12"},
        "as": "vps",
    },
]


@pytest.fixture
def harness():
    h = Harness(SELLER, RESELLER, START)
    yield h
    h.close()


def test_the_cron_polls_the_seller_at_each_five_minute_tick(harness):
    harness.engine.import_tariff("seller", 5, harness.now)
    item = harness.engine.order("alice", "5-vds-1", 1, harness.now, ostempl="debian-12")
    harness.advance(START + timedelta(minutes=4, seconds=59))
    assert harness.store.item(item).status == 1
    harness.advance(START + timedelta(minutes=5))
    assert harness.store.item(item).status == 2
    assert harness.store.item(item).expiredate == "2026-02-01"


def test_a_wait_retries_an_operation_with_backoff_until_the_seller_answers(harness):
    harness.engine.import_tariff("seller", 5, harness.now)
    harness.side.fault("down", 3)
    item = harness.engine.order("alice", "5-vds-1", 1, harness.now, ostempl="debian-12")
    assert harness.store.latest_operation(item).state == "running"
    harness.wait(timedelta(minutes=3))  # tries at 1m and 3m both refused
    operation = harness.store.latest_operation(item)
    assert (operation.state, operation.attempts) == ("running", 3)
    assert operation.next_try == datetime(2026, 1, 1, 0, 7)
    harness.wait(timedelta(minutes=4))
    assert harness.store.latest_operation(item).state in ("manual", "done")
    assert len(harness.seller.services) == 1


def test_an_operation_gives_up_as_failed_after_a_day_of_transport_failures(harness):
    harness.engine.import_tariff("seller", 5, harness.now)
    harness.side.fault("error", 1000)
    item = harness.engine.order("alice", "5-vds-1", 1, harness.now, ostempl="debian-12")
    harness.wait(timedelta(hours=23, minutes=50))
    assert harness.store.latest_operation(item).state == "running"
    harness.wait(timedelta(hours=1))
    operation = harness.store.latest_operation(item)
    assert (operation.state, operation.error_type) == ("failed", "unavailable")
    assert harness.seller.services == {}


def test_a_failed_expect_names_the_step_the_expected_and_actual_values_and_the_calls(tmp_path):
    path = scenario(
        tmp_path,
        "wrong balance",
        [*ORDER, {"expect": {"seller_balance": "reseller", "equals": 95}}],
    )
    result = run_file(path)
    assert not result.passed
    assert "step 3 (expect)" in result.message
    assert "expected 95" in result.message and "'90.00'" in result.message
    assert "vds.order.param" in result.message  # the last calls between the two sides


def test_a_step_expected_to_fail_that_succeeds_fails_the_scenario(tmp_path):
    path = scenario(tmp_path, "no refusal", [ORDER[0], {**ORDER[1], "fails": "insufficient_funds"}])
    result = run_file(path)
    assert not result.passed
    assert "expected to fail with insufficient_funds, but it succeeded" in result.message


def test_a_failing_property_is_shrunk_and_written_as_a_concrete_file_that_reproduces(tmp_path):
    path = scenario(
        tmp_path,
        "needs money",
        [*ORDER, {"expect": {"operation": "vps", "state": "manual"}}],
        let={"balance": {"between": [0, 60]}},
    )
    document = yaml.safe_load(Path(path).read_text())
    document["seller"]["accounts"]["reseller"]["balance"] = "$balance"
    Path(path).write_text(yaml.safe_dump(document, sort_keys=False))
    result = run_file(path, examples=50, seed=1, failures_dir=str(tmp_path / "failures"))
    assert not result.passed
    assert "smallest failing example: balance=0" in result.message
    written = yaml.safe_load(Path(result.written).read_text())
    assert written["let"] == {"balance": 0}
    again = run_file(result.written)
    assert not again.passed and "state expected 'manual', got 'failed'" in again.message


def test_a_passing_property_runs_the_requested_number_of_examples(tmp_path):
    path = scenario(
        tmp_path,
        "any period",
        [ORDER[0], {**ORDER[1], "order": {**ORDER[1]["order"], "period": "$period"}}],
        let={"period": {"any": [1]}},
        invariants=["money_conserved", "one_remote_per_service"],
    )
    result = run_file(path, examples=7)
    assert result.passed, result.message
    assert result.examples == 1  # a single choice: Hypothesis stops when it has tried them all


@pytest.mark.parametrize(
    "name", ["setup_manual_waits_for_the_sellers_staff.yaml", "events_ip_added_and_removed.yaml"]
)
def test_a_scenario_gives_the_same_results_over_a_socket(name):
    in_process = run_file(str(LIBRARY / name))
    over_http = run_file(str(LIBRARY / name), http=True)
    assert in_process.passed and over_http.passed, in_process.message + over_http.message


def test_the_command_line_reports_a_table_junit_and_a_nonzero_exit_on_failure(tmp_path, capsys):
    good = scenario(
        tmp_path,
        "good",
        [*ORDER, {"expect": {"seller_balance": "reseller", "equals": 90}}],
        tags=["money"],
    )
    bad = scenario(
        tmp_path,
        "bad",
        [*ORDER, {"expect": {"seller_balance": "reseller", "equals": 1}}],
        tags=["broken"],
    )
    junit = tmp_path / "junit.xml"
    assert run.main(["scenarios", good, bad, "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "1 passed, 1 failed" in out and "FAILED" in out and "steps" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    assert run.main(["scenarios", str(tmp_path), "--tag", "money"]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out


def test_the_command_line_refuses_a_path_that_does_not_exist(tmp_path, capsys):
    assert run.main(["scenarios", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: no such file or folder" in capsys.readouterr().err


def test_a_step_sides_methods_fail_the_step_on_every_refusal_and_its_properties_are_read_afresh(
    harness,
):
    before = harness.side.now
    for _ in range(2):
        with pytest.raises(StepFailure, match="missed"):
            harness.side.activate(4242)
    harness.side.advance("1h")

    assert harness.side.now == before + timedelta(hours=1)
