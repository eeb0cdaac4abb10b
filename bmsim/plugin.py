"""The pytest plugin (entry point `pytest11`): fixtures `billmanager`, `mock_billmanager` and
`reseller_engine`, and scenario files collected as tests.

`billmanager` is a fresh simulated seller for each test: served on a loopback port (one
server per test session, so per xdist worker, with a new seller per test) unless the test
asks for it in-process, by `@pytest.mark.billmanager(in_process=True)` or by the fixture
parameter (`@pytest.mark.parametrize("billmanager", ["socket", "in_process"], indirect=True)`).
`mock_billmanager` is always in-process, routing `requests` and `httpx` calls to its URL.
The marker also gives the world: `@pytest.mark.billmanager(world={...} or "file.yaml")`.
`--bmsim-html FILE` and `--bmsim-coverage FILE` report every scenario file the tests run.

`reseller_engine` is the reseller engine on a database in the test's `tmp_path`, selling what
the test's `billmanager` sells, on its clock (a scenario world's `reseller` section set up).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

MARKER = "billmanager"
OPTIONS = ("world", "in_process", "url", "start", "seed")
MODES = ("socket", "in_process")


REPORTS = {"bmsim_html": "--bmsim-html", "bmsim_coverage": "--bmsim-coverage"}
RECORDER = pytest.StashKey()
WORKER_OUTPUT = "bmsim_scenarios"


def pytest_addoption(parser) -> None:
    group = parser.getgroup("bmsim", "the simulated BILLmanager")
    group.addoption(
        "--bmsim-html",
        metavar="FILE",
        help="write an HTML report of every scenario file the tests run (scenarios.runner)",
    )
    group.addoption(
        "--bmsim-coverage", metavar="FILE", help="write the coverage map (JSON) of those runs"
    )


def _start_recording(config) -> None:
    """Record every scenario run in this process (each xdist worker sends its own back)."""
    targets = {key: config.getoption(key) for key in REPORTS if config.getoption(key)}
    if not targets:
        return
    from scenarios.cli import writable
    from scenarios.observer import install
    from scenarios.recorder import Recorder

    if not hasattr(config, "workerinput"):
        for key, target in targets.items():
            problem = writable(REPORTS[key], target)
            if problem:
                raise pytest.UsageError(problem)
    config.stash[RECORDER] = Recorder()
    install(config.stash[RECORDER])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """An xdist worker finished: its scenario runs join the controller's."""
    recorder = node.config.stash.get(RECORDER, None)
    if recorder is not None:
        recorder.files += node.workeroutput.get(WORKER_OUTPUT, [])


def pytest_sessionfinish(session) -> None:
    config = session.config
    recorder = config.stash.get(RECORDER, None)
    if recorder is None:
        return
    from scenarios.observer import install

    install(None)
    if hasattr(config, "workerinput"):
        config.workeroutput[WORKER_OUTPUT] = recorder.files
        return
    from scenarios import coverage, report

    files = sorted(recorder.files, key=lambda record: record["path"])
    if config.getoption("bmsim_html"):
        report.write_html(files, config.getoption("bmsim_html"), title="Scenario runs under pytest")
    if config.getoption("bmsim_coverage"):
        coverage.write_json(files, config.getoption("bmsim_coverage"))


def pytest_terminal_summary(terminalreporter, config) -> None:
    if config.stash.get(RECORDER, None) is None:
        return
    count = len(config.stash[RECORDER].files)
    for key, what in (("bmsim_html", "report"), ("bmsim_coverage", "coverage map")):
        if config.getoption(key):
            terminalreporter.write_line(
                f"bmsim: {what} of {count} scenario files: {config.getoption(key)}"
            )


def pytest_configure(config) -> None:
    _start_recording(config)
    config.addinivalue_line(
        "markers",
        f"{MARKER}(world=None, *, in_process=False, url=None, start=None, seed=0): the simulated "
        "BILLmanager that the billmanager and mock_billmanager fixtures give this test",
    )


def _options(request) -> dict:
    """The marker's options, the closest marker winning; a misspelt one is refused by name."""
    options: dict = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if len(marker.args) > 1:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes one positional argument, world")
        given = dict(zip(["world"], marker.args, strict=False)) | marker.kwargs
        unknown = sorted(set(given) - set(OPTIONS))
        if unknown:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER}: unknown option {unknown[0]!r}; expected one of "
                + ", ".join(OPTIONS)
            )
        options |= given
    world = options.get("world")
    if isinstance(world, str | Path) and not Path(world).is_absolute():
        beside_test = Path(request.node.path).parent / world
        options["world"] = beside_test if beside_test.exists() else Path(world)
    return options


@pytest.fixture(scope="session")
def billmanager_server():
    """One simulator served on a free loopback port for the session (each xdist worker its own)."""
    from simulator.app import create_app
    from simulator.server import LocalServer

    with LocalServer(create_app(), threads=8) as server:
        yield server


@pytest.fixture
def billmanager(request):
    """A fresh simulated BILLmanager for this test: a `SellerSide` with `.url` and `.api_url`."""
    from bmsim.mock import DEFAULT_URL, MockBillmanager
    from simulator.side import SocketSide

    options = _options(request)
    mode = getattr(request, "param", "in_process" if options.get("in_process") else "socket")
    if mode not in MODES:
        raise pytest.UsageError(f"billmanager: expected a parameter in {MODES}, got {mode!r}")
    world = dict(world=options.get("world"), start=options.get("start"))
    world["seed"] = options.get("seed", 0)
    if mode == "in_process":
        with MockBillmanager(options.get("url") or DEFAULT_URL, **world) as mock:
            yield mock
        return
    if options.get("url"):
        raise pytest.UsageError(f"@pytest.mark.{MARKER}(url=...) is for an in-process simulator")
    server = request.getfixturevalue("billmanager_server")
    state = server.app.extensions["simulator"]
    state.state_dir = request.getfixturevalue("tmp_path") / "snapshots"  # this test's alone
    with SocketSide(server.url) as served:
        served.load(world["world"], start=world["start"], seed=world["seed"])
        yield served
    state.state_dir = None


@pytest.fixture(name="mock_billmanager")
def mock_billmanager_fixture(request):
    """`mock_billmanager(url)` started for this test; `url` and `world` from the marker."""
    from bmsim.mock import DEFAULT_URL, MockBillmanager

    options = _options(request)
    url = options.get("url") or DEFAULT_URL
    with MockBillmanager(
        url, options.get("world"), start=options.get("start"), seed=options.get("seed", 0)
    ) as mock:
        yield mock


@pytest.fixture
def reseller_engine(request, billmanager, tmp_path):
    """The reseller engine on a database of this test's, its seller the test's `billmanager`."""
    from bmsim.engine import ResellerEngine

    with ResellerEngine(billmanager, tmp_path / "reseller.db") as engine:
        engine.load(_reseller_section(_options(request).get("world")))
        yield engine


def _reseller_section(world) -> dict:
    """A scenario world's `reseller` section (a world of the seller alone has none)."""
    if isinstance(world, str | Path):
        world = yaml.safe_load(Path(world).read_text(encoding="utf-8"))  # `billmanager` read it
    if not isinstance(world, dict) or "seller" not in world:
        return {}
    return world.get("reseller") or {}
