"""The README's "Use it from your own tests" section, run as it is written.

Its Python blocks are one test module, run by pytest in a folder outside the repository
against the installed package; its simulator commands are started as shown; its console
session is replayed command by command in a terminal, and each command must print exactly
what the README shows after it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shlex
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from simulator.side import SocketSide

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Use it from your own tests"
BIN = Path(sys.executable).parent


def section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), flags=re.S)


def clean_env(**extra: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "BMSIM_")) and k != "SIMULATOR_TOKEN"
    }
    env.pop("COLUMNS", None)
    return env | {"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"} | extra


def test_the_readme_has_the_examples_this_file_runs():
    assert len(blocks("python")) >= 4 and len(blocks("console")) == 1
    assert len(blocks("sh")) == 2 and len(blocks("yaml")) == 1


def sh_block(word: str) -> str:
    """The section's `sh` block whose commands mention `word`."""
    return next(block for block in blocks("sh") if word in block)


def test_the_python_examples_pass_as_a_suite_outside_the_repository(tmp_path):
    code = "\n\n".join(blocks("python"))
    (tmp_path / "test_from_readme.py").write_text(code)
    report = tmp_path / "report.xml"

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    ran = {case.get("name").split("[")[0] for case in ET.parse(report).iter("testcase")}
    assert ran == set(re.findall(r"^def (test_\w+)", code, flags=re.M))
    assert "passed" in done.stdout and "skipped" not in done.stdout


def pytest_commands() -> list[list[str]]:
    """The README's commands that run scenario files as tests."""
    return [shlex.split(line, comments=True) for line in sh_block("pytest").splitlines()]


@pytest.mark.parametrize("command", pytest_commands(), ids=" ".join)
def test_each_pytest_command_runs_the_scenario_file_shown_as_one_passing_test(tmp_path, command):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "order_goes_active.yaml").write_text(blocks("yaml")[0])
    (folder / "config.yaml").write_text("name: not a scenario\nsettings: {}\n")  # left alone
    assert command[0] == "pytest"

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *command[1:]],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def simulator_commands() -> list[tuple[list[str], str]]:
    """The README's simulator commands, each with the clock mode it starts."""
    commands = []
    for line in sh_block("run.py simulator").splitlines():
        command = shlex.split(line, comments=True)
        mode = "speed" if "--speed" in command else "real" if "real" in command else "manual"
        commands.append((command, mode))
    return commands


class Served:
    """A README simulator command, run from the repository on a free port (`--port 0`)."""

    def __init__(self, command: list[str]):
        assert command[:2] == ["python", "run.py"], command
        self.process = subprocess.Popen(
            [sys.executable, *command[1:], "--port", "0"],
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner = self.process.stdout.readline()
        self.url = self.banner.split()[3].removesuffix("/billmgr")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=10)
        return self.process.returncode


@pytest.mark.parametrize(("command", "mode"), simulator_commands(), ids=lambda x: str(x))
def test_each_simulator_command_serves_with_the_clock_it_says(command, mode):
    served = Served(command)
    try:
        with SocketSide(served.url) as side:
            clock = side.clock()
            reseller = side.balance("reseller")
    finally:
        code = served.stop()

    assert served.banner.startswith("simulated BILLmanager at http://127.0.0.1:")
    assert (clock["mode"], reseller, code) == (mode, 15, 0)


def in_a_terminal(command: str, env: dict) -> str:
    """What `command` prints, stdout and stderr together, run by bash in a 120-column terminal."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        ["bash", "-c", command], stdin=terminal, stdout=terminal, stderr=terminal, cwd=ROOT, env=env
    )
    os.close(terminal)
    printed = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end closed: the command is done
            break
        if not chunk:
            break
        printed += chunk
    process.wait(timeout=60)
    os.close(controller)
    return printed.decode("utf-8").replace("\r\n", "\n")


def session() -> list[tuple[str, str]]:
    """The README's console session: each command with what it prints."""
    steps: list[tuple[str, str]] = []
    for line in blocks("console")[0].splitlines(keepends=True):
        if line.startswith("$ "):
            steps.append((line[2:].strip(), ""))
        else:
            command, shown = steps[-1]
            steps[-1] = (command, shown + line)
    return steps


def test_the_console_session_prints_what_the_readme_shows():
    served = Served(simulator_commands()[0][0])
    env = clean_env(BMSIM_URL=served.url, TERM="dumb")
    try:
        printed = [(command, in_a_terminal(command, env)) for command, _ in session()]
    finally:
        served.stop()

    assert printed == session()
