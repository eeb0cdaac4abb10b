"""The simulator over a real socket (waitress), driven by a plain `requests.Session`."""

from __future__ import annotations

import threading
from decimal import Decimal
from xml.etree import ElementTree as ET

import pytest
import requests
import waitress


@pytest.fixture
def base_url(app):
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.task_dispatcher.shutdown()
    server.trigger.pull_trigger(server.close)  # closed in the server's own thread, at once
    thread.join(timeout=5)
    assert not thread.is_alive()


@pytest.fixture
def http():
    with requests.Session() as http:
        yield http


def test_auth_order_and_event_feed_work_over_a_socket(base_url, http):
    url = f"{base_url}/billmgr"

    login = {"func": "auth", "username": "reseller", "password": "s3cret"}
    auth = http.get(url, params=login, timeout=5)
    sid = ET.fromstring(auth.content).find("auth").get("id")
    assert http.cookies["billmgrses5"] == sid

    ordered = http.post(
        url,
        data={
            "func": "vds.order.param",
            "out": "json",
            "pricelist": 5,
            "period": 1,
            "sok": "ok",
            "skipbasket": "on",
            "remoteid": "r-1",
        },
        timeout=5,
    )
    service_id = ordered.json()["doc"]["id"]["$"]

    feed = http.get(url, params={"func": "itemevent", "out": "json", "auth": sid}, timeout=5)
    (event,) = feed.json()["doc"]["elem"]
    assert (event["type"]["$"], event["item"]["$"], event["remoteid"]["$"]) == (
        "open",
        service_id,
        "r-1",
    )
    user = ET.fromstring(http.get(url, params={"func": "whoami"}, timeout=5).content).find("user")
    assert Decimal(user.get("balance")) == 90


def test_down_fault_over_a_socket_answers_a_server_error_and_does_nothing(base_url, http):
    http.post(f"{base_url}/_sim/faults", json={"kind": "down", "times": 1}, timeout=5)
    params = {"func": "vds.order.param", "authinfo": "reseller:s3cret", "pricelist": 5}
    params |= {"period": 1, "sok": "ok", "skipbasket": "on"}

    refused = http.post(f"{base_url}/billmgr", data=params, timeout=5)

    assert refused.status_code >= 500
    assert refused.headers["X-Simulator-Fault"] == "down"
    assert http.get(f"{base_url}/_sim/services", timeout=5).json() == {"services": []}
    answered = http.post(f"{base_url}/billmgr", data=params, timeout=5)
    assert ET.fromstring(answered.content).findtext("id") == "1000"
