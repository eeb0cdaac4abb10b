"""Past one machine: the scenario library split between CI machines, every file in exactly one
share, the same share every run; by `run.py scenarios --shard i/n` and by pytest-split."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import run
from scenarios.cli import collect

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = "scenarios/library"
SHARDS = 3


def listed(capsys, *options: str) -> list[str]:
    """The files `run.py scenarios LIBRARY --list` names, with `options`."""
    assert run.main(["scenarios", str(ROOT / LIBRARY), "--list", *options]) == 0
    lines = capsys.readouterr().out.splitlines()
    return [line.split("  ")[0] for line in lines if "  [" in line]


def test_the_shards_of_the_library_partition_it_the_same_way_every_run(capsys):
    everything = listed(capsys)
    shares = [listed(capsys, "--shard", f"{i}/{SHARDS}") for i in range(1, SHARDS + 1)]

    assert sorted(everything) == sorted(collect([str(ROOT / LIBRARY)]))
    assert sorted(f for share in shares for f in share) == sorted(everything)  # each once
    assert all(abs(len(share) - len(everything) / SHARDS) < 1 for share in shares)
    assert listed(capsys, "--shard", f"2/{SHARDS}") == shares[1]


def split_group(group: int) -> list[str]:
    """The library's tests pytest collects for one pytest-split group."""
    split = ["--splits", str(SHARDS), "--group", str(group)]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-p",
            "no:cacheprovider",
            *split,
            LIBRARY,
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if ".yaml::" in line]


def test_pytest_split_groups_of_the_collected_library_partition_it_the_same_way_every_run():
    groups = [split_group(i) for i in range(1, SHARDS + 1)]
    files = sorted(node.split("::")[0] for group in groups for node in group)

    assert files == sorted(str(Path(f).relative_to(ROOT)) for f in collect([str(ROOT / LIBRARY)]))
    assert all(groups)
    assert split_group(2) == groups[1]
