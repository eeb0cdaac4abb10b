"""The pytest plugin: `billmanager`, fresh for each test, on a loopback socket or in-process.

The fixtures are used here as any suite would use them (the plugin is installed with the
package), and a suite written in a folder outside the repository runs against the installed
package in a pytest process of its own, with and without pytest-xdist.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
import requests

from simulator.side import SellerRefused
from tests.conftest import WORLD

ORDER = {"func": "vds.order.param", "authinfo": "reseller:s3cret", "pricelist": 5, "period": 1}
ORDER |= {"sok": "ok", "skipbasket": "on", "out": "json"}


def order(billmanager) -> int:
    reply = requests.post(billmanager.url + "/billmgr", data=ORDER, timeout=5)
    return int(reply.json()["doc"]["id"]["$"])


@pytest.mark.billmanager(world=WORLD)
def test_by_default_the_simulator_answers_on_a_loopback_port(billmanager):
    service_id = order(billmanager)

    assert billmanager.url.startswith("http://127.0.0.1:")
    assert billmanager.api_url == billmanager.url + "/billmgr"
    assert billmanager.service(service_id)["status"] == "active"
    assert billmanager.balance("reseller") == 90


@pytest.mark.billmanager(world=WORLD, in_process=True)
def test_in_process_on_request_no_socket_and_the_same_seller_side(billmanager):
    service_id = order(billmanager)

    assert billmanager.url == "http://billmanager.test"
    assert billmanager.service(service_id)["status"] == "active"


@pytest.mark.billmanager(world=WORLD)
@pytest.mark.parametrize("billmanager", ["socket", "in_process"], indirect=True)
def test_the_fixture_parameter_runs_a_test_both_ways(billmanager):
    billmanager.fault("error", times=1, func="*.order.param")

    failed = requests.post(billmanager.url + "/billmgr", data=ORDER, timeout=5)

    assert failed.status_code == 500 and billmanager.services() == []


@pytest.mark.billmanager(world="../scenarios/demo.yaml")
def test_a_world_file_is_found_beside_the_test_and_brings_its_start(billmanager):
    assert billmanager.balance("reseller") > 0
    assert billmanager.now == datetime(2026, 1, 1)


def test_without_a_marker_the_seller_is_empty_and_load_brings_a_world(billmanager):
    with pytest.raises(SellerRefused, match="no account 'reseller'"):
        billmanager.balance("reseller")

    billmanager.load(WORLD, start="2026-05-01T00:00:00")

    assert billmanager.balance("reseller") == 100
    assert billmanager.now == datetime(2026, 5, 1)


@pytest.mark.billmanager(world=WORLD)
@pytest.mark.parametrize("billmanager", ["socket", "in_process"], indirect=True)
@pytest.mark.parametrize("name", ["first", "second"])  # the second sees none of the first's
def test_snapshots_are_the_tests_own_and_bring_the_seller_back(billmanager, name):
    assert billmanager.snapshots() == []
    billmanager.snapshot(name)
    order(billmanager)

    billmanager.restore(name)

    assert billmanager.services() == [] and billmanager.balance("reseller") == 100
    assert billmanager.snapshots() == [name]


# -- a suite outside the repository -----------------------------------------------------------

OUTSIDE_SUITE = {
    "conftest.py": """
        import os

        import pytest


        @pytest.fixture
        def note(billmanager, worker_id):
            # Where each test's simulator answered, for the checks after the run.
            yield
            with open(os.environ["PORTS_FILE"], "a") as ports:
                ports.write(f"{worker_id} {billmanager.url}\\n")
    """,
    "world.yaml": """
        start: 2026-03-01T00:00:00Z
        seller:
          accounts:
            shop: {password: pw, balance: 50}
          tariffs:
            5: {intname: vds-1, type: vds, prices: {1: 10}, setup: manual}
        reseller:
          currency: EUR
          clients:
            bob: {balance: 30}
    """,
    "scenarios/order.yaml": """
        name: an order of mine becomes active once the staff set it up
        include: ../world.yaml
        reseller:
          modules:
            shop: {account: shop, password: pw}
        steps:
          - import: {module: shop, tariff: 5}
          - order: {client: bob, tariff: 5-vds-1, period: 1}
            as: vps
          - seller.activate: vps
          - wait: 5m
          - expect: {service: vps, status: active}
          - expect: {seller_balance: shop, equals: 40}
    """,
    "test_mine.py": """
        import pytest
        import requests

        ORDER = {"func": "vds.order.param", "authinfo": "shop:pw", "pricelist": 5, "period": 1,
                 "sok": "ok", "skipbasket": "on", "out": "json"}


        def order(url):
            return int(requests.post(url + "/billmgr", data=ORDER).json()["doc"]["id"]["$"])


        @pytest.mark.billmanager(world="world.yaml")
        @pytest.mark.parametrize("round", range(6))
        def test_each_test_gets_a_fresh_seller(billmanager, note, round):
            service = order(billmanager.url)
            assert [s["id"] for s in billmanager.services()] == [service] == [1000]
            billmanager.activate(service)
            assert billmanager.balance("shop") == 40


        @pytest.mark.billmanager(world="world.yaml", in_process=True)
        def test_in_process_too(billmanager):
            assert order(billmanager.url) == 1000
            assert billmanager.service(1000)["status"] == "ordered"


        @pytest.mark.billmanager(url="https://bm.example.com", world="world.yaml")
        def test_the_mock_fixture(mock_billmanager):
            assert order("https://bm.example.com") == 1000
            assert mock_billmanager.calls(func="*.order.param")[0]["account"] == "shop"


        @pytest.mark.billmanager(world="world.yaml")
        @pytest.mark.parametrize("billmanager", ["socket", "in_process"], indirect=True)
        def test_the_engine_sees_what_the_staff_did_after_its_poll(billmanager, reseller_engine):
            reseller_engine.connect("shop", "shop", "pw")
            tariff = reseller_engine.import_tariff("shop", 5)
            item = reseller_engine.order("bob", tariff, 1)
            billmanager.activate(reseller_engine.item(item).remote_id)
            assert reseller_engine.item(item).status_name == "ordered"
            reseller_engine.advance("5m")
            assert reseller_engine.item(item).status_name == "active"
            assert reseller_engine.client("bob").balance == 20
    """,
}


def run_outside(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """The suite above, written in `tmp_path`, run by pytest there in a process of its own."""
    suite = tmp_path / "suite"
    suite.mkdir()
    for name, text in OUTSIDE_SUITE.items():
        (suite / name).parent.mkdir(exist_ok=True)
        (suite / name).write_text(textwrap.dedent(text).lstrip())
    ports = tmp_path / "ports.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS"))}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options],
        cwd=suite,
        env=env | {"PORTS_FILE": str(ports)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    return done, ports.read_text().splitlines() if ports.exists() else []


def test_a_suite_outside_the_repository_uses_the_installed_plugin(tmp_path):
    done, ports = run_outside(tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "11 passed" in done.stdout  # 10 Python tests, 1 scenario file
    assert len(ports) == 6 and len({line.split()[1] for line in ports}) == 1  # one server, reused


def test_under_xdist_each_worker_serves_its_own_simulator_and_tests_stay_apart(tmp_path):
    done, ports = run_outside(tmp_path, "-n", "2")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "11 passed" in done.stdout
    by_worker: dict[str, set] = {}
    for line in ports:
        worker, url = line.split()
        by_worker.setdefault(worker, set()).add(url)
    assert set(by_worker) == {"gw0", "gw1"}
    assert all(len(urls) == 1 for urls in by_worker.values())
    assert by_worker["gw0"] != by_worker["gw1"]


def test_a_misspelt_marker_option_is_refused_by_name(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_typo.py").write_text(
        "import pytest\n\n@pytest.mark.billmanager(wrold={})\ndef test_x(billmanager):\n    pass\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode != 0
    assert "@pytest.mark.billmanager: unknown option 'wrold'" in done.stdout + done.stderr
