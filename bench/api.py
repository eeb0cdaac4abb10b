"""Figure 1: one API call through the simulator, against a bare endpoint returning the same bytes.

Both apps get the very same requests (a form POST, as the reseller's client sends them) over the
same client: in-process through the `requests` adapter (`in_process_session`) or the light
client scenarios use (`in_process_client`), or a `requests.Session` to waitress on a local port
in another process. In-process, the simulator's API calls go straight to its dispatcher and the
bare endpoint's through WSGI: the figure is what a scenario pays per call. The bare endpoint
reads the form as leanly as the simulator does (the same body read and byte parser), so the
difference is what the simulator itself costs.

Then the cost of a call against the size of the seller: a look-up by remoteid, a service's form
by id and a list of the caller's 20 services, with 100,000 services of another account beside
them, against the same calls with none.
"""

from __future__ import annotations

import re

import requests
from flask import Flask, Response, request

from bench.common import START, Figure, paired, per_call, served, world
from simulator.api import decoded_pairs, read_body
from simulator.app import create_app
from simulator.transport import in_process_client, in_process_session
from simulator.world import seller_from_world

CALLS = {
    "whoami": {"func": "whoami"},
    "pricelist.export": {"func": "pricelist.export"},
    "an order": {
        "func": "vds.order.param",
        "pricelist": "5",
        "period": "1",
        "ostempl": "debian-12",
        "addon_11": "2048",
        "skipbasket": "on",
        "clicked_button": "finish",
        "sok": "ok",
    },
}
TARGETS = {"in-process, requests adapter": 1.3, "in-process, light client": 1.3, "socket": 1.1}
SIZE_LIMIT = 2.0  # a call with 100,000 other services, over the same call with none
LISTED = 20
IN_PROCESS = {
    "in-process, requests adapter": in_process_session,
    "in-process, light client": in_process_client,
}


def simulator_app() -> Flask:
    return create_app(seller_from_world(world("reseller"), START))


def bare_app(replies: dict[str, tuple[bytes, str]]) -> Flask:
    """The floor: a Flask endpoint that answers each `func` with bytes recorded beforehand."""
    app = Flask("bare")

    @app.route("/billmgr", methods=["GET", "POST"])
    def billmgr() -> Response:
        # The form read as the simulator reads it: the raw body, the same byte parser.
        pairs, _ = decoded_pairs(request.query_string, "query")
        if request.method == "POST":
            pairs += decoded_pairs(read_body(request.environ), "body")[0]
        body, mimetype = replies[dict(reversed(pairs)).get("func", "")]
        return Response(body, mimetype=mimetype)

    return app


def log_in(session: requests.Session, endpoint: str) -> str:
    reply = session.post(
        endpoint, data={"func": "auth", "username": "reseller", "password": "s3cret"}, timeout=10
    )
    return re.search(rb'id="([0-9a-f]+)"', reply.content).group(1).decode()


def record_replies() -> dict[str, tuple[bytes, str]]:
    """What the simulator answers to each call, for the bare endpoint to send back."""
    session = in_process_session(simulator_app())
    endpoint = "http://simulator/billmgr"
    sid = log_in(session, endpoint)
    replies = {}
    for params in CALLS.values():
        reply = session.post(endpoint, data={"out": "xml", "auth": sid, **params}, timeout=10)
        replies[params["func"]] = (reply.content, reply.headers["Content-Type"].split(";")[0])
    return replies


def measure(quick: bool) -> list[Figure]:
    replies = record_replies()
    repetitions, seconds = (3, 0.1) if quick else (7, 0.4)
    figures = []
    for transport, limit in TARGETS.items():
        if transport in IN_PROCESS:
            sim = (IN_PROCESS[transport](simulator_app()), "http://simulator")
            bare = (IN_PROCESS[transport](bare_app(replies)), "http://simulator")
            figures += _compare(transport, limit, sim, bare, repetitions, seconds)
            continue
        with served(simulator_app) as sim_url, served(lambda: bare_app(replies)) as bare_url:
            sim, bare = requests.Session(), requests.Session()
            sim.trust_env = bare.trust_env = False  # as the harness's socket session
            figures += _compare(
                transport, limit, (sim, sim_url), (bare, bare_url), repetitions, seconds
            )
            sim.close()
            bare.close()
    return figures + measure_sizes(quick)


def _compare(transport, limit, sim, bare, repetitions, seconds) -> list[Figure]:
    (sim_session, sim_url), (bare_session, bare_url) = sim, bare
    sid = log_in(sim_session, sim_url + "/billmgr")
    # The same requests to both: the floor's session carries the session cookie too.
    bare_session.cookies.update(sim_session.cookies)
    figures = []
    for name, params in CALLS.items():
        data = {"out": "xml", "auth": sid, **params}

        def call(session, url, data=data):
            reply = session.post(url + "/billmgr", data=data, timeout=10)
            assert reply.status_code == 200 and b"<error" not in reply.content, reply.content

        value, floor = paired(
            lambda: per_call(lambda: call(sim_session, sim_url), seconds),
            lambda: per_call(lambda: call(bare_session, bare_url), seconds),
            repetitions,
        )
        figures.append(
            Figure.within(
                1,
                f"{name}, {transport}",
                value * 1000,
                floor * 1000,
                limit,
                unit="ms/call",
                floor_name="bare Flask endpoint, same bytes, same client, form read as leanly",
            )
        )
    return figures


def sized_app(others: int) -> tuple[Flask, int]:
    """A simulator with the caller's 20 services and `others` of another account; one's id."""
    seller = seller_from_world(world("reseller", "other"), START)
    other = seller.accounts["other"]
    for n in range(others):
        seller.order(other, "vds", 5, 1, remoteid=f"other-{n}", params={})
    mine = [
        seller.order(seller.accounts["reseller"], "vds", 5, 1, remoteid=f"mine-{n}", params={})
        for n in range(LISTED)
    ]
    return create_app(seller), mine[LISTED // 2].id


def measure_sizes(quick: bool) -> list[Figure]:
    """Look-ups and a list with many other services, against the same with none."""
    others = 10_000 if quick else 100_000
    repetitions, seconds = (3, 0.1) if quick else (5, 0.3)
    (small, small_id), (large, large_id) = sized_app(0), sized_app(others)
    clients = in_process_client(small), in_process_client(large)
    login = {"out": "xml", "authinfo": "reseller:s3cret"}
    calls = {
        "a service by remoteid": lambda _: {"func": "vds", "remoteid": f"mine-{LISTED // 2}"},
        "a service's form by id": lambda sid: {"func": "vds.edit", "elid": str(sid)},
        f"a list of the caller's {LISTED}": lambda _: {"func": "vds"},
    }
    figures = []
    for name, params in calls.items():

        def call(client, sid, params=params):
            reply = client.post("http://simulator/billmgr", data={**login, **params(sid)})
            assert reply.status_code == 200 and b"<error" not in reply.content, reply.content

        value, floor = paired(
            lambda: per_call(lambda: call(clients[1], large_id), seconds),
            lambda: per_call(lambda: call(clients[0], small_id), seconds),
            repetitions,
        )
        figures.append(
            Figure.within(
                1,
                f"{name}, {others:,} other services, in-process",
                value * 1000,
                floor * 1000,
                SIZE_LIMIT,
                unit="ms/call",
                floor_name="the same call with no other services",
            )
        )
    return figures
