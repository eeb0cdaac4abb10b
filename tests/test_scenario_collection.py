"""Scenario files collected as tests from any folder (`pytest path/to/scenarios/`), by the
installed plugin, in a pytest process of its own outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

WORLD = """
    seller:
      currency: EUR
      accounts:
        reseller: {password: s3cret, balance: 100}
      tariffs:
        5: {intname: vds-1, type: vds, prices: {1: 10}, setup: manual}
    reseller:
      currency: EUR
      clients:
        alice: {balance: 50}
      modules:
        seller: {account: reseller, password: s3cret}
"""
FOLDER = {
    "worlds/shared.yaml": WORLD,  # an include fragment: neither name nor steps
    "world.yml": "name: a world for `simulator --world`\n" + textwrap.dedent(WORLD),  # no steps
    "settings.yaml": "name: somebody's configuration\njobs: [build, test]\n",
    "notes.yaml": "- a list\n- not a mapping\n",
    "broken.yaml": "name: [not closed\n",
    "ordered.yaml": """
        name: an order waits for the seller's staff
        include: worlds/shared.yaml
        steps:
          - import: {module: seller, tariff: 5}
          - order: {client: alice, tariff: 5-vds-1, period: 1}
            as: vps
          - seller.activate: vps
          - wait: 5m
          - expect: {service: vps, status: active}
    """,
    "nested/wrong_balance.yml": """
        name: a balance the scenario gets wrong
        include: ../worlds/shared.yaml
        steps:
          - import: {module: seller, tariff: 5}
          - order: {client: alice, tariff: 5-vds-1, period: 1}
            as: vps
          - expect: {client_balance: alice, equals: 41}
    """,
    "bad_key.yaml": """
        name: a step with a key missing
        include: worlds/shared.yaml
        steps:
          - import: {module: seller, tariff: 5}
          - order: {client: alice, period: 1}
    """,
    "property.yaml": """
        name: any period is priced
        include: worlds/shared.yaml
        let:
          period: {any: [1, 3]}
        steps:
          - import: {module: seller, tariff: 5}
          - order: {client: alice, tariff: 5-vds-1, period: $period}
    """,
}
SCENARIOS = {
    "ordered.yaml": "an order waits for the seller's staff",
    "nested/wrong_balance.yml": "a balance the scenario gets wrong",
    "bad_key.yaml": "a step with a key missing",
    "property.yaml": "any period is priced",
}


@pytest.fixture
def folder(tmp_path) -> Path:
    """The scenario folder above, written outside the repository."""
    root = tmp_path / "scenarios"
    for name, text in FOLDER.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def pytest_in(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """pytest run in the folder's parent on `args`; what it printed and each test's outcome."""
    report = folder.parent / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS"))}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", *args],
        cwd=folder.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    outcomes = {}
    if report.exists():
        for case in ET.parse(report).iter("testcase"):
            failed = case.find("failure") is not None or case.find("error") is not None
            outcomes[case.get("name")] = "failed" if failed else "passed"
    return done, outcomes


def test_each_scenario_in_a_folder_is_one_test_and_other_yaml_is_left_alone(folder):
    done, outcomes = pytest_in(folder, "scenarios", "--scenario-examples", "5")

    assert set(outcomes) == set(SCENARIOS.values()), done.stdout + done.stderr
    assert outcomes == {
        "an order waits for the seller's staff": "passed",
        "a balance the scenario gets wrong": "failed",
        "a step with a key missing": "failed",
        "any period is priced": "failed",
    }
    assert done.returncode == 1


def test_a_failure_shows_the_file_the_step_the_check_and_the_call_log(folder):
    done, _ = pytest_in(folder, "scenarios/nested/wrong_balance.yml")

    report = done.stdout
    assert "scenarios/nested/wrong_balance.yml: step 3 (expect): client balance of alice: " in (
        report
    )
    assert "equals expected 41, got '40.00'" in report
    assert "last calls between the two sides:" in report
    assert "vds.order.param  -> ok" in report
    # the runner's report alone, not the plugin's own frames around it
    assert "ScenarioFailed" not in report and "collect.py" not in report


def test_a_bad_file_is_reported_with_its_step_and_key(folder):
    done, _ = pytest_in(folder, "scenarios/bad_key.yaml")

    assert "scenarios/bad_key.yaml: step 2 (order).tariff: missing" in done.stdout


def test_a_property_runs_through_hypothesis_and_its_smallest_failure_is_written(folder):
    failures = folder.parent / "found"

    options = ["--scenario-examples", "5", "--scenario-failures", "found"]
    done, _ = pytest_in(folder, "scenarios/property.yaml", *options)

    assert "smallest failing example: period=3" in done.stdout
    assert "has no price for period 3" in done.stdout
    assert [p.name for p in failures.iterdir()] == ["property-period3.yaml"]
    assert "reproduce with: python run.py scenarios found/property-period3.yaml" in done.stdout


def test_a_file_named_on_its_own_runs_even_if_a_folder_would_leave_it(folder):
    done, outcomes = pytest_in(folder, "scenarios/world.yml")

    assert outcomes == {"a world for `simulator --world`": "failed"}
    assert "scenarios/world.yml: " in done.stdout and "steps" in done.stdout


def test_under_xdist_and_over_a_socket_each_scenario_runs_once(folder):
    done, outcomes = pytest_in(
        folder, "scenarios", "-n", "2", "--scenario-http", "--scenario-examples", "3"
    )

    assert set(outcomes) == set(SCENARIOS.values()), done.stdout + done.stderr
    assert outcomes["an order waits for the seller's staff"] == "passed"
    assert "4 failed" not in done.stdout and "3 failed, 1 passed" in done.stdout
