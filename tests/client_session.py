"""A client's session with a BILLmanager, as a reseller's own code would run it, and an
upstream whose replies are altered on purpose: what record and parity are tested with."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

import requests
from werkzeug.wrappers import Request, Response

PASSWORD = "s3cret"
WRONG_PASSWORD = "not-the-password"
LOGIN_KEY = "a-login-key-7f3a"


@dataclass
class Session:
    """What a played session used: the secrets that must not reach a cassette, and its ids."""

    secrets: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    calls: int = 0


def play(base_url: str, existing_vhost: str) -> Session:
    """Auth, whoami, the catalogue, two orders, lists, an edit, a prolongation, suspend and
    resume, errors (no such service, no money, bad logins), the event feed and a second
    session, mixing XML and JSON, GET and POST, session cookie, `auth` and `authinfo`."""
    with requests.Session() as http:
        return _play(http, f"{base_url}/billmgr", existing_vhost)


def _play(http: requests.Session, url: str, existing_vhost: str) -> Session:
    played = Session(secrets=[PASSWORD, WRONG_PASSWORD, LOGIN_KEY])

    def get(**params) -> requests.Response:
        played.calls += 1
        return http.get(url, params=params, timeout=10)

    def post(**data) -> requests.Response:
        played.calls += 1
        return http.post(url, data=data, timeout=10)

    auth = get(func="auth", username="reseller", password=PASSWORD)
    sid = ET.fromstring(auth.content).find("auth").get("id")
    played.sessions.append(sid)
    get(func="whoami")  # the session cookie alone
    get(func="whoami", out="json", auth=sid)
    catalogue = get(func="pricelist.export", out="json").json()["doc"]["pricelist"]
    catalogue = catalogue if isinstance(catalogue, list) else [catalogue]  # one tariff: an object
    get(func="pricelist.export", itemtype="vds")
    vds_1 = next(t for t in catalogue if t["id"]["$"] == "5")
    panel = next(a for a in vds_1["addon"] if a["intname"]["$"] == "panel")
    ispmanager = next(
        i["id"]["$"]
        for i in panel["enumeration"]["enumerationitem"]
        if i["intname"]["$"] == "ispmanager"
    )
    get(func="vds.order.param", pricelist=5, out="json", auth=sid)
    for remoteid in ("r-1", "r-2"):
        ordered = post(
            func="vds.order.param",
            auth=sid,
            out="json",
            pricelist=5,
            period=1,
            ostempl="debian-12",
            addon_11=2048,
            addon_13=ispmanager,
            remoteid=remoteid,
            sok="ok",
            skipbasket="on",
            clicked_button="finish",
        )
        played.services.append(ordered.json()["doc"]["id"]["$"])
    first, second = played.services
    get(func="vds", out="json")
    get(func="vds")
    get(func="vhost", out="json")
    get(func="vds.edit", elid=first, out="json")
    post(func="vds.edit", elid=first, addon_12="on", sok="ok", out="json", auth=sid)
    post(func="service.prolong", elid=first, period=3, sok="ok", authinfo=f"reseller:{PASSWORD}")
    get(func="vds.suspend", elid=f"{first}, {second}")
    get(func="vds.resume", elid=first, out="json")
    get(func="vhost.suspend", elid=existing_vhost, out="json")
    get(func="vds.edit", elid="999999", out="json")
    post(func="vds.order.param", pricelist=5, period=12, sok="ok", skipbasket="on")  # too dear
    get(func="auth", username="reseller", password=WRONG_PASSWORD)
    get(func="auth", username="reseller", key=LOGIN_KEY)
    get(func="itemevent", out="json", authinfo=f"reseller:{PASSWORD}")
    again = post(func="auth", username="reseller", password=PASSWORD, out="json")
    played.sessions.append(again.json()["doc"]["auth"]["$id"])
    get(func="whoami", out="json", auth=played.sessions[-1])
    played.secrets += played.sessions
    return played


class Altered:
    """The simulator with replies changed on purpose: in JSON the `vds` list's `expiredate`
    is renamed `expires` and `pricelist.export`'s list of tariffs becomes its first tariff; in
    XML `whoami`'s balance gets its currency; `vds.edit`'s error `missed` becomes `notexists`."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        environ["wsgi.input"] = io.BytesIO(body)  # the simulator reads the body again
        params = dict(parse_qsl(body.decode())) | request.args.to_dict()
        response = Response.from_app(self.app, environ)
        if params.get("out") == "json":
            response.set_data(self.altered_json(params.get("func"), response.get_data()))
        else:
            response.set_data(self.altered_xml(params.get("func"), response.get_data()))
        return response(environ, start_response)

    @staticmethod
    def altered_json(func: str, body: bytes) -> bytes:
        doc = json.loads(body)["doc"]
        if func == "vds":
            for row in doc["elem"] if isinstance(doc.get("elem"), list) else [doc["elem"]]:
                row["expires"] = row.pop("expiredate")
        if func == "pricelist.export":
            doc["pricelist"] = doc["pricelist"][0]
        if func == "vds.edit" and doc.get("error", {}).get("$type") == "missed":
            doc["error"]["$type"] = "notexists"
        return json.dumps({"doc": doc}).encode()

    @staticmethod
    def altered_xml(func: str, body: bytes) -> bytes:
        root = ET.fromstring(body)
        if func == "whoami":
            user = root.find("user")
            user.set("balance", user.get("balance") + " EUR")
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# What parity must report for a session recorded through `Altered`, and nothing else.
ALTERED_DIFFERENCES = {
    "vds": {
        "doc.elem[].expires: missing in simulator",
        "doc.elem[].expiredate: not in the recording",
    },
    "pricelist.export": {"doc.pricelist[]: object in recording, list in simulator"},
    "whoami": {"doc/user/@balance: text in recording, number in simulator"},
    "vds.edit": {"error type: 'notexists' in recording, 'missed' in simulator"},
}
