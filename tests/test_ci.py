"""CI as the README shows it: `.ci/run` runs the README's test command (on every core), and
the README's CI matrix runs commands that work, each shard of the library its own share."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = "scenarios/library"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_test_command() -> list[str]:
    """The pytest part of the README's second command (the one that runs every test)."""
    second = re.search(r"```sh\n.*?\n(.*?)\n", README, flags=re.S).group(1)
    last = second.split("&&")[-1]
    return shlex.split(last)


def test_ci_runs_the_readmes_test_command_on_every_core():
    command = readme_test_command()
    script = (ROOT / ".ci/run").read_text().replace("\\\n", " ")  # continued lines as one
    ci = [shlex.split(line, comments=True) for line in script.splitlines()]
    pytest_lines = [line for line in ci if line[1:3] == ["-m", "pytest"]]

    assert command == [".venv/bin/python", "-m", "pytest", "-n", "auto"]
    assert pytest_lines == [command]


def matrix() -> dict:
    workflow = next(
        block
        for block in re.findall(r"```yaml\n(.*?)```", README, flags=re.S)
        if "strategy:" in block
    )
    return yaml.safe_load(workflow)["jobs"]["test"]


def test_the_ci_matrix_examples_commands_each_take_their_shard():
    job = matrix()
    shards = job["strategy"]["matrix"]["shard"]
    runs = [step["run"] for step in job["steps"] if "matrix.shard" in step.get("run", "")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    assert shards == [1, 2, 3] and len(runs) == 2

    picked: dict[str, list[str]] = {}
    for shard in shards:
        for run in runs:
            if "pytest" in run and shard != shards[0]:
                continue  # its groups partitioning the suite is test_sharding's to check
            command = shlex.split(run.replace("${{ matrix.shard }}", str(shard)))
            assert command[0] == "python"
            # what each machine would run, only listed: --list and --collect-only run nothing
            # (the pytest one on the library alone: test_sharding checks its groups partition it)
            check = ["--list"] if "run.py" in command else ["--collect-only", "-n", "0", LIBRARY]
            done = subprocess.run(
                [sys.executable, *command[1:], *check],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, run + "\n" + done.stdout + done.stderr
            if "run.py" in command:
                picked[str(shard)] = [
                    line.split("  ")[0] for line in done.stdout.splitlines() if "  [" in line
                ]
    files = sorted(f for share in picked.values() for f in share)
    assert files == sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "scenarios/library").glob("*.yaml")
    )
