"""The direct ways in answer API calls exactly as Flask's view does.

Three sellers alike get the same requests: one through Flask's own WSGI app (the view), one
through the app as a server calls it (`DirectAPI` in front), one through the in-process
transport's `direct_call`.
"""

from __future__ import annotations

import copy
import json
import pickle
from datetime import timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from requests.models import RequestEncodingMixin

from simulator.app import create_app
from simulator.clock import Clock
from simulator.transport import (
    _encode,
    call_app,
    direct_call,
    in_process_client,
    in_process_session,
)
from simulator.world import seller_from_world
from tests.conftest import START, WORLD

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
API = "http://simulator/billmgr"
ORDER = (
    "func=vds.order.param&pricelist=5&period=1&ostempl=debian-12&addon_11=2048"
    "&skipbasket=on&sok=ok&remoteid=r-1&authinfo=reseller:s3cret"
)

# (method, url, headers, body): reads, writes, refusals and unreadable requests, in order,
# so the writes change both sellers alike.
REQUESTS = [
    ("GET", f"{API}?func=whoami&authinfo=reseller:s3cret", {}, b""),
    ("POST", API, FORM, b"func=whoami&out=json&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=pricelist.export&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=pricelist.export&out=json&authinfo=reseller:s3cret"),
    ("POST", API, FORM, ORDER.encode()),
    ("POST", API, FORM, b"func=vds&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=vds&remoteid=r-1&out=json&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=vds&remoteid=none&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=vds.edit&elid=1000&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=vds.edit&elid=1000&authinfo=other:other-pw"),
    ("POST", API, FORM, b"func=vds.edit&elid=abc&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=itemevent&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=whoami&authinfo=reseller:wrong"),
    ("POST", API, FORM, b"func=no.such.func&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=whoami&out=yaml&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"out=xml&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=whoami&authinfo=reseller:s3cret&name=\xff\xfe"),
    ("GET", f"{API}?func=whoami&bad=%ff&authinfo=reseller:s3cret", {}, b""),
    ("POST", API, {"Content-Type": "application/json"}, b'{"func": "whoami", "out": "json"}'),
    ("POST", API, {"Content-Type": "application/json"}, b'{"func": "whoami", "authinfo": 5'),
    ("POST", API, {"Content-Type": "application/json"}, b'["func", "whoami"]'),
    ("POST", API, {}, b"func=whoami&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=whoami&x=" + b"a" * (1024 * 1024)),
    ("POST", API, FORM, b"   "),
    ("GET", "http://simulator/manager/billmgr?func=whoami&authinfo=root:toor", {}, b""),
    ("POST", API, FORM, b"func=vds.suspend&elid=1000&sok=ok&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=vds.resume&elid=1000&sok=ok&authinfo=reseller:s3cret"),
    ("POST", API, FORM, b"func=whoami&su=other&authinfo=root:toor"),
    ("POST", API, FORM, b"func=whoami&su=other&authinfo=reseller:s3cret"),
]


def pinned_app():
    """A simulator whose wall clock stands still, so two of them answer alike."""
    seller = seller_from_world(copy.deepcopy(WORLD), START)
    seller.wall_clock = lambda: 1000.0
    return create_app(seller)


@pytest.fixture
def apps():
    return pinned_app(), pinned_app(), pinned_app()


def flask_view(app):
    """The app's WSGI callable without `DirectAPI` in front: Flask's request cycle."""
    return app.wsgi_app.flask


def both(apps, method, url, headers, body):
    """Flask's reply from one app and the direct reply of another (the third's must agree)."""
    view_app, served_app, direct_app = apps
    direct = direct_call(direct_app, method, url, headers, body)
    assert direct is not None, f"{method} {url} was not answered directly"
    view = call_app(flask_view(view_app), method, url, headers, body)
    served = call_app(served_app, method, url, headers, body)
    assert masked(served) == masked(view), (method, url, body[:80])
    return view, direct


def session_of(reply) -> str | None:
    cookie = dict(reply[1]).get("Set-Cookie")
    return cookie.partition("=")[2].partition(";")[0] if cookie else None


def masked(reply):
    """A reply with the new session id it sets (random on each seller) replaced by SID."""
    sid = session_of(reply)
    if sid is None:
        return reply
    status, headers, body = reply
    return (
        status,
        [(n, v.replace(sid, "SID")) for n, v in headers],
        body.replace(sid.encode(), b"SID"),
    )


def test_direct_replies_are_the_wsgi_replies_byte_for_byte(apps):
    for method, url, headers, body in REQUESTS:
        wsgi, direct = both(apps, method, url, headers, body)
        assert direct == wsgi, (method, url, body[:80])


def test_a_login_gets_the_same_reply_and_cookie_and_the_cookie_logs_in_alike(apps):
    login = b"func=auth&username=reseller&password=s3cret"
    wsgi, direct = both(apps, "POST", API, FORM, login)
    sids = [session_of(wsgi), session_of(direct)]
    assert masked(wsgi) == masked(direct)
    status, headers, body = masked(direct)
    assert b"SID" in body
    assert ("Set-Cookie", "billmgrses5=SID; HttpOnly; Path=/; SameSite=Lax") in headers
    view_app, _, direct_app = apps
    by_cookie = b"func=whoami&out=json"
    from_wsgi = call_app(
        flask_view(view_app), "POST", API, {**FORM, "Cookie": f"billmgrses5={sids[0]}"}, by_cookie
    )
    from_direct = direct_call(
        direct_app, "POST", API, {**FORM, "Cookie": f"billmgrses5={sids[1]}"}, by_cookie
    )
    assert from_direct == from_wsgi
    assert json.loads(from_direct[2])["doc"]["user"]["$"] == "reseller"


@pytest.mark.parametrize("kind", ["error", "down", "slow", "lose_reply"])
def test_a_fault_reads_the_same_over_both(apps, kind):
    for app in apps:
        app.extensions["simulator"].seller.faults.add(kind, 1, func="vds.order.param")
    wsgi, direct = both(apps, "POST", API, FORM, ORDER.encode())
    assert direct == wsgi
    assert dict(direct[1])["X-Simulator-Fault"] == kind
    # a lost reply did the work: both sellers hold the service and list it alike
    wsgi, direct = both(apps, "POST", API, FORM, b"func=vds&authinfo=reseller:s3cret")
    assert direct == wsgi
    assert (b"r-1" in direct[2]) == (kind == "lose_reply")


def test_a_running_clock_catches_up_before_a_direct_call_as_before_a_wsgi_one():
    wall = [0.0]
    clock = Clock("speed", 3600, monotonic=lambda: wall[0])
    app = create_app(seller_from_world(copy.deepcopy(WORLD), START), clock=clock)
    wall[0] = 2.0  # two wall seconds: two simulated hours
    direct_call(app, "POST", API, FORM, b"func=whoami&authinfo=reseller:s3cret")
    assert app.extensions["simulator"].seller.now == START + timedelta(hours=2)


def test_a_served_app_answers_api_calls_without_flask_and_the_rest_with_it():
    app = pinned_app()
    through_flask = []
    app.before_request(lambda: through_flask.append(1))
    client = app.test_client()
    assert client.post("/billmgr", data={"func": "whoami", "authinfo": "reseller:s3cret"}).data
    assert client.get("/manager/billmgr?func=whoami&authinfo=reseller:s3cret").status_code == 200
    assert through_flask == []
    assert client.get("/_sim/clock").status_code == 200
    assert client.head("/billmgr?func=whoami").status_code == 200
    assert len(through_flask) == 2


def test_only_api_calls_skip_the_wsgi_stack():
    app = pinned_app()
    through_flask = []
    app.before_request(lambda: through_flask.append(1))
    client = in_process_client(app)
    session = in_process_session(app)
    for http in (client, session):
        assert http.post(API, data={"func": "whoami", "authinfo": "reseller:s3cret"}).ok
        assert http.get(API, params={"func": "whoami", "authinfo": "reseller:s3cret"}).ok
    assert through_flask == []
    for http in (client, session):
        http.get("http://simulator/_sim/clock")
        http.get("http://simulator/billmgr/elsewhere")
    assert len(through_flask) == 4


def test_an_in_process_reply_holds_the_headers_encoding_and_cookies_requests_would():
    def app(environ, start_response):
        start_response("201 CREATED", REPLY_HEADERS)
        return [b"caf\xe9"]

    session, client = in_process_session(app), in_process_client(app)
    for http in (session, client):
        reply = http.get("http://simulator/anything")
        assert (reply.status_code, reply.reason, reply.text) == (201, "CREATED", "caf\xe9")
        assert list(reply.headers.items()) == [*REPLY_HEADERS[:2], REPLY_HEADERS[3]]
        assert reply.headers["x-twice"] == "first"
        kept = pickle.loads(pickle.dumps(reply))
        assert (kept.headers, kept.content) == (reply.headers, reply.content)
    assert session.cookies["sid"] == "s-1" and reply.cookies.get("sid") is None
    assert client.cookies == {"sid": "s-1"}


REPLY_HEADERS = [
    ("Content-Type", "text/plain; charset=latin-1"),
    ("X-Twice", "first"),
    ("x-twice", "second"),
    ("Set-Cookie", "sid=s-1; Path=/"),
]


def test_the_in_process_client_encodes_each_character_as_requests_does():
    """Each character alone and among those urlencode keeps as they are, as name and value."""
    for code in [*range(128), 0xE9, 0x20AC]:
        char = chr(code)
        for form in ({char: "ok"}, {"func": f"vds.{char}"}, {f"a{char}b": f"elid{char}1"}):
            assert _encode(form) == RequestEncodingMixin._encode_params(form), form


VALUES = st.one_of(st.text(), st.integers(), st.binary(), st.none(), st.booleans())


@given(st.dictionaries(st.text(), st.one_of(VALUES, st.lists(VALUES))))
@example({"a": "b&c=d"})  # two plain pairs, written plain, but one pair sent
@example({"a=b&c": ["d", "e"]})
def test_the_in_process_client_encodes_a_form_as_requests_does(form):
    assert _encode(form) == RequestEncodingMixin._encode_params(form)
