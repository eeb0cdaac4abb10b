"""Figure 2: the simulator under 8 concurrent clients over a socket, against the bare endpoint.

The server runs in a process of its own (waitress, 8 threads); the 8 clients are threads of
this process, each with one keep-alive `http.client` connection (light, so the server is what
limits), cycling through a list of 20 services, an order and a poll of its own event feed.
The bare endpoint gets the same requests and answers each with bytes the simulator gave.

The load is sustained for 60 seconds on a state that grows by every order, counted in 10-second
windows: the figure is the median window against the bare endpoint's, and the last window
against the first says whether the cost per call stays flat as the services pile up.

Afterwards the simulator is asked what it holds, and both sides' counts must agree: every
order a client saw accepted exists once, with its own remoteid, and its `open` event reached
that client exactly once.
"""

from __future__ import annotations

import http.client
import re
import statistics
import threading
import time
from urllib.parse import urlencode, urlsplit

import requests
from flask import Flask

from bench.api import bare_app
from bench.common import START, Figure, served, world
from simulator.app import create_app
from simulator.transport import in_process_client
from simulator.world import seller_from_world

CLIENTS = 8
LISTED = 20  # services on the account whose list every client reads
TARGET = 0.7
FLAT = 0.8  # the last window's throughput over the first's
EVENT = re.compile(rb"<elem><id>(\d+)</id><type>(\w+)</type><item>(\d+)</item>")
ORDERED = re.compile(rb"<doc><ok /><id>(\d+)</id>")


def simulator_app() -> Flask:
    seller = seller_from_world(world("shelf", *[f"load{n}" for n in range(CLIENTS)]), START)
    for n in range(LISTED):
        seller.create_service("shelf", 5, 1, params={"hostname": f"listed{n}"})
    return create_app(seller)


def requests_of(client: int) -> list[dict]:
    """One cycle of a client's calls: a list, an order and a poll."""
    login = f"authinfo=load{client}:s3cret"
    order = {
        "func": "vds.order.param",
        "pricelist": 5,
        "period": 1,
        "ostempl": "debian-12",
        "skipbasket": "on",
        "sok": "ok",
    }
    return [
        {"func": "vds", "authinfo": "shelf:s3cret"},
        {**order, "authinfo": login.partition("=")[2]},
        {"func": "itemevent", "authinfo": login.partition("=")[2]},
    ]


def record_replies() -> dict[str, tuple[bytes, str]]:
    """The simulator's answer to each kind of call, for the bare endpoint to send back."""
    client = in_process_client(simulator_app())
    replies = {}
    for params in requests_of(0):
        reply = client.post("http://simulator/billmgr", data={"out": "xml", **params})
        replies[params["func"]] = (reply.content, "text/xml")
    return replies


class Tally:
    """What the clients saw: calls, errors, accepted orders and received events, per client."""

    def __init__(self):
        self.calls = 0
        self.errors: list[str] = []
        self.ordered: dict[int, list[int]] = {n: [] for n in range(CLIENTS)}
        self.events: dict[int, list[tuple[int, bytes, int]]] = {n: [] for n in range(CLIENTS)}
        self.finished: list[float] = []  # when each call's reply came, perf_counter seconds
        self.lock = threading.Lock()

    def windows(self, began: float, window: float, count: int) -> list[float]:
        """Calls per second in each of `count` windows of `window` seconds from `began`."""
        counts = [0] * count
        for at in self.finished:
            n = int((at - began) // window)
            if 0 <= n < count:
                counts[n] += 1
        return [c / window for c in counts]


def client_loop(url: str, client: int, until: float, tally: Tally, remoteids: bool) -> None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    cycle = requests_of(client)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    calls, errors, ordered, events, finished = 0, [], [], [], []
    try:
        n = 0
        while time.perf_counter() < until:
            params = dict(cycle[n % len(cycle)], out="xml")
            if remoteids and params["func"] == "vds.order.param":
                params["remoteid"] = f"c{client}-{n}"
            n += 1
            try:
                connection.request("POST", "/billmgr", urlencode(params), headers)
                reply = connection.getresponse()
                body = reply.read()
            except (OSError, http.client.HTTPException) as error:
                errors.append(f"{params['func']}: {error!r}")
                connection.close()
                continue
            calls += 1
            finished.append(time.perf_counter())
            if reply.status != 200 or b"<error" in body:
                errors.append(f"{params['func']}: HTTP {reply.status} {body[:200]!r}")
            elif params["func"] == "vds.order.param":
                ordered.append(int(ORDERED.search(body).group(1)))
            elif params["func"] == "itemevent":
                events += [(int(i), kind, int(item)) for i, kind, item in EVENT.findall(body)]
    finally:
        connection.close()
    with tally.lock:
        tally.calls += calls
        tally.errors += errors
        tally.ordered[client] += ordered
        tally.events[client] += events
        tally.finished += finished


def run_load(url: str, seconds: float, remoteids: bool) -> tuple[float, Tally]:
    """When 8 clients began calling for `seconds`, and what they saw."""
    tally = Tally()
    began = time.perf_counter()
    until = began + seconds
    threads = [
        threading.Thread(target=client_loop, args=(url, n, until, tally, remoteids))
        for n in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return began, tally


def problems(url: str, tally: Tally) -> list[str]:
    """Where the simulator's own account of the run differs from what the clients saw."""
    found = [f"error: {e}" for e in tally.errors[:5]]
    with requests.Session() as http:
        http.trust_env = False
        for client in range(CLIENTS):
            login = f"load{client}"
            last = http.post(  # the events queued after the client's last poll
                url + "/billmgr",
                data={"func": "itemevent", "out": "xml", "authinfo": f"{login}:s3cret"},
                timeout=30,
            )
            events = tally.events[client] + [
                (int(i), kind, int(item)) for i, kind, item in EVENT.findall(last.content)
            ]
            held = http.get(url + "/_sim/services", params={"account": login}, timeout=30)
            services = held.json()["services"]
            ordered = tally.ordered[client]
            if sorted(s["id"] for s in services) != sorted(ordered):
                found.append(f"{login}: {len(ordered)} orders accepted, {len(services)} held")
            remoteids = [s["remoteid"] for s in services]
            if len(set(remoteids)) != len(remoteids):
                found.append(f"{login}: a remoteid was ordered twice")
            opened = sorted(item for _, kind, item in events if kind == b"open")
            if opened != sorted(ordered):
                found.append(f"{login}: {len(opened)} open events for {len(ordered)} orders")
            ids = [i for i, _, _ in events]
            if len(set(ids)) != len(ids):
                found.append(f"{login}: an event arrived twice")
    return found


def measure(quick: bool) -> list[Figure]:
    window, windows = (1.0, 4) if quick else (10.0, 6)
    replies = record_replies()
    floors = []
    with served(lambda: bare_app(replies)) as bare_url:
        # the floor just before and just after the simulator's run, so drift touches both alike
        began, bare = run_load(bare_url, window, remoteids=False)
        floors += bare.windows(began, window, 1)
        with served(simulator_app) as url:
            began, tally = run_load(url, window * windows, remoteids=True)
            found = problems(url, tally)
        rates = tally.windows(began, window, windows)
        began, bare = run_load(bare_url, window, remoteids=False)
        floors += bare.windows(began, window, 1)
    value, floor = statistics.median(rates), statistics.median(floors)
    orders = sum(len(o) for o in tally.ordered.values())
    seconds = window * windows
    return [
        Figure(
            number=2,
            name=f"{CLIENTS} clients for {seconds:g} s over a socket: lists, orders, polls",
            value=value,
            floor=floor,
            ratio=value / floor,
            target=f">= {TARGET}x, no error, no order lost or doubled",
            met=value / floor >= TARGET and not found,
            unit="calls/s",
            floor_name="the bare endpoint under the same load, just before and after",
            note="; ".join(found[:5])
            or f"{orders:,} orders, each held once and its event seen once, no error; "
            f"windows of {window:g} s: "
            + ", ".join(f"{r:,.0f}" for r in rates)
            + " calls/s",
        ),
        Figure(
            number=2,
            name=f"the same, last {window:g} s window over the first, {orders:,} services grown",
            value=rates[-1],
            floor=rates[0],
            ratio=rates[-1] / rates[0],
            target=f">= {FLAT}x",
            met=rates[-1] / rates[0] >= FLAT,
            unit="calls/s",
            floor_name="the bare endpoint under the same load, just before and after",
        ),
    ]
