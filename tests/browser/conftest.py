"""Headless Chromium (Debian's `chromium`) driven by Playwright, and simulators for it to open.

Without Chromium or Playwright the browser tests skip, saying which is missing; with
`REQUIRE_BROWSER=1` (as `.ci/run` sets) a missing browser fails them instead.
"""

from __future__ import annotations

import importlib.util
import io
import os
import threading
from pathlib import Path

import pytest
from rich.console import Console

from simulator.server import LocalServer

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# CI runs as root on a closed network: no sandbox, and nothing that reaches out.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"


def missing_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed: pip install -e '.[test]'"
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM)"
    return None


# Package, not session: Playwright's sync API keeps its asyncio loop running in this thread
# while it is open, so a later test's `asyncio.run` (the httpx mock's) would be refused.
@pytest.fixture(scope="package")
def browser():
    problem = missing_browser()
    if problem:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1, but {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def expect(browser):
    """Playwright's `expect`, which waits for what a person would see (5 s at most)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


@pytest.fixture
def page(browser):
    """A fresh tab (own cookies) that fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def shoot():
    """Save a full-page screenshot as a test artefact in reports/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(tab, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take


def close_tabs(browser) -> None:
    """Close every tab first, so no page goes on polling a server as it closes."""
    for context in browser.contexts:
        context.close()


@pytest.fixture
def serve(browser):
    """Serve a Flask app on a free loopback port; its base URL."""
    servers = []

    def start(app) -> str:
        servers.append(LocalServer(app))
        return servers[-1].url

    yield start
    close_tabs(browser)
    for server in servers:
        server.close()


@pytest.fixture
def demo(browser):
    """`run.py demo --keep` in a thread: the URL it serves and what it printed."""
    from scenarios.demo import drive

    stop, ready, printed = threading.Event(), threading.Event(), io.StringIO()
    urls: list[str] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    thread = threading.Thread(
        target=drive, args=(Console(file=printed, width=120), stop, on_ready), daemon=True
    )
    thread.start()
    assert ready.wait(30), "the demo did not start serving"
    yield urls[0], printed
    close_tabs(browser)
    stop.set()
    thread.join(10)
