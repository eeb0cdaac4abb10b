"""Hostile input at `/billmgr` over a real socket: every request gets a document, never a 5xx
(no fault is queued here), a traceback or a path of the machine.

The raw suite writes HTTP by hand through a plain socket: any method, paths under the API,
query and body bytes that are not UTF-8, bodies of every kind, broken headers. It sends
HOSTILE_REQUESTS requests (1,000 unless the environment says otherwise), each bounded by a
timeout.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from datetime import timedelta
from urllib.parse import quote, quote_from_bytes
from xml.etree import ElementTree as ET

import pytest
import waitress
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from simulator.api import BODY_LIMIT, byte_pairs, decoded_pairs
from simulator.app import create_app
from simulator.functions import REGISTRY
from simulator.world import seller_from_world
from tests.conftest import START, WORLD

REQUESTS = int(os.environ.get("HOSTILE_REQUESTS", "1000"))
TIMEOUT = 10.0
ERROR_TYPES = {"auth", "access", "value", "missed", "exists", "not_enough_money", "unknown_func"}
LEAKS = (b"Traceback", b'File "', b"/work/", b"site-packages", b'.py"', b"werkzeug")


@pytest.fixture(scope="module")
def server():
    """A simulator with services of two accounts, served by waitress on a local port."""
    seller = seller_from_world(WORLD, START)
    for login in ("reseller", "other"):
        seller.order(seller.accounts[login], "vds", 5, 1, remoteid=f"{login}-1")
    app = create_app(seller)
    served = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    yield ("127.0.0.1", served.effective_port)
    served.task_dispatcher.shutdown()
    served.trigger.pull_trigger(served.close)
    thread.join(timeout=5)


def exchange(address, raw: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send raw bytes, read the whole reply (the request asks to close); status, headers, body."""
    with socket.create_connection(address, timeout=TIMEOUT) as conn:
        conn.sendall(raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    reply = b"".join(chunks)
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding") == b"chunked":
        body = dechunk(body)
    return int(status_line.split()[1]), headers, body


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out, body = out + rest[:n], rest[n + 2 :]
    return out


def http(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def document_of(body: bytes):
    """The reply as a document: a `<doc>` or a JSON object; fails on anything else."""
    if body.startswith(b"<?xml"):
        root = ET.fromstring(body)
        assert root.tag == "doc"
        error = root.find("error")
        return error.get("type") if error is not None else None
    node = json.loads(body)
    assert isinstance(node, dict)
    error = (node.get("doc", node) or {}).get("error")
    if isinstance(error, dict):
        return error.get("$type") or error.get("type")
    return None


def assert_no_leak(status: int, body: bytes) -> None:
    assert status < 500, (status, body[:300])
    for leak in LEAKS:
        assert leak not in body, (leak, body[:500])


# -- strategies --------------------------------------------------------------------------------

NOT_IN_TARGET = frozenset(b" \r\n#")
FUNCS = [name.encode() for name in sorted(REGISTRY)] + [b"", b"nosuch", b"auth", b"..%2f"]
KEYS = [
    b"func",
    b"out",
    b"authinfo",
    b"auth",
    b"elid",
    b"pricelist",
    b"period",
    b"sok",
    b"skipbasket",
    b"addon_11",
    b"addon_13",
    b"addon_99999999999999999999",
    b"ostempl",
    b"recipe",
    b"p_cnt",
    b"p_num",
    b"sfrom",
    b"su",
    b"id",
    b"clicked_button",
    b"username",
    b"password",
    b"key",
]
NASTY = [
    b"",
    b"0",
    b"-1",
    b"9" * 40,
    b"1e999",
    b"NaN",
    b"null",
    b"on",
    b"ok",
    b"1000,%201000",
    b"%ff",
    b"%00",
    b"%c3%28",
    b"%ed%a0%80",
    b"%3Cx%3E%26",
    b"%27%20or%201%3D1",
    b"json",
    b"bjson",
    b"sjson",
    b"xjson",
    b"xml",
    b"ajax",
    b"reseller:s3cret",
    b"root:toor",
    b"reseller:nope",
    b"5",
    b"1000",
    b"1001",
    b"5000",
    b"free",
    b"newkey",
    b"%E2%9C%93",
]
RAW = [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"caf\xe9"]  # bodies only: HTTP
# allows no raw byte over 127 in the request line, and waitress refuses it (test below)
OUTS = [b"xml", b"json", b"", b"sjson", b"bjson", b"xjson", b"devel"]
ascii_piece = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="&=#%+"), max_size=16
).map(str.encode)
encoded_piece = st.text(max_size=16).map(lambda t: quote(t).encode())
escaped_bytes = st.binary(max_size=16).map(lambda b: quote_from_bytes(b).encode())
raw_piece = st.binary(max_size=16).map(lambda b: bytes(c for c in b if c not in b"&= \r\n#"))


def rarely(draw) -> bool:
    """True about one time in eight: Hypothesis draws list ends and small numbers most often."""
    return all(draw(st.booleans()) for _ in range(3))


@st.composite
def pieces(draw) -> bytes:
    if rarely(draw):
        return draw(escaped_bytes)  # %xx of any byte: mostly not UTF-8
    return draw(st.one_of(st.sampled_from(NASTY), ascii_piece, encoded_piece))


pieces = pieces()
pairs = st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), ascii_piece), pieces), max_size=6)
body_pairs = st.lists(
    st.tuples(st.sampled_from(KEYS), st.one_of(pieces, st.sampled_from(RAW), raw_piece)),
    max_size=6,
)
calls = st.fixed_dictionaries(
    {
        b"func": st.sampled_from(FUNCS),
        b"out": st.sampled_from(OUTS),
        b"authinfo": st.sampled_from(
            [b"reseller:s3cret"] * 4 + [b"other:other-pw", b"root:toor", b"x", b""]
        ),
    }
)


def query_of(call: dict, extra: list) -> bytes:
    items = [(k, v) for k, v in call.items() if v] + extra
    return b"&".join(k + b"=" + v for k, v in items)


json_values = st.one_of(
    st.text(max_size=12),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.none(), max_size=2),
)
bodies = st.one_of(
    st.just(b""),
    body_pairs.map(lambda p: b"&".join(k + b"=" + v for k, v in p)),
    st.dictionaries(st.sampled_from(["func", "out", "elid", "authinfo", "x"]), json_values).map(
        lambda d: json.dumps(d).encode()
    ),
    st.binary(max_size=200),
    st.sampled_from([b"{", b"[]", b'"x"', b'{"func": "\\ud800"}', b"\x00" * 10]),
)
CONTENT_TYPES = [None, b"application/x-www-form-urlencoded", b"application/json", None]
CONTENT_TYPES += [b"multipart/form-data; boundary=x", b"text/plain", b"\xff\xfe/garbage"]
CONTENT_TYPES += [b"application/x-www-form-urlencoded; charset=latin-1", b"application/json"]
CONTENT_TYPES += [None, b"application/x-www-form-urlencoded"]
METHODS = [b"GET", b"POST"]
ODD_METHODS = [b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS", b"BREW"]
PATHS = [b"/billmgr", b"/manager/billmgr"]
ODD_PATHS = [b"/billmgr/", b"/billmgr/x/y", b"/manager/billmgr/%ff", b"/billmgr%00", b"/billmgrx"]
ODD_OUTS = [b"yaml", b"%ff", b"JSON", b"text"]


@st.composite
def raw_requests(draw) -> bytes:
    method = draw(st.sampled_from(ODD_METHODS if rarely(draw) else METHODS))
    path = draw(st.sampled_from(ODD_PATHS if rarely(draw) else PATHS))
    call = draw(calls)
    if rarely(draw):
        call[b"out"] = draw(st.sampled_from(ODD_OUTS))
    query = query_of(call, draw(pairs))
    target = bytes(c for c in path + b"?" + query if c not in NOT_IN_TARGET)
    headers = []
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type is not None:
        headers.append((b"Content-Type", content_type))
    if draw(st.booleans()):
        headers.append((b"Cookie", b"billmgrses5=" + draw(ascii_piece)))
    body = draw(bodies) if method not in (b"GET", b"HEAD") or draw(st.booleans()) else b""
    if body and draw(st.booleans()):
        headers.append((b"Transfer-Encoding", b"chunked"))
        body = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    else:
        headers.append((b"Content-Length", str(len(body)).encode()))
    return http(method, target, headers, body)


@settings(
    max_examples=REQUESTS,
    deadline=timedelta(seconds=TIMEOUT),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(raw=raw_requests())
def test_raw_hostile_requests_get_a_document_never_a_5xx_or_a_traceback(server, raw):
    status, headers, body = exchange(server, raw)

    assert_no_leak(status, body)
    if raw.startswith(b"HEAD") or status != 200:
        return  # a HEAD reply has no body; a 4xx comes from waitress refusing bad HTTP
    error = document_of(body)
    assert error is None or error in ERROR_TYPES, (error, body[:400])


# -- the cases one by one ----------------------------------------------------------------------


def get(server, target: bytes, method: bytes = b"GET", headers=(), body: bytes = b""):
    headers = [*headers, (b"Content-Length", str(len(body)).encode())] if body else list(headers)
    return exchange(server, http(method, target, headers, body))


def error_of(body: bytes) -> tuple[str, str, str]:
    if body.startswith(b"<?xml"):
        error = ET.fromstring(body).find("error")
        return error.get("type"), error.get("object"), error.findtext("msg")
    error = json.loads(body)["doc"]["error"]
    return error["$type"], error["$object"], error["msg"]["$"]


def test_a_byte_that_is_not_utf8_in_the_query_is_a_value_error_naming_the_parameter(client):
    reply = client.get(
        "/billmgr", environ_overrides={"QUERY_STRING": "func=whoami&out=json&name=caf\xe9"}
    )

    assert reply.status_code == 200 and reply.mimetype == "application/json"
    assert error_of(reply.data)[:2] == ("value", "name")


# names, values, their separators, quoting, plus signs, UTF-8 and bytes that are not UTF-8
FORM_PIECES = [b"a", b"=", b"&", b"+", b"%", b"%41", b"%ff", b"\xc3\xa9", b"\xff", b"\xed\xa0\x80"]


@given(st.lists(st.sampled_from(FORM_PIECES)).map(b"".join))
@example(b"a+b=c&%41=b")
@example(b"a=b&\xc3\xa9=\xff")
@example(b"a=\xed\xa0\x80")
def test_a_form_reads_as_its_pieces_unquoted_and_decoded_one_by_one(raw):
    """Whether or not it has anything to unquote (read then in one piece of text)."""
    pieces = byte_pairs(raw)
    try:
        expected = [(name.decode("utf-8"), value.decode("utf-8")) for name, value in pieces]
    except UnicodeDecodeError:
        assert decoded_pairs(raw, "body")[1] is not None
    else:
        assert decoded_pairs(raw, "body") == (expected, None)


def test_waitress_itself_refuses_a_raw_byte_that_is_not_ascii_in_the_request_line(server):
    status, _, body = get(server, b"/billmgr?func=whoami&name=caf\xe9")

    assert status == 400 and body.startswith(b"Bad Request")  # HTTP allows none there


def test_an_escaped_byte_that_is_not_utf8_is_refused_the_same_way(server):
    status, _, body = get(server, b"/billmgr?func=whoami&elid=%ff%fe")

    assert status == 200 and error_of(body)[:2] == ("value", "elid")


def test_a_body_that_is_not_utf8_is_refused_naming_the_parameter(server):
    status, _, body = get(
        server,
        b"/billmgr?out=json",
        b"POST",
        [(b"Content-Type", b"application/x-www-form-urlencoded")],
        b"func=whoami&licname=\xff",
    )

    assert status == 200 and error_of(body)[:2] == ("value", "licname")


@pytest.mark.parametrize("method", [b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"BREW"])
def test_a_method_the_api_does_not_take_is_a_value_error_in_the_asked_format(server, method):
    status, _, body = get(server, b"/billmgr?func=whoami&out=json", method)

    assert status == 200
    kind, where, msg = error_of(body)
    assert (kind, where) == ("value", "method") and method.decode() in msg


@pytest.mark.parametrize(
    "path", [b"/billmgr/x", b"/manager/billmgr/a/b", b"/billmgr/%ff", b"/billmgr%00", b"/billmgrx"]
)
def test_a_path_under_the_api_is_a_value_error_naming_the_path(server, path):
    status, _, body = get(server, path + b"?out=xml")

    assert status == 200 and error_of(body)[:2] == ("value", "path")


def test_a_body_over_the_limit_is_refused_naming_the_limit(server):
    body = b"func=whoami&x=" + b"a" * BODY_LIMIT
    status, _, reply = get(
        server,
        b"/billmgr",
        b"POST",
        [(b"Content-Type", b"application/x-www-form-urlencoded")],
        body,
    )

    kind, where, msg = error_of(reply)
    assert status == 200 and (kind, where) == ("value", "body")
    assert str(BODY_LIMIT) in msg


def test_a_chunked_body_over_the_limit_is_refused_too(server):
    data = b"func=whoami&x=" + b"a" * BODY_LIMIT
    chunked = b"%x\r\n" % len(data) + data + b"\r\n0\r\n\r\n"
    headers = [(b"Transfer-Encoding", b"chunked"), (b"Content-Type", b"text/plain")]

    status, _, reply = exchange(server, http(b"POST", b"/billmgr", headers, chunked))

    assert status == 200 and error_of(reply)[:2] == ("value", "body")


def test_a_body_just_under_the_limit_is_read(server):
    data = b"func=whoami&authinfo=reseller:s3cret&x=" + b"a" * (BODY_LIMIT - 100)
    status, _, reply = get(
        server,
        b"/billmgr",
        b"POST",
        [(b"Content-Type", b"application/x-www-form-urlencoded")],
        data,
    )

    assert status == 200 and ET.fromstring(reply).find("user").get("name") == "reseller"


def test_a_json_body_with_a_lone_surrogate_is_refused(server):
    status, _, reply = get(
        server,
        b"/billmgr",
        b"POST",
        [(b"Content-Type", b"application/json")],
        b'{"func": "whoami", "name": "\\ud800"}',
    )

    assert status == 200 and error_of(reply)[:2] == ("value", "name")


def test_a_huge_value_for_an_addon_with_no_maximum_is_a_value_error(session, client):
    client.post(
        "/_sim/actions/edit_tariff",
        json={"id": 5, "addons": {"disk": {"id": 14, "type": "integer", "included": 20}}},
    )

    reply = session.post(
        "http://simulator/billmgr",
        data={
            "func": "vds.order.param",
            "authinfo": "reseller:s3cret",
            "pricelist": 5,
            "period": 1,
            "sok": "ok",
            "skipbasket": "on",
            "addon_14": "9" * 40,
        },
    )

    assert error_of(reply.content)[:2] == ("value", "addon_14")
    assert client.get("/_sim/services").json["services"] == []


def test_a_failure_inside_a_function_is_logged_and_answered_plainly(session, monkeypatch, caplog):
    fn = REGISTRY["whoami"]

    def broken(call):
        raise RuntimeError("a bug in the simulator")

    monkeypatch.setitem(REGISTRY, "whoami", type(fn)(**{**fn.__dict__, "build": broken}))
    with caplog.at_level(logging.ERROR, logger="simulator.api"):
        reply = session.post(
            "http://simulator/billmgr",
            data={"func": "whoami", "authinfo": "reseller:s3cret", "out": "json"},
        )

    assert reply.status_code == 200
    kind, _, msg = error_of(reply.content)
    assert kind == "internal" and "Traceback" not in msg and ".py" not in msg
    assert "a bug in the simulator" in caplog.text and "Traceback" in caplog.text
