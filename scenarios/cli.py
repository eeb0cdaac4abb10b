"""`python run.py scenarios`: run files and folders of scenarios, report, and write JUnit XML."""

from __future__ import annotations

import sys
from pathlib import Path
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scenarios.runner import Result, run_file
from scenarios.spec import ScenarioError, is_fragment, load_document


def collect(paths: list[str]) -> list[str]:
    """Every `.yaml`/`.yml` file named, or found (recursively) in a named folder, in order.

    In a folder, YAML that is not a scenario is left alone: a fragment other files `include`
    (a mapping with neither `name` nor `steps`). A file named on its own always runs.
    """
    files: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
            files += [str(p) for p in found if not is_fragment(p)]
        elif path.exists():
            files.append(str(path))
        else:
            raise ScenarioError(raw, "", "no such file or folder")
    return files


def has_tag(path: str, tags: list[str]) -> bool:
    if not tags:
        return True
    try:
        document = load_document(path)
    except ScenarioError:
        return True  # a bad file is reported by the run, not silently filtered out
    return bool(set(tags) & set(document.get("tags") or []))


def write_junit(results: list[Result], target: str) -> None:
    suite = ET.Element(
        "testsuite",
        name="scenarios",
        tests=str(len(results)),
        failures=str(sum(not r.passed for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=Path(result.path).stem,
            name=result.name,
            file=result.path,
            time=f"{result.seconds:.3f}",
        )
        if not result.passed:
            failure = ET.SubElement(case, "failure", message=result.message.splitlines()[0])
            failure.text = result.message
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)


def run_scenarios(
    paths: list[str],
    *,
    tags: list[str],
    examples: int,
    seed: int | None,
    http: bool,
    junit: str | None,
    failures_dir: str,
    console: Console | None = None,
) -> int:
    """Run the scenarios, print progress and a summary table; 0 when every one passed."""
    console = console or Console()
    try:
        files = [f for f in collect(paths) if has_tag(f, tags)]
    except ScenarioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not files:
        print("error: no scenario files matched", file=sys.stderr)
        return 2
    results: list[Result] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("scenarios", total=len(files))
        for path in files:
            progress.update(task, description=Path(path).name)
            results.append(
                run_file(path, examples=examples, seed=seed, http=http, failures_dir=failures_dir)
            )
            progress.advance(task)
    table = Table(title="Scenarios")
    for column in ("scenario", "steps", "result", "time"):
        table.add_column(column, justify="right" if column in ("steps", "time") else "left")
    for result in results:
        verdict = "[green]passed[/]" if result.passed else "[red]FAILED[/]"
        if result.examples > 1:
            verdict += f" ({result.examples} examples)"
        table.add_row(
            f"{Path(result.path).name}\n{result.name}",
            str(result.steps),
            verdict,
            f"{result.seconds:.2f}s",
        )
    console.print(table)
    failed = [r for r in results if not r.passed]
    for result in failed:
        console.print(
            f"FAILED {result.path}\n{result.message}\n",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if junit:
        write_junit(results, junit)
    return 1 if failed else 0
