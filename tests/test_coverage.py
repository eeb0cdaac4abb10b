"""The coverage map: what a run exercised, taken from what happened on both sides."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import run
from scenarios import coverage
from scenarios.coverage import Coverage, Tracker
from scenarios.harness import Harness
from scenarios.recorder import Recorder
from scenarios.runner import run_file
from scenarios.spec import Step
from tests import report_runs

START = datetime(2026, 1, 1)
README = Path(__file__).resolve().parents[1] / "scenarios" / "README.md"


def covered(*paths: str, tmp_path=None) -> dict:
    recorder = Recorder()
    for path in paths:
        run_file(path, examples=5, failures_dir=str(tmp_path or "failures"), observer=recorder)
    return coverage.document(recorder.files)["dimensions"]


def seen(dimensions: dict, name: str) -> set[str]:
    return set(dimensions[name]["seen"])


def test_one_suspension_covers_the_suspend_transition_on_both_sides_and_no_other_change(
    small_run, tmp_path
):
    dimensions = covered(small_run["suspension"], tmp_path=tmp_path)

    born = {"new -> ordered", "ordered -> active"}
    assert seen(dimensions, "seller_transitions") == born | {"active -> suspended"}
    assert seen(dimensions, "reseller_transitions") == born | {"active -> suspended"}
    assert "suspended -> active" in dimensions["seller_transitions"]["missing"]
    assert "active -> deleted" in dimensions["reseller_transitions"]["missing"]
    assert seen(dimensions, "events_made") == {"open", "suspend"}
    assert seen(dimensions, "events_applied") == {"open", "suspend"}
    assert seen(dimensions, "product_types") == {"vds"}
    assert seen(dimensions, "periods") == {"months"}
    assert seen(dimensions, "faults") == set() and seen(dimensions, "crash_points") == set()
    entry = dimensions["seller_transitions"]["seen"]["active -> suspended"]
    assert entry == {"count": 1, "scenarios": [small_run["suspension"]]}


def test_faults_are_counted_per_function_from_the_call_log_and_the_feed(tmp_path):
    library = Path(__file__).resolve().parents[1] / "scenarios" / "library"
    dimensions = covered(
        str(library / "order_survives_errors_and_timeouts.yaml"),
        str(library / "events_duplicated_are_applied_once.yaml"),
        tmp_path=tmp_path,
    )

    faults = seen(dimensions, "faults")
    assert "itemevent: duplicate_events" in faults
    assert any(key.endswith(": error") for key in faults)
    assert {key.rpartition(": ")[2] for key in faults} <= set(coverage.KINDS)
    assert "drop_events" in dimensions["fault_kinds"]["missing"]


def test_a_crash_point_is_covered_only_when_the_engine_died_there(tmp_path):
    library = Path(__file__).resolve().parents[1] / "scenarios" / "library"
    path = (
        library / "crash_after_send_the_next_engine_finds_the_order_instead_of_ordering_again.yaml"
    )
    dimensions = covered(str(path), tmp_path=tmp_path)

    assert seen(dimensions, "crash_points") == {"after_send"}
    assert dimensions["crash_points"]["missing"] == ["before_send", "after_read"]


def test_coverage_of_several_runs_adds_up_and_survives_its_plain_form():
    one, two = Coverage(), Coverage()
    one.note("events_made", "open", "a.yaml")
    two.note("events_made", "open", "b.yaml", 2)

    merged = Coverage.from_dict(one.to_dict()).add(Coverage.from_dict(two.to_dict()))

    assert merged.to_dict()["events_made"] == {
        "open": {"count": 3, "scenarios": ["a.yaml", "b.yaml"]}
    }


def test_coverage_flag_writes_the_documented_json_and_makes_its_folders(small_run, tmp_path):
    target = tmp_path / "reports" / "deep" / "coverage.json"

    code = run.main(
        [
            "scenarios",
            small_run["suspension"],
            "--coverage",
            str(target),
            "--failures",
            str(tmp_path / "failures"),
        ]
    )

    assert code == 0
    written = json.loads(target.read_text())
    assert written["version"] == coverage.VERSION
    assert written["scenarios"] == [small_run["suspension"]]
    assert list(written["dimensions"]) == list(coverage.DIMENSIONS)
    for dimension in written["dimensions"].values():
        assert set(dimension) == {"seen", "missing"}
        for entry in dimension["seen"].values():
            assert set(entry) == {"count", "scenarios"}


def test_the_readme_documents_every_dimension_of_the_coverage_json():
    text = README.read_text()
    section = text[text.index("## Coverage map") :]
    documented = set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))
    assert set(coverage.DIMENSIONS) <= documented


def test_every_status_change_the_engine_makes_within_one_step_is_counted():
    """A step may take a service through several statuses; a look after it sees only the last."""
    h = Harness(report_runs.WORLD["seller"], report_runs.WORLD["reseller"], START)
    try:
        tracker = Tracker(h)
        h.engine.import_tariff("seller", 5, h.now)
        h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12")
        h.wait(timedelta(minutes=5))
        tracker.stepped(h, Step(1, "wait", "5m"))
        found = tracker.finish(h, "one.yaml")
    finally:
        h.close()

    assert found.seen["reseller_transitions"] == {"new -> ordered": 1, "ordered -> active": 1}
