"""`mock_billmanager(url)`: `requests` and `httpx` calls to one URL reach an in-process simulator.

As a context manager, a decorator (of functions, coroutines and test classes) and a fixture;
no socket is opened for it, and calls to every other URL go where they always went.
"""

from __future__ import annotations

import asyncio
import socket
from decimal import Decimal

import httpx
import pytest
import requests

from bmsim import SellerRefused, mock_billmanager
from bmsim.mock import ROUTER, MockBillmanager
from simulator.app import create_app
from simulator.server import LocalServer
from tests.conftest import WORLD

URL = "https://billing.example.com"
ORDER = {"func": "vds.order.param", "authinfo": "reseller:s3cret", "pricelist": 5, "period": 1}
ORDER |= {"sok": "ok", "skipbasket": "on", "out": "json"}


def order_reply(reply) -> int:
    """The new service's id in an order's JSON reply."""
    return int(reply.json()["doc"]["id"]["$"])


def order(post, base: str = URL, pricelist: int = 5) -> int:
    """An order through the BILLmanager API with `post` (requests' or httpx's); its id."""
    return order_reply(post(f"{base}/billmgr", data=ORDER | {"pricelist": pricelist}))


@pytest.fixture
def refusing_url():
    """A loopback URL whose port is bound and never listens: every connection is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


def test_as_a_context_manager_requests_reach_the_simulator_and_the_seller_side_sees_them():
    with mock_billmanager(URL, world=WORLD) as seller:
        service_id = order(requests.post)

        assert seller.service(service_id)["status"] == "active"
        assert seller.balance("reseller") == Decimal(90)
        assert [c["func"] for c in seller.calls()] == ["vds.order.param"]


def test_after_the_mock_stops_calls_to_its_url_go_to_the_network_again(refusing_url):
    with mock_billmanager(refusing_url, world=WORLD):
        assert order(requests.post, refusing_url) == 1000

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{refusing_url}/billmgr", timeout=2)
    assert ROUTER.mocks == [] and ROUTER.originals == {}


def test_calls_to_other_urls_are_untouched():
    app = create_app()
    with LocalServer(app, threads=1) as elsewhere, mock_billmanager(URL, world=WORLD):
        reply = requests.get(f"{elsewhere.url}/_sim/clock", timeout=5)

    assert reply.json()["mode"] == "manual"
    assert list(app.extensions["simulator"].seller.calls) == []  # a control call is not logged


def test_only_the_mocked_path_and_origin_are_routed():
    mock = MockBillmanager("https://billing.example.com/manager")

    assert mock.handles("https://billing.example.com/manager/billmgr?func=whoami")
    assert mock.handles("https://BILLING.example.com:443/manager")
    assert not mock.handles("https://billing.example.com/managerial")
    assert not mock.handles("http://billing.example.com/manager/billmgr")
    assert not mock.handles("https://billing.example.com:8443/manager/billmgr")


def test_a_url_that_is_not_http_is_refused_naming_it():
    with pytest.raises(ValueError, match="url: expected http\\(s\\)://HOST"):
        mock_billmanager("billing.example.com")


def test_a_requests_session_keeps_the_simulators_session_cookie():
    with mock_billmanager(URL, world=WORLD), requests.Session() as http:
        http.get(
            f"{URL}/billmgr", params={"func": "auth", "username": "reseller", "password": "s3cret"}
        )
        who = http.get(f"{URL}/billmgr", params={"func": "whoami", "out": "json"})

    assert "billmgrses5" in http.cookies
    assert who.json()["doc"]["user"]["$name"] == "reseller"


def test_a_fault_reaches_requests_as_a_socket_would_give_it():
    with mock_billmanager(URL, world=WORLD) as seller:
        seller.fault("down", times=1)
        seller.fault("slow", times=1)
        with pytest.raises(requests.ConnectionError):
            order(requests.post)
        with pytest.raises(requests.ReadTimeout):
            order(requests.post)
        assert order(requests.post) == 1000


def test_httpx_clients_sync_and_async_reach_the_simulator():
    async def async_order() -> int:
        async with httpx.AsyncClient() as client:
            return order_reply(await client.post(f"{URL}/billmgr", data=ORDER))

    with mock_billmanager(URL, world=WORLD) as seller:
        with httpx.Client() as client:
            first = order_reply(client.post(f"{URL}/billmgr", data=ORDER))
        second = order_reply(httpx.post(f"{URL}/billmgr", data=ORDER))
        third = asyncio.run(async_order())

        assert [s["id"] for s in seller.services()] == [first, second, third]


def test_a_fault_reaches_httpx_as_a_socket_would_give_it():
    with mock_billmanager(URL, world=WORLD) as seller:
        seller.fault("lose_reply", times=1, func="*.order.param")
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{URL}/billmgr", data=ORDER)
        seller.fault("slow", times=1)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{URL}/billmgr", data=ORDER)

        assert len(seller.services()) == 1  # a lost reply: the order was placed all the same


def test_httpx_to_other_urls_is_untouched(refusing_url):
    with mock_billmanager(URL, world=WORLD), pytest.raises(httpx.ConnectError):
        httpx.get(f"{refusing_url}/billmgr", timeout=2)


billing = mock_billmanager(URL, world=WORLD)


@billing
def test_as_a_decorator_each_call_begins_with_a_fresh_seller():
    order(requests.post)
    assert len(billing.services()) == 1


def test_a_decorated_function_called_twice_starts_afresh_each_time():
    mock = mock_billmanager(URL, world=WORLD)

    @mock
    def place() -> list:
        order(requests.post)
        return mock.services()

    assert len(place()) == 1
    assert len(place()) == 1  # not 2: the second call had a new seller
    assert ROUTER.mocks == []


def test_a_decorated_coroutine_runs_with_the_mock_started():
    mock = mock_billmanager(URL, world=WORLD)

    @mock
    async def place() -> int:
        async with httpx.AsyncClient() as client:
            return order_reply(await client.post(f"{URL}/billmgr", data=ORDER))

    assert asyncio.run(place()) == 1000


@mock_billmanager
def test_bare_decorator_mocks_the_default_url():
    reply = requests.get("http://billmanager.test/billmgr", params={"func": "whoami"})
    assert "auth" in reply.text  # an empty seller: no one to be


@mock_billmanager(URL, world=WORLD)
class TestADecoratedClass:
    def test_each_test_method_runs_with_the_mock(self):
        assert order(requests.post) == 1000

    def test_and_each_with_a_seller_of_its_own(self):
        assert order(requests.post) == 1000


def test_two_mocks_of_two_urls_each_get_their_own_calls():
    other = "https://other.example.com"
    with (
        mock_billmanager(URL, world=WORLD) as first,
        mock_billmanager(other, world=WORLD) as second,
    ):
        order(requests.post)
        order(requests.post, other)
        order(requests.post, other)

        assert (len(first.services()), len(second.services())) == (1, 2)


def test_the_mock_is_a_seller_side_refusals_included():
    with mock_billmanager(URL, world=WORLD) as seller:
        service_id = order(requests.post, pricelist=7)  # setup: manual
        seller.activate(service_id)

        with pytest.raises(SellerRefused) as refused:
            seller.activate(service_id)
        assert refused.value.type == "value"
        assert seller.api_url == f"{URL}/billmgr"


@pytest.mark.billmanager(url=URL, world=WORLD)
def test_the_fixture_takes_its_url_and_world_from_the_marker(mock_billmanager):
    order(requests.post)

    assert mock_billmanager.url == URL
    assert mock_billmanager.balance("reseller") == 90


def test_the_fixture_without_a_marker_mocks_the_default_url_with_an_empty_seller(mock_billmanager):
    assert mock_billmanager.url == "http://billmanager.test"
    assert mock_billmanager.services() == [] and mock_billmanager.state()["accounts"] == []
