"""The README's reseller walkthrough, run as written: each `$ reseller ...` line prints what the
README shows under it (at a terminal 100 columns wide, or piped with `| cat`), against a
simulator served from the README's own world file, and the daemon logs what it shows."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import requests

import run
from tests.helpers import STYLES, Screen

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SHOWN_URL = "http://127.0.0.1:8080"
WALL = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(wall\)")


def engine_section() -> str:
    text = README.read_text()
    return text[text.index("## The reseller engine") : text.index("## Security")]


def blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def sessions(block: str) -> list[tuple[str, list[str]]]:
    """A console block's commands (continued lines joined) and the lines each printed."""
    shown: list[tuple[str, list[str]]] = []
    lines = iter(block.splitlines())
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + " " + next(lines).strip()
            shown.append((command, []))
        else:
            shown[-1][1].append(line)
    return shown


def reseller(prefix: list[str], command: str, url: str, capsys) -> list[str]:
    """`reseller ARGS [| cat] [; echo "exit $?"]` in-process: what a terminal shows."""
    echo = command.endswith('; echo "exit $?"')
    command = command.removesuffix('; echo "exit $?"')
    piped = command.endswith(" | cat")
    args = shlex.split(command.removesuffix(" | cat").replace(SHOWN_URL, url))[1:]
    screen, captured = Screen(), sys.stdout
    sys.stdout = captured if piped else screen
    try:
        code = run.main(["reseller", *prefix, *args])
    finally:
        sys.stdout = captured
    out, err = capsys.readouterr()
    printed = STYLES.sub("", (out if piped else screen.getvalue()) + err).splitlines()
    assert code == 0 or echo, f"{command}: exit {code}\n{err}"
    return printed + ([f"exit {code}"] if echo else [])


def curl(command: str, url: str) -> list[str]:
    """The README's `curl -s -o /dev/null -X POST URL -H ... -d JSON`, done by requests."""
    words = shlex.split(command.replace(SHOWN_URL, url))
    target = next(word for word in words if word.startswith("http"))
    body = json.loads(words[words.index("-d") + 1])
    assert words[1:5] == ["-s", "-o", "/dev/null", "-X"], "it prints nothing"
    assert requests.post(target, json=body, timeout=10).status_code == 200
    return []


def test_the_readmes_reseller_walkthrough_prints_what_it_shows(tmp_path, monkeypatch, capsys):
    section = engine_section()
    setup = blocks(section, "sh")[0]
    world = re.search(r"cat > seller\.yaml <<'EOF'\n(.*?)\nEOF\n", setup, re.S)[1]
    (tmp_path / "seller.yaml").write_text(world + "\n")
    assert "\npython run.py simulator --world seller.yaml\n" in setup
    simulator = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "simulator", "--world", "seller.yaml"]
        + ["--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", simulator.stdout.readline())[0]
        walk(section, url, tmp_path, monkeypatch, capsys)
    finally:
        simulator.kill()
        simulator.wait(timeout=5)
        simulator.stdout.close()


def walk(section: str, url: str, here: Path, monkeypatch, capsys) -> None:
    drive = blocks(section, "sh")[1]
    function = re.search(r'^reseller\(\) \{ python run.py reseller (.+?) "\$@"; \}$', drive, re.M)
    prefix = shlex.split(function[1].replace(SHOWN_URL, url))
    assert "printf 's3cret\\n' > seller.password && chmod 600 seller.password" in drive
    (here / "seller.password").write_text("s3cret\n")
    monkeypatch.chdir(here)
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("SIMULATOR_TOKEN", raising=False)
    *walkthrough, daemon = blocks(section, "console")
    for block in walkthrough:
        for command, shown in sessions(block):
            if command.startswith("curl "):
                printed = curl(command, url)
            else:
                assert command.startswith("reseller "), command
                printed = reseller(prefix, command, url, capsys)
            printed = [line.replace(url, SHOWN_URL) for line in printed]
            assert printed == shown, f"$ {command}"
    run_daemon(daemon, prefix, url)


def run_daemon(block: str, prefix: list[str], url: str) -> None:
    """The daemon's block: it logs what the README shows, and ^C stops it."""
    ((command, shown),) = sessions(block)
    assert command == "reseller daemon"
    wanted = [line.removeprefix("^C") for line in shown]
    daemon = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "reseller", *prefix, "daemon"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines, arrived = [], threading.Event()

    def read() -> None:
        for line in daemon.stdout:
            lines.append(WALL.sub("WALL (wall)", line.rstrip("\n").replace(url, SHOWN_URL)))
            if len(lines) == len(wanted) - 1:
                arrived.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert arrived.wait(15), "\n".join(lines)
        daemon.send_signal(signal.SIGINT)
        assert daemon.wait(timeout=15) == 0, daemon.stderr.read()
        reader.join(timeout=5)
    finally:
        daemon.kill()
        daemon.stdout.close()
        daemon.stderr.close()
    assert lines == [WALL.sub("WALL (wall)", line) for line in wanted]
