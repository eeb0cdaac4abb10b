"""The benchmark command runs and writes bench.json; it asserts no time."""

import io
import json

from rich.console import Console

from bench.cli import main

FIELDS = {"number", "name", "value", "floor", "ratio", "target", "met"}


def test_quick_bench_writes_one_object_per_figure_with_the_documented_fields(tmp_path):
    output = tmp_path / "bench.json"
    printed = io.StringIO()

    assert main(quick=True, output=str(output), only=[3], console=Console(file=printed)) == 0

    figures = json.loads(output.read_text())
    assert [f["number"] for f in figures] == [3]
    assert FIELDS <= set(figures[0])
    assert figures[0]["value"] > 0 and figures[0]["floor"] > 0
    assert isinstance(figures[0]["met"], bool)
    assert "10,000" not in figures[0]["name"]  # the quick version is the small one
    assert "ratio" in printed.getvalue() and figures[0]["name"][:20] in printed.getvalue()


def test_an_unknown_figure_is_refused(tmp_path):
    console = Console(file=io.StringIO())

    assert main(quick=True, output=str(tmp_path / "b.json"), only=[9], console=console) == 2
