"""`python run.py bench`: run the figures, print the table, write bench.json.

It reports; it does not assert. A missed target still exits 0; only a benchmark that crashes
makes the exit code non-zero.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import Figure

DEFAULT_PROPERTY = "../shared/scenario-examples/any_period_any_balance.yaml"


def _figures(property_path: str) -> dict[int, tuple[str, Callable[[bool], list[Figure]]]]:
    # Imported when run, so `--only 3` pays for no other figure's imports.
    def api(quick):
        from bench import api

        return api.measure(quick)

    def load(quick):
        from bench import load

        return load.measure(quick)

    def events(quick):
        from bench import events

        return events.measure(quick)

    def year(quick):
        from bench import year

        return year.measure(quick)

    def idle(quick):
        from bench import year

        return year.measure_idle(quick)

    def library(quick):
        from bench import library

        return library.measure_library(quick)

    def prop(quick):
        from bench import library

        return library.measure_property(quick, property_path)

    def memory(quick):
        from bench import memory

        return memory.measure(quick)

    return {
        1: ("one API call", api),
        2: ("8 clients over a socket", load),
        3: ("10,000 events in one checkevent", events),
        4: ("a simulated year", year),
        5: ("the scenario library", library),
        6: ("the property scenario", prop),
        7: ("peak memory", memory),
        8: ("ten idle years", idle),
    }


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(figures: list[Figure], title: str) -> Table:
    grid = Table(title=title)
    for column in ("#", "figure", "value", "floor", "ratio", "target", "met"):
        grid.add_column(column, justify="right" if column in ("value", "floor", "ratio") else None)
    for f in figures:
        grid.add_row(
            str(f.number),
            f.name,
            f"{_number(f.value)} {f.unit}",
            f"{_number(f.floor)} {f.unit}",
            f"{f.ratio:,.0f}x" if f.ratio >= 100 else f"{f.ratio:.2f}x",
            f.target,
            "[green]yes[/]" if f.met else "[red]NO[/]",
        )
    return grid


def main(
    quick: bool = False,
    output: str = "bench.json",
    property_path: str = DEFAULT_PROPERTY,
    only: list[int] | None = None,
    console: Console | None = None,
) -> int:
    """Run the chosen figures (all by default); 0 unless a benchmark crashed."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console.width = 120  # CI logs: wide enough for one line per figure
    chosen = _figures(property_path)
    unknown = sorted(set(only or []) - set(chosen))
    if unknown:
        console.print(f"[red]error:[/] no figure {unknown[0]}; figures are 1 to {len(chosen)}")
        return 2
    figures: list[Figure] = []
    crashed = []
    started = time.perf_counter()
    for number, (what, run) in chosen.items():
        if only and number not in only:
            continue
        with console.status(f"figure {number}: {what}{' (quick)' if quick else ''}"):
            began = time.perf_counter()
            try:
                figures += run(quick)
            except Exception:
                crashed.append(number)
                console.print(f"[red]figure {number} crashed:[/]\n{traceback.format_exc()}")
                continue
        console.print(f"figure {number}: {what} took {time.perf_counter() - began:.1f}s")
    elapsed = time.perf_counter() - started
    kind = "quick benchmarks" if quick else "benchmarks"
    console.print(table(figures, f"{kind} against floors measured in the same run"))
    missed = [f for f in figures if not f.met]
    console.print(
        f"{len(figures) - len(missed)} of {len(figures)} targets met"
        f"{', ' + str(len(crashed)) + ' figure(s) crashed' if crashed else ''}"
        f" in {elapsed:.0f}s; written to {output}"
    )
    floors = {}
    for f in figures:
        floors.setdefault(f.number, f.floor_name)
    for number, floor_name in floors.items():
        console.print(f"  floor {number}: {floor_name}")
    for f in figures:
        if f.note:
            console.print(f"  note {f.number} ({f.name}): {f.note}")
    Path(output).write_text(json.dumps([f.as_json() for f in figures], indent=2) + "\n")
    return 1 if crashed else 0
