"""The HTML report of a scenario run: one self-contained file that shows what happened."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import run
from scenarios import cli, report
from scenarios.recorder import Recorder
from scenarios.runner import run_file
from tests import report_runs

ROOT = Path(__file__).resolve().parents[1]


class Page(HTMLParser):
    """A report as a list of its elements: tag, attributes, and the text inside it."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[dict] = []
        self.open: list[dict] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        for outer in self.open:  # cells and lines read apart, as a person sees them
            outer["text"] += " "
        self.elements.append(element)
        if tag not in ("meta", "br", "line", "circle", "rect", "polyline", "input", "link"):
            self.open.append(element)

    def handle_endtag(self, tag):
        if any(e["tag"] == tag for e in self.open):
            while self.open.pop()["tag"] != tag:
                pass

    def handle_data(self, data):
        for element in self.open:
            element["text"] += data

    def find(self, tag: str, **attrs) -> list[dict]:
        return [
            e
            for e in self.elements
            if e["tag"] == tag
            and all(v in (e["attrs"].get(k.rstrip("_")) or "").split() for k, v in attrs.items())
        ]


def recorded(small_run, tmp_path) -> list[dict]:
    recorder = Recorder()
    for path in small_run.values():
        run_file(path, examples=20, failures_dir=str(tmp_path / "failures"), observer=recorder)
    return recorder.files


@pytest.fixture
def page(small_run, tmp_path) -> Page:
    return Page(report.render(recorded(small_run, tmp_path)))


def words(text: str) -> str:
    return " ".join(text.split())


def test_the_report_reaches_for_nothing_outside_itself(page):
    linked = [
        (e["tag"], value)
        for e in page.elements
        for key, value in e["attrs"].items()
        if key in ("src", "href", "xlink:href", "action", "data") and value
    ]
    assert linked, "the report links its own parts (steps, scenarios)"
    outside = [pair for pair in linked if not pair[1].startswith("#")]
    assert outside == []
    assert page.find("script") == [] and page.find("link") == []
    assert page.find("style"), "its CSS is inline"


def test_each_scenario_is_headed_by_its_file_path_and_name(page, small_run):
    headings = [words(h["text"]) for h in page.find("h2")]
    for stem, path in small_run.items():
        name = getattr(report_runs, stem.upper())["name"]
        assert any(path in h and name in h for h in headings), (path, name, headings)


def test_a_failed_check_shows_what_was_expected_and_what_was_found(page):
    section = next(s for s in page.find("section", class_="failed") if "wrong_expiry" in s["text"])
    assert "Failed step 4 (expect)" in words(section["text"])
    expected = [words(r["text"]) for r in page.find("tr", class_="expected")]
    actual = [words(r["text"]) for r in page.find("tr", class_="actual")]
    assert "expected '2026-03-01'" in expected
    assert "actual '2026-02-01'" in actual


def test_a_failed_property_shows_its_shrunk_example_and_how_to_replay_it(page):
    section = next(s for s in page.find("section", class_="failed") if "shrinking" in s["text"])
    text = words(section["text"])
    assert "Shrunk failing example: topup = 1" in text
    assert "python run.py scenarios" in text and "shrinking-topup1.yaml" in text
    assert "expected 'active'" in text and "actual 'ordered'" in text


def test_each_step_shows_its_calls_and_both_sides_with_what_changed_marked(page):
    steps = page.find("li", class_="step")
    suspend = next(s for s in steps if "seller.suspend: vps" in s["text"])
    wait = steps[steps.index(suspend) + 1]
    assert "itemevent" in wait["text"], "the poll the wait made"
    changed = [
        e
        for e in page.elements[page.elements.index(suspend) : page.elements.index(wait)]
        if e["tag"] == "td" and "changed" in e["attrs"].get("class", "")
    ]
    # the seller's service and the event it made waiting on the feed; the engine knows nothing yet
    assert [c["text"] for c in changed] == ["1", "suspended"]
    order = next(s for s in steps if "order: client: alice" in s["text"])
    assert "vds.order.param" in order["text"]


def test_every_run_has_a_timeline_of_its_steps_and_the_plots(page):
    timelines = page.find("svg", class_="timeline")
    assert len(timelines) == 3
    dots = page.find("g", class_="step")
    assert {d["attrs"]["class"] for d in dots} == {"step passed", "step failed"}
    charts = {f["attrs"]["data-chart"] for f in page.find("figure")}
    assert charts == {"seller_balances", "client_balances", "event_lag", "in_flight"}


def test_html_flag_writes_the_report_making_its_folders(small_run, tmp_path):
    target = tmp_path / "reports" / "deep" / "run.html"

    code = run.main(
        ["scenarios", small_run["suspension"], "--html", str(target), "--failures", str(tmp_path)]
    )

    assert code == 0
    assert "The seller suspends a VPS" in target.read_text()


@pytest.mark.parametrize("bad", ["folder", "under_a_file"])
def test_a_report_path_that_cannot_be_written_is_refused_before_anything_runs(
    bad, small_run, tmp_path, monkeypatch, capsys
):
    (tmp_path / "folder").mkdir()
    (tmp_path / "a_file").write_text("")
    target = {"folder": tmp_path / "folder", "under_a_file": tmp_path / "a_file" / "r.html"}[bad]
    monkeypatch.setattr(cli, "run_file", lambda *a, **k: pytest.fail("ran a scenario"))

    code = run.main(["scenarios", small_run["suspension"], "--html", str(target)])

    assert code == 2
    error = capsys.readouterr().err
    assert (
        error.startswith("error: --html: ")
        and str(target.parent if bad != "folder" else target) in error
    )


def test_pytest_option_reports_the_scenarios_the_tests_ran_across_workers(small_run, tmp_path):
    tests = tmp_path / "test_scenarios_here.py"
    tests.write_text(
        "import pytest\n"
        "from scenarios.runner import run_file\n"
        f"FILES = {sorted(small_run.values())!r}\n"
        "@pytest.mark.parametrize('path', FILES)\n"
        "def test_scenario(path, tmp_path):\n"
        "    run_file(path, examples=5, failures_dir=str(tmp_path))\n"
    )
    target = tmp_path / "out" / "pytest.html"
    mapped = tmp_path / "out" / "coverage.json"

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            str(tests),
            "--bmsim-html",
            str(target),
            "--bmsim-coverage",
            str(mapped),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "bmsim: report of 3 scenario files" in done.stdout
    page = Page(target.read_text())
    headings = " ".join(words(h["text"]) for h in page.find("h2"))
    assert all(path in headings for path in small_run.values())
    written = json.loads(mapped.read_text())
    assert written["scenarios"] == sorted(small_run.values())
    assert "active -> suspended" in written["dimensions"]["seller_transitions"]["seen"]


def test_pytest_option_with_a_path_it_cannot_write_is_a_usage_error(tmp_path):
    (tmp_path / "a_file").write_text("")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--co",
            str(ROOT / "tests" / "test_model.py"),
            "--bmsim-html",
            str(tmp_path / "a_file" / "r.html"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 4
    assert "--bmsim-html: cannot make the folder" in done.stderr


def test_a_file_that_does_not_load_is_in_the_report_with_its_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: no steps here\nsteps: 3\n")
    recorder = Recorder()
    run_file(str(bad), failures_dir=str(tmp_path), observer=recorder)

    page = Page(report.render(recorder.files))

    section = page.find("section", class_="failed")[0]
    assert str(bad) in words(section["text"])
    assert "steps" in page.find("pre", class_="message")[0]["text"]
    assert page.find("svg", class_="timeline") == []
