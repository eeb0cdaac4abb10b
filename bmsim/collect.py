"""Scenario files as pytest tests (entry point `pytest11`): `pytest path/to/scenarios/`.

A `.yaml` or `.yml` file that is a mapping with `name` and `steps` is one test, run by the
scenario runner (`scenarios.runner.run_file`) as `run.py scenarios` runs it: a file with `let`
values drawn is a Hypothesis property, shrunk and written out when it fails. Other YAML (an
`include` fragment, a world file, anyone's configuration) is left alone, unless it is named
on the command line by itself, as the runner always runs a file named on its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

SUFFIXES = (".yaml", ".yml")


def pytest_addoption(parser) -> None:
    group = parser.getgroup("bmsim", "scenario files (BILLmanager resale simulator)")
    group.addoption(
        "--scenario-examples",
        type=int,
        default=None,
        metavar="N",
        help="examples per property scenario (default: the Hypothesis profile's max_examples)",
    )
    group.addoption(
        "--scenario-http",
        action="store_true",
        help="run scenario files with the simulator on a loopback socket, not in-process",
    )
    group.addoption(
        "--scenario-failures",
        default="failures",
        metavar="DIR",
        help="where a failed property writes the scenario that reproduces it (default: failures)",
    )


def is_scenario(path: Path) -> bool:
    """Whether a YAML file is a scenario: a mapping with `name` and `steps`."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(document, dict) and {"name", "steps"} <= set(document)


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix not in SUFFIXES:
        return None
    if is_scenario(file_path) or parent.session.isinitpath(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """A scenario file: one test, named as the scenario is."""

    def collect(self):
        try:
            document = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            document = None  # named on the command line: the run reports what is wrong
        name = document.get("name") if isinstance(document, dict) else None
        yield ScenarioItem.from_parent(self, name=str(name or self.path.stem))


class ScenarioFailed(Exception):
    """A scenario that did not pass; its message is the runner's report."""


class ScenarioItem(pytest.Item):
    """One scenario file run through the scenario runner."""

    def runtest(self) -> None:
        from hypothesis import settings

        from scenarios.runner import run_file

        options = self.config.option
        examples = options.scenario_examples or settings.default.max_examples
        if examples < 1:
            raise pytest.UsageError(f"--scenario-examples: expected at least 1, got {examples}")
        # As the runner's own reports name it: relative to where pytest was started
        shown = os.path.relpath(self.path, self.config.invocation_params.dir)
        result = run_file(
            shown,
            examples=examples,
            http=options.scenario_http,
            failures_dir=options.scenario_failures,
        )
        if result.examples > 1:
            self.user_properties.append(("examples", result.examples))
        if not result.passed:
            raise ScenarioFailed(result.message)

    def repr_failure(self, excinfo, style=None):
        """The runner's own report: the file, the step, the key or check, the last calls."""
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"scenario: {self.name}"
