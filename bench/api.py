"""Figure 1: one API call through the simulator, against a bare endpoint returning the same bytes.

Both apps get the very same requests (a form POST, as the reseller's client sends them) over the
same transport: in-process through the `requests` adapter (`in_process_session`) or the light
client scenarios use (`in_process_client`), or a `requests.Session` to waitress on a local port
in another process. The difference is what the simulator itself costs per call; the lighter
the transport, the more that shows.
"""

from __future__ import annotations

import re

import requests
from flask import Flask, Response, request

from bench.common import START, Figure, paired, per_call, served, world
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
TARGETS = {"in-process, requests adapter": 1.5, "in-process, light client": 1.5, "socket": 1.2}
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
        body, mimetype = replies[request.values.get("func", "")]
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
    return figures


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
            Figure(
                number=1,
                name=f"{name}, {transport}",
                value=value * 1000,
                floor=floor * 1000,
                ratio=value / floor,
                target=f"<= {limit}x",
                met=value / floor <= limit,
                unit="ms/call",
                floor_name="bare Flask endpoint, same bytes, same transport",
            )
        )
    return figures
