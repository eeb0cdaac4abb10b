"""The call log: every call's fields kept, secrets masked, long values cut, within its budget."""

from __future__ import annotations

import gc
import json
import tracemalloc
from xml.etree import ElementTree as ET

import pytest

from simulator.app import seller_of
from simulator.calllog import BUDGET, PARAMS_KEPT, REPLY_CHARS, VALUE_CHARS, CallLog, footprint

URL = "/billmgr"
FIELDS = {"id", "at", "func", "params", "account", "status", "result", "reply"}


def calls(client) -> list[dict]:
    return client.get("/_sim/calls").json["calls"]


def log_in(client, out: str = "xml") -> str:
    reply = client.post(
        URL, data={"func": "auth", "username": "reseller", "password": "s3cret", "out": out}
    )
    if out == "json":
        return json.loads(reply.data)["doc"]["auth"]["$id"]
    return ET.fromstring(reply.data).find("auth").get("id")


# -- masking ---------------------------------------------------------------------------------


@pytest.mark.parametrize("out", ["xml", "json"])
def test_a_new_session_id_is_masked_in_the_auth_reply_the_log_keeps(client, out):
    sid = log_in(client, out)

    (entry,) = calls(client)
    assert sid not in json.dumps(entry)
    assert "***" in entry["reply"]


def test_session_ids_passwords_keys_and_tokens_are_masked_in_logged_parameters(client):
    sid = log_in(client)
    client.post(URL, data={"func": "whoami", "auth": sid})
    client.post(URL, data={"func": "whoami", "authinfo": "reseller:s3cret"})
    client.post(URL, data={"func": "auth", "username": "reseller", "key": "k" * 16})
    client.post(
        URL,
        data={"func": "user.edit", "authinfo": "reseller:s3cret", "passwd": "p1-secret"}
        | {"confirm": "p1-secret", "api_token": "tok-secret", "client_secret": "cs-secret"},
    )

    logged = calls(client)
    assert logged[1]["params"]["auth"] == "***"
    assert logged[2]["params"]["authinfo"] == "reseller:***"
    assert logged[3]["params"]["key"] == "***"
    assert {
        logged[4]["params"][k] for k in ("passwd", "confirm", "api_token", "client_secret")
    } == {"***"}
    text = json.dumps(logged)
    for secret in (sid, "s3cret", "k" * 16, "p1-secret", "tok-secret", "cs-secret"):
        assert secret not in text


def test_a_session_sent_as_the_cookie_is_never_logged(client):
    sid = log_in(client)  # the test client keeps the cookie and sends it from now on

    client.post(URL, data={"func": "whoami"})

    assert calls(client)[1]["account"] == "reseller"
    assert sid not in json.dumps(calls(client))


# -- long values and many of them ------------------------------------------------------------


def test_a_call_of_huge_values_keeps_every_field_with_long_values_cut(client):
    huge = "x" * 300_000  # three of them stay under the API's 1 MiB limit on a request
    params = {"func": "vds" + huge, "authinfo": huge + ":pw", "remoteid": huge}
    params |= {f"p{n}": "v" for n in range(100)}

    client.post(URL, data=params)

    (entry,) = calls(client)
    assert set(entry) == FIELDS
    assert (entry["status"], entry["result"]) == (200, "unknown_func")
    assert entry["func"].startswith("vdsxxx") and entry["func"].endswith("[300003 characters]")
    assert len(entry["func"]) < VALUE_CHARS + 30
    assert entry["params"]["authinfo"].endswith(":***")
    assert len(entry["params"]) == PARAMS_KEPT + 1
    assert entry["params"]["..."] == f"{len(params) - PARAMS_KEPT} more parameters not kept"
    assert entry["reply"].startswith("<?xml") and len(entry["reply"]) <= REPLY_CHARS
    assert len(json.dumps(entry)) < 20_000


def test_a_long_reply_is_kept_by_its_start(client):
    client.post(URL, data={"func": "pricelist.export"})

    (entry,) = calls(client)
    assert len(entry["reply"]) == REPLY_CHARS
    assert entry["reply"].startswith('<?xml version="1.0" encoding="UTF-8"?>\n<doc>')


# -- the budget ------------------------------------------------------------------------------


def entry(n: int, reply: str = "r" * 1000) -> dict:
    return {"at": "2026-01-01 00:00:00", "func": f"f{n}", "params": {"func": f"f{n}"}} | {
        "account": "reseller",
        "status": 200,
        "result": "ok",
        "reply": reply,
    }


def test_each_call_is_logged_at_the_simulated_moment_it_was_made(client):
    for _ in range(2):
        client.post(URL, data={"func": "whoami", "authinfo": "reseller:s3cret"})
        client.post("/_sim/clock", json={"advance": "1h"})
    client.post(URL, data={"func": "whoami", "authinfo": "reseller:s3cret"})

    assert [entry["at"] for entry in calls(client)] == [
        "2026-01-01 00:00:00",
        "2026-01-01 01:00:00",
        "2026-01-01 02:00:00",
    ]


def test_the_log_drops_its_oldest_entries_to_stay_within_its_budget():
    log = CallLog(budget=50_000)

    for n in range(1000):
        log.append(entry(n))

    kept = list(log)
    assert log.size <= 50_000
    assert 10 < len(kept) < 1000
    assert kept[-1]["func"] == "f999" and kept[-1]["id"] == 1000
    assert [e["id"] for e in kept] == list(range(1001 - len(kept), 1001))


def test_ids_go_on_counting_after_the_log_is_cleared(client):
    client.post(URL, data={"func": "pricelist.export"})
    client.delete("/_sim/calls")

    client.post(URL, data={"func": "pricelist.export"})

    assert [e["id"] for e in calls(client)] == [2]


def test_a_hundred_calls_of_a_megabyte_keep_the_log_within_a_few_hundred_kilobytes(app, client):
    body = {"func": "whoami", "authinfo": "reseller:s3cret", "junk": "j" * 1_000_000}
    log = seller_of(app).calls
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(100):
            client.post(URL, data=body)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert len(log) == 100
    assert log.size < 400_000
    assert kept < 2_000_000, f"{kept} bytes kept after 100 MB of requests"


def test_the_default_budget_is_sixteen_megabytes():
    assert CallLog().budget == BUDGET == 16 * 2**20


def test_the_log_keeps_only_the_start_of_a_reply_however_it_is_given():
    log = CallLog()

    kept = log.append(entry(1, reply="r" * 10 * REPLY_CHARS))

    assert kept["reply"] == "r" * REPLY_CHARS


def test_the_size_the_log_counts_is_the_footprint_of_what_it_keeps():
    log = CallLog()
    long = "x" * (VALUE_CHARS + 50)
    params = {"func": "vds", "auth": "sid", "authinfo": "a:b", "n": 7, "k" * 80: long}
    params |= {f"p{n}": str(n) for n in range(PARAMS_KEPT + 5)}
    log.append({"at": "2026-01-01 00:00:00", "func": "vds", "params": params, "status": 200})
    log.append({"at": "now", "func": long, "params": {}, "account": None, "reply": "<doc/>"})

    assert log.size == sum(footprint(entry) for entry in log)
