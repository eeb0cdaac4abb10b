"""The scenario library's shape, and bad scenario files reported clearly.

The library's files and the shared examples run as tests of their own: the plugin collects
them (`testpaths`), each once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scenarios import runner
from scenarios.runner import is_property, run_file
from scenarios.spec import load_document

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "scenarios" / "library"


def test_the_suite_runs_each_library_file_once_as_a_scenario_test():
    """The library is run by the plugin's collection (`testpaths`), not a second time here."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    nodes = done.stdout.splitlines()
    scenarios = [Path(node.split("::")[0]) for node in nodes if ".yaml::" in node]
    library = [path for path in scenarios if path.parent == Path("scenarios/library")]
    expected = sorted(p.relative_to(ROOT) for p in LIBRARY.glob("*.yaml"))
    assert sorted(library) == expected  # each once, fragments (worlds/) left alone
    names = {path.name for path in expected}
    again = [n for n in nodes if ".yaml::" not in n and any(name in n for name in names)]
    # test_runner.py runs two of them over a socket on purpose: the other transport
    assert [n for n in again if "over_a_socket" not in n] == []


def test_library_has_a_story_per_file_and_properties():
    files = sorted(LIBRARY.glob("*.yaml"))
    assert len(files) >= 25
    documents = [load_document(path) for path in files]
    assert all(d.get("tags") for d in documents)
    assert len({d["name"] for d in documents}) == len(documents)
    assert sum(is_property(d) for d in documents) >= 2


# -- bad files --------------------------------------------------------------------------------

WORLD = {
    "seller": {
        "currency": "EUR",
        "accounts": {"reseller": {"password": "s3cret", "balance": 100}},
        "tariffs": {
            5: {"intname": "vds-1", "type": "vds", "prices": {1: 10}, "ostempl": ["debian-12"]}
        },
    },
    "reseller": {
        "currency": "EUR",
        "clients": {"alice": {"balance": 100}},
        "modules": {"seller": {"account": "reseller", "password": "s3cret"}},
    },
}
GOOD_START = [
    {"import": {"module": "seller", "tariff": 5}},
    {"order": {"client": "alice", "tariff": "5-vds-1", "period": 1}, "as": "vps"},
]


def write(tmp_path: Path, bad_step: dict) -> str:
    document = {"name": "a bad file", **WORLD, "steps": [*GOOD_START, bad_step]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


@pytest.fixture
def harnesses(monkeypatch) -> list:
    """Every harness the runner builds; a bad file must build none."""
    built = []

    def record(*args, **kwargs):
        built.append(args)
        raise AssertionError("a bad scenario file started to run")

    monkeypatch.setattr(runner, "Harness", record)
    return built


@pytest.mark.parametrize(
    ("bad_step", "key", "words"),
    [
        ({"frobnicate": "vps"}, "step 3.frobnicate", ["unknown action", "order"]),
        (
            {"prolong": {"service": "vps"}},
            "step 3 (prolong).period",
            ["missing"],
        ),
        (
            {"prolong": {"service": "vps", "period": "three"}},
            "step 3 (prolong).period",
            ["expected a whole number", "'three'"],
        ),
        ({"wait": "soon"}, "step 3 (wait)", ["expected a duration", "'soon'"]),
        ({"suspend": "ghost"}, "step 3 (suspend)", ["unknown service 'ghost'", "vps"]),
        (
            {"expect": {"service": "ghost", "status": "active"}},
            "step 3 (expect).service",
            ["unknown service 'ghost'"],
        ),
        (
            {"order": {"client": "bob", "tariff": "5-vds-1", "period": 1}},
            "step 3 (order).client",
            ["unknown client 'bob'", "alice"],
        ),
    ],
    ids=[
        "unknown-action",
        "missing-field",
        "wrong-type",
        "bad-duration",
        "unknown-service",
        "unknown-service-in-expect",
        "unknown-client",
    ],
)
def test_bad_file_is_reported_with_file_step_and_key_and_runs_nothing(
    tmp_path: Path, harnesses: list, bad_step: dict, key: str, words: list[str]
):
    path = write(tmp_path, bad_step)
    result = run_file(path, failures_dir=str(tmp_path / "failures"))
    assert not result.passed
    assert result.message.startswith(f"{path}: {key}: "), result.message
    for word in words:
        assert word in result.message, result.message
    assert result.steps == 0
    assert harnesses == []


def test_bad_top_level_key_is_named(tmp_path: Path, harnesses: list):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({"name": "typo", **WORLD, "step": GOOD_START}))
    result = run_file(str(path))
    assert not result.passed
    assert str(path) in result.message
    assert "steps" in result.message
    assert harnesses == []


def test_bad_world_key_is_named(tmp_path: Path, harnesses: list):
    document = {"name": "bad world", **WORLD, "steps": GOOD_START}
    document["seller"] = {**WORLD["seller"], "tariffs": {5: {"type": "vds", "prices": {1: 10}}}}
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = run_file(str(path))
    assert not result.passed
    assert f"{path}: seller.tariffs.5.intname: missing" in result.message
    assert harnesses == []


def test_expected_refusal_may_name_a_client_that_does_not_exist(tmp_path: Path):
    path = write(
        tmp_path,
        {"order": {"client": "bob", "tariff": "5-vds-1", "period": 1}, "fails": "unknown"},
    )
    result = run_file(path)
    assert result.passed, result.message


def test_failed_expect_names_step_expected_and_actual(tmp_path: Path):
    path = write(tmp_path, {"expect": {"client_balance": "alice", "equals": 95}})
    result = run_file(path)
    assert not result.passed
    assert "step 3 (expect): client balance of alice: equals expected 95, got '90" in (
        result.message
    )
    assert "last calls between the two sides" in result.message
