"""Reading the simulator's replies in tests: the same way from XML and from JSON."""

from __future__ import annotations

import json
from contextlib import contextmanager
from decimal import Decimal
from xml.etree import ElementTree as ET

URL = "http://simulator/billmgr"
PASSWORDS = {"reseller": "s3cret", "other": "other-pw", "nosuspend": "pw", "poor": "pw"}
PASSWORDS["root"] = "toor"


class Node:
    """One element of a reply, read the same way from its XML and from its JSON form."""

    def __init__(self, raw, out: str):
        self.raw = raw
        self.out = out

    @classmethod
    def parse(cls, body: bytes, out: str) -> Node:
        if out == "xml":
            return cls(ET.fromstring(body), out)
        return cls(json.loads(body)["doc"], out)

    def text(self) -> str:
        if self.out == "xml":
            return self.raw.text or ""
        return self.raw.get("$", "")

    def attr(self, name: str) -> str | None:
        return self.raw.get(name) if self.out == "xml" else self.raw.get(f"${name}")

    def all(self, tag: str) -> list[Node]:
        if self.out == "xml":
            return [Node(child, self.out) for child in self.raw.findall(tag)]
        value = self.raw.get(tag)
        if value is None:
            return []
        return [Node(v, self.out) for v in (value if isinstance(value, list) else [value])]

    def one(self, tag: str) -> Node:
        nodes = self.all(tag)
        assert len(nodes) == 1, f"expected one <{tag}>, got {len(nodes)}"
        return nodes[0]

    def __getitem__(self, tag: str) -> str:
        return self.one(tag).text()

    def has(self, tag: str) -> bool:
        return bool(self.all(tag))

    def slist(self, name: str) -> list[str]:
        (found,) = [s for s in self.all("slist") if s.attr("name") == name]
        return [v.attr("key") for v in found.all("val")]

    def error(self) -> tuple[str, str, dict[str, str]]:
        """The error's type and object, and its params by name."""
        error = self.one("error")
        params = {p.attr("name"): p.text() for p in error.all("param")}
        assert error["msg"]
        return error.attr("type"), error.attr("object"), params


def balance(client, login: str = "reseller") -> Decimal:
    return Decimal(client.get(f"/_sim/accounts/{login}").json["balance"])


def seller_service(client, service_id) -> dict:
    return client.get(f"/_sim/services/{service_id}").json


def pending_events(client, login: str = "reseller") -> int:
    return client.get(f"/_sim/accounts/{login}").json["pending_events"]


@contextmanager
def nothing_changes(client):
    """The whole seller state (balances, services, feeds, ledger, clock) is the same after."""
    before = client.get("/_sim/state").json
    yield
    assert client.get("/_sim/state").json == before


def ledger(client, login: str = "reseller") -> list[dict]:
    return client.get("/_sim/ledger", query_string={"account": login}).json["ledger"]


def services(client, login: str = "reseller") -> list[dict]:
    return client.get("/_sim/services", query_string={"account": login}).json["services"]
