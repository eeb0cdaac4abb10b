"""`python run.py scenarios`: run files and folders of scenarios, report, and write JUnit XML."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scenarios.runner import Result, is_property, run_file
from scenarios.spec import ScenarioError, build, is_fragment, load_document


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
    Path(target).parent.mkdir(parents=True, exist_ok=True)  # `reports/` on a fresh clone
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)


def select(files: list[str], keyword: str | None, shard: tuple[int, int] | None) -> list[str]:
    """The files `-k` picks (an expression over words of the path, name and tags) and, of
    those, this shard's share (every n-th in path order, so shards never overlap)."""
    if keyword:
        match = keyword_matcher(keyword)
        files = [f for f in files if match(words_of(f))]
    if shard:
        index, count = shard
        files = [f for n, f in enumerate(sorted(files)) if n % count == index - 1]
    return files


def words_of(path: str) -> str:
    """What `-k` matches in: the path, the scenario's name and tags, lowercased."""
    try:
        document = load_document(path)
    except ScenarioError:
        return path.lower()
    tags = " ".join(map(str, document.get("tags") or []))
    return f"{path} {document.get('name', '')} {tags}".lower()


KEYWORD_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def keyword_matcher(expression: str):
    """`-k` as pytest takes it: words joined by `and`, `or`, `not` and parentheses; a word
    matches when it is part of the text. ScenarioError naming the expression if malformed."""
    tokens = KEYWORD_TOKEN.findall(expression)
    parts = []
    for token in tokens:
        if token in ("and", "or", "not", "(", ")"):
            parts.append(f" {token} ")
        else:
            parts.append(f"({token.lower()!r} in text)")
    code = "".join(parts).strip()
    try:
        compiled = compile(code or "True", "<-k>", "eval")
        eval(compiled, {"__builtins__": {}}, {"text": ""})
    except SyntaxError:
        raise ScenarioError("-k", "", f"cannot read the expression {expression!r}") from None
    return lambda text: bool(eval(compiled, {"__builtins__": {}}, {"text": text}))


def shard_of(value: str) -> tuple[int, int]:
    """`--shard i/n`: this run's share, 1 <= i <= n."""
    index, _, count = value.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise ValueError(f"expected I/N with 1 <= I <= N, like 2/4, got {value!r}")
    return int(index), int(count)


def list_scenarios(files: list[str], console: Console) -> int:
    """What a run would run, one line each: the file, whether it is a property, its name."""
    for path in files:
        try:
            document = load_document(path)
            kind = "property" if is_property(document) else "scenario"
            console.print(
                f"{path}  [{kind}]  {document.get('name', '')}", markup=False, soft_wrap=True
            )
        except ScenarioError as error:
            console.print(f"{path}  [bad]  {error.problem}", markup=False, soft_wrap=True)
    console.print(f"{len(files)} files", markup=False)
    return 0


def check_scenarios(files: list[str], console: Console) -> int:
    """Load and validate every file, running nothing; 1 if any cannot run."""
    bad = 0
    for path in files:
        try:
            build(load_document(path), path)
            console.print(f"ok     {path}", markup=False, soft_wrap=True)
        except ScenarioError as error:
            bad += 1
            console.print(f"error: {error}", markup=False, soft_wrap=True)
    console.print(f"{len(files) - bad} ok, {bad} with errors", markup=False)
    return 1 if bad else 0


def run_scenarios(
    paths: list[str],
    *,
    tags: list[str],
    examples: int,
    seed: int | None,
    http: bool,
    junit: str | None,
    failures_dir: str,
    keyword: str | None = None,
    shard: tuple[int, int] | None = None,
    list_only: bool = False,
    check_only: bool = False,
    console: Console | None = None,
) -> int:
    """Run the scenarios, print progress and a summary table; 0 when every one passed."""
    console = console or Console()
    if examples < 1:
        print(f"error: --examples: expected at least 1, got {examples}", file=sys.stderr)
        return 2
    try:
        files = select([f for f in collect(paths) if has_tag(f, tags)], keyword, shard)
    except ScenarioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not files:
        print("error: no scenario files matched", file=sys.stderr)
        return 2
    if list_only:
        return list_scenarios(files, console)
    if check_only:
        return check_scenarios(files, console)
    results: list[Result] = []
    interrupted = False
    try:
        for result in run_all(files, console, examples, seed, http, failures_dir):
            results.append(result)
    except KeyboardInterrupt:
        interrupted = True
    summarise(results, console)
    if interrupted:
        console.print(f"interrupted: {len(results)} of {len(files)} files finished", markup=False)
    if junit:
        write_junit(results, junit)
    if interrupted:
        return 130
    return 1 if any(not r.passed for r in results) else 0


def run_all(files, console: Console, examples, seed, http, failures_dir):
    """Each file's result as it finishes: under a progress bar on a terminal, else one line
    per file (what CI logs want)."""

    def one(path: str) -> Result:
        return run_file(path, examples=examples, seed=seed, http=http, failures_dir=failures_dir)

    if not console.is_terminal:
        for path in files:
            result = one(path)
            verdict = "passed" if result.passed else "FAILED"
            console.print(
                f"{verdict:6} {result.path} ({result.seconds:.2f}s)", markup=False, soft_wrap=True
            )
            yield result
        return
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
            result = one(path)
            progress.advance(task)
            yield result


def summarise(results: list[Result], console: Console) -> None:
    """The table of every file's result (names wrap, never cut), each failure, the counts."""
    table = Table(title="Scenarios")
    table.add_column("scenario", overflow="fold", ratio=1)
    for column in ("steps", "result", "time"):
        table.add_column(column, justify="right" if column != "result" else "left", no_wrap=True)
    for result in results:
        verdict = "[green]passed[/]" if result.passed else "[red]FAILED[/]"
        if result.examples > 1:
            verdict += f" ({result.examples} examples)"
        table.add_row(
            f"{result.path}\n{result.name}",
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
