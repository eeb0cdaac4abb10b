"""Figures 5 and 6: the bundled scenario library, and one property scenario's examples per second.

Figure 5 runs every file of `scenarios/library` in-process and then over a local socket
(`--http`) and compares the two. Figure 6 runs the property scenario and compares it with
Hypothesis drawing the same `let` values for a test that does nothing: the floor is Hypothesis.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.common import ROOT, Figure
from scenarios.cli import collect
from scenarios.runner import run_file, strategy
from scenarios.spec import load_document

SPEED_UP = 5.0
EXAMPLES_PER_SECOND = 100.0


def _run_all(files: list[str], examples: int, http: bool, failures: str) -> tuple[float, int]:
    began, failed = time.perf_counter(), 0
    for path in files:
        result = run_file(path, examples=examples, seed=0, http=http, failures_dir=failures)
        failed += not result.passed
    return time.perf_counter() - began, failed


def measure_library(quick: bool) -> list[Figure]:
    folder = ROOT / "scenarios" / "library"
    files = collect([str(folder)]) if folder.is_dir() else []
    where = "scenarios/library"
    if not files:  # the library is being written; the shared examples stand in meanwhile
        folder = ROOT.parent / "shared" / "scenario-examples"
        files, where = collect([str(folder)]), "the shared examples (the library is empty)"
    examples = 2 if quick else 10
    if quick:  # a few files not tagged slow
        files = [f for f in files if "slow" not in (load_document(f).get("tags") or [])][:6]
    with tempfile.TemporaryDirectory(prefix="bench-failures-") as failures:
        local, local_failed = _run_all(files, examples, False, failures)
        socket, socket_failed = _run_all(files, examples, True, failures)
    ratio = socket / local
    failed = local_failed + socket_failed
    return [
        Figure(
            number=5,
            name=f"{where}: {len(files)} files, {examples} examples per property, in-process",
            value=local,
            floor=socket,
            ratio=ratio,
            target=f">= {SPEED_UP:g}x faster than --http",
            met=ratio >= SPEED_UP,
            unit="s",
            floor_name="the same files over a local socket (--http)",
            note=f"{failed} scenario run(s) failed" if failed else "",
        )
    ]


def _hypothesis_alone(document: dict, examples: int) -> float:
    """Examples per second of Hypothesis drawing the same values for a test that does nothing."""
    let = document.get("let") or {}
    values = st.fixed_dictionaries({name: strategy(let[name]) for name in sorted(let)})

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(values)
    def nothing(drawn):
        pass

    began = time.perf_counter()
    nothing()
    return examples / (time.perf_counter() - began)


def measure_property(quick: bool, path: str) -> list[Figure]:
    scenario = Path(path)
    if not scenario.exists() and not scenario.is_absolute():
        scenario = ROOT / path  # run from another folder: the default is relative to the project
    document = load_document(str(scenario))
    examples, repetitions = (10, 1) if quick else (100, 3)
    rates, floors, failed = [], [], 0
    with tempfile.TemporaryDirectory(prefix="bench-failures-") as failures:
        for _ in range(repetitions):
            floors.append(_hypothesis_alone(document, examples))
            result = run_file(str(scenario), examples=examples, seed=0, failures_dir=failures)
            failed += not result.passed
            rates.append(result.examples / result.seconds)
    value, floor = statistics.median(rates), statistics.median(floors)
    return [
        Figure(
            number=6,
            name=f"{scenario.name}, {examples} examples",
            value=value,
            floor=floor,
            ratio=value / floor,
            target=f">= {EXAMPLES_PER_SECOND:g} examples/s",
            met=value >= EXAMPLES_PER_SECOND and not failed,
            unit="examples/s",
            floor_name="Hypothesis drawing the same values for a test that does nothing",
            note="the property failed" if failed else "",
        )
    ]
