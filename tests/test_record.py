"""`run.py record`: the proxy forwards calls unchanged and writes a masked cassette."""

from __future__ import annotations

import http.server
import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import requests
from werkzeug.wrappers import Response

import run
from simulator.cassette import read_cassette
from tests.client_session import PASSWORD

TLS = Path(__file__).parent / "tls"


def test_a_reply_through_the_proxy_is_the_upstreams_reply_unchanged(
    serve, record_through, upstream_app
):
    upstream = serve(upstream_app)
    proxy = record_through(upstream)
    calls = [
        ("GET", {"params": {"func": "pricelist.export", "itemtype": "vds"}}),
        ("POST", {"data": {"func": "whoami", "out": "json", "authinfo": f"reseller:{PASSWORD}"}}),
        ("GET", {"params": {"func": "vds.edit", "elid": "1", "out": "json"}}),
    ]
    for method, options in calls:
        direct = requests.request(method, f"{upstream}/billmgr", timeout=5, **options)
        proxied = requests.request(method, f"{proxy}/billmgr", timeout=5, **options)
        assert proxied.status_code == direct.status_code
        assert proxied.headers["Content-Type"] == direct.headers["Content-Type"]
        assert proxied.content == direct.content


def test_the_session_cookie_the_upstream_sets_reaches_the_client_and_works(
    serve, record_through, upstream_app
):
    proxy = record_through(serve(upstream_app))
    with requests.Session() as http:
        auth = http.get(
            f"{proxy}/billmgr",
            params={"func": "auth", "username": "reseller", "password": PASSWORD},
            timeout=5,
        )
        sid = ET.fromstring(auth.content).find("auth").get("id")
        assert http.cookies["billmgrses5"] == sid
        whoami = http.get(f"{proxy}/billmgr", params={"func": "whoami"}, timeout=5)
    assert ET.fromstring(whoami.content).find("user").get("name") == "reseller"


def test_the_cassette_has_a_line_per_call_with_its_request_and_reply(recorded, cassette_file):
    calls = read_cassette(cassette_file)

    assert len(calls) == recorded.calls == len(cassette_file.read_text().splitlines())
    assert [c.n for c in calls] == list(range(1, recorded.calls + 1))
    order = next(c for c in calls if c.func == "vds.order.param" and c.form.get("sok"))
    assert order.method == "POST" and order.path == "/billmgr" and order.body_format == "form"
    assert order.form["remoteid"] == "r-1" and order.form["skipbasket"] == "on"
    assert order.status == 200 and order.content_type == "application/json"
    assert json.loads(order.body)["doc"]["id"]["$"] == recorded.services[0]
    assert order.time.endswith("Z") and order.elapsed_ms >= 0
    listed = next(c for c in calls if c.func == "vds" and not c.query.get("out"))
    assert listed.method == "GET" and listed.content_type.startswith("text/xml")
    assert {e.findtext("id") for e in ET.fromstring(listed.body).iter("elem")} == set(
        recorded.services
    )


def test_no_password_key_or_session_id_of_the_session_is_in_the_cassette(recorded, cassette_file):
    text = cassette_file.read_text()

    assert len(recorded.secrets) == 5
    for secret in recorded.secrets:
        assert secret not in text


def test_a_session_id_masks_to_one_placeholder_wherever_it_appears(recorded, cassette_file):
    calls = read_cassette(cassette_file)
    login = calls[0]
    placeholder = ET.fromstring(login.body).find("auth").get("id")

    assert placeholder == "MASKED-SESSION-1"
    assert login.set_cookies == {"billmgrses5": placeholder}
    assert login.query["password"] == "MASKED-PASSWORD-1"
    assert calls[1].cookies == {"billmgrses5": placeholder}
    assert calls[2].query["auth"] == placeholder
    prolong = next(c for c in calls if c.func == "service.prolong")
    assert prolong.form["authinfo"] == "reseller:MASKED-PASSWORD-1"
    logins = [c.params.get("password") or c.params.get("key") for c in calls if c.func == "auth"]
    assert logins == ["MASKED-PASSWORD-1", "MASKED-PASSWORD-2", "MASKED-KEY-1", "MASKED-PASSWORD-1"]
    second = json.loads(calls[-2].body)["doc"]["auth"]["$id"]
    assert second == "MASKED-SESSION-2" and calls[-1].query["auth"] == second


def test_a_password_echoed_anywhere_in_the_call_is_masked_there_too(
    serve, record_through, cassette_file
):
    def upstream(environ, start_response):
        body = f"<doc><password>{PASSWORD}</password><msg>your password is {PASSWORD}</msg></doc>"
        return Response(body, mimetype="text/xml")(environ, start_response)

    proxy = record_through(serve(upstream))
    params = {"func": "x", "passwd": PASSWORD, "back": f"/billmgr?func=y&passwd={PASSWORD}"}
    requests.get(f"{proxy}/billmgr", params=params, timeout=5)

    (call,) = read_cassette(cassette_file)
    assert PASSWORD not in cassette_file.read_text()
    assert call.query["back"] == "/billmgr?func=y&passwd=MASKED-PASSWORD-1"
    assert call.body == (
        "<doc><password>MASKED-PASSWORD-1</password>"
        "<msg>your password is MASKED-PASSWORD-1</msg></doc>"
    )


def test_a_short_secret_is_masked_where_named_and_not_searched_for_in_ids(
    serve, record_through, cassette_file
):
    def upstream(environ, start_response):
        return Response("<doc><id>1000</id></doc>", mimetype="text/xml")(environ, start_response)

    proxy = record_through(serve(upstream))
    params = {"authinfo": "u:100", "func": "vds.edit", "elid": "100"}
    requests.get(f"{proxy}/billmgr", params=params, cookies={"billmgrses5": "s1"}, timeout=5)

    (call,) = read_cassette(cassette_file)
    assert call.query == {"authinfo": "u:MASKED-PASSWORD-1", "func": "vds.edit", "elid": "100"}
    assert call.cookies == {"billmgrses5": "MASKED-SESSION-1"}
    assert call.body == "<doc><id>1000</id></doc>"


def test_an_upstream_that_refuses_is_answered_502_and_recorded(record_through, cassette_file):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    proxy = record_through(f"http://127.0.0.1:{port}")

    reply = requests.get(f"{proxy}/billmgr", params={"func": "whoami"}, timeout=5)

    assert reply.status_code == 502
    assert "did not answer (refused)" in reply.text
    (call,) = read_cassette(cassette_file)
    assert (call.status, call.error, call.query) == (502, "refused", {"func": "whoami"})


def test_an_upstream_that_never_answers_is_answered_502_after_the_timeout(
    record_through, cassette_file
):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections wait in the backlog; nothing ever answers
        proxy = record_through(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)

        reply = requests.get(f"{proxy}/billmgr", params={"func": "whoami"}, timeout=5)

    assert reply.status_code == 502
    (call,) = read_cassette(cassette_file)
    assert (call.status, call.error) == (502, "timeout")


def test_a_cookie_bound_to_the_upstream_reaches_the_client_unbound(serve, record_through):
    def upstream(environ, start_response):
        response = Response("<doc/>", mimetype="text/xml")
        response.headers.add(
            "Set-Cookie", "billmgrses5=abc123; Domain=billing.example.com; Secure; Path=/"
        )
        response.headers.add("Set-Cookie", "billmgrlang5=en; Path=/")
        return response(environ, start_response)

    proxy = record_through(serve(upstream))
    with requests.Session() as http:
        reply = http.get(f"{proxy}/billmgr", timeout=5)
        assert http.cookies.get_dict() == {"billmgrses5": "abc123", "billmgrlang5": "en"}
    assert reply.raw.headers.getlist("Set-Cookie") == [
        "billmgrses5=abc123; Path=/",
        "billmgrlang5=en; Path=/",
    ]


def test_a_json_body_is_recorded_as_parameters_and_forwarded_unchanged(
    serve, record_through, cassette_file
):
    received = []

    def upstream(environ, start_response):
        received.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        return Response('{"doc": {}}', mimetype="application/json")(environ, start_response)

    proxy = record_through(serve(upstream))
    sent = {"func": "whoami", "authinfo": f"reseller:{PASSWORD}", "note": {"said": [PASSWORD]}}
    requests.post(f"{proxy}/billmgr", json=sent, timeout=5)

    assert json.loads(received[0]) == sent
    (call,) = read_cassette(cassette_file)
    assert call.body_format == "json"
    assert call.form == {
        "func": "whoami",
        "authinfo": "reseller:MASKED-PASSWORD-1",
        "note": {"said": ["MASKED-PASSWORD-1"]},
    }


def test_run_py_record_serves_until_stopped_and_leaves_every_call_recorded(
    serve, upstream_app, tmp_path
):
    upstream = serve(upstream_app)
    out = tmp_path / "cassette.jsonl"
    proxy = subprocess.Popen(
        [sys.executable, "run.py", "record", "--upstream", upstream, "--out", str(out)]
        + ["--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = proxy.stdout.readline()
        assert banner.startswith("recording http://127.0.0.1:") and f"-> {upstream}" in banner
        address = banner.split()[1].rstrip("/")
        for func in ("whoami", "pricelist.export"):
            params = {"func": func, "authinfo": f"reseller:{PASSWORD}"}
            assert requests.get(f"{address}/billmgr", params=params, timeout=5).ok
    finally:
        proxy.send_signal(signal.SIGTERM)
        rest, _ = proxy.communicate(timeout=10)
    assert proxy.returncode == 0
    assert rest.strip() == f"2 calls recorded in {out}"
    assert [c.func for c in read_cassette(out)] == ["whoami", "pricelist.export"]


@pytest.mark.parametrize(
    "options, problem",
    [
        (["--upstream", "billing.example.com:1500"], "--upstream: expected an http:// or https://"),
        (["--upstream", "https://billing.example.com/billmgr?func=auth"], "without ?query"),
        (["--upstream", "https://b.example.com", "--ca-bundle", "no.pem"], "--ca-bundle: no such"),
    ],
)
def test_run_py_record_refuses_bad_options_and_writes_nothing(options, problem, tmp_path, capsys):
    out = tmp_path / "never.jsonl"

    code = run.main(["record", *options, "--out", str(out)])

    assert code == 2
    assert problem in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture
def tls_upstream():
    """An HTTPS upstream with a self-signed certificate for 127.0.0.1 (tests/tls, made with
    `openssl ca -selfsign`, valid 2000-2100) that answers every GET with `<doc><ok/></doc>`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", "16")
            self.end_headers()
            self.wfile.write(b"<doc><ok/></doc>")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS / "localhost.crt", TLS / "localhost.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_upstream_certificate_nobody_trusts_is_a_tls_failure(
    tls_upstream, record_through, cassette_file
):
    proxy = record_through(tls_upstream)

    reply = requests.get(f"{proxy}/billmgr", params={"func": "whoami"}, timeout=5)

    assert reply.status_code == 502
    assert [c.error for c in read_cassette(cassette_file)] == ["tls"]


def test_an_upstream_certificate_in_the_ca_bundle_is_trusted(tls_upstream, record_through):
    proxy = record_through(tls_upstream, verify=str(TLS / "localhost.crt"))

    reply = requests.get(f"{proxy}/billmgr", params={"func": "whoami"}, timeout=5)

    assert (reply.status_code, reply.content) == (200, b"<doc><ok/></doc>")


def test_a_ca_bundle_that_cannot_be_read_is_a_recorded_failure(
    tls_upstream, record_through, cassette_file, tmp_path
):
    proxy = record_through(tls_upstream, verify=str(tmp_path / "gone.pem"))

    reply = requests.get(f"{proxy}/billmgr", params={"func": "whoami"}, timeout=5)

    assert reply.status_code == 502
    assert [c.error for c in read_cassette(cassette_file)] == ["failed"]


def test_run_py_record_insecure_accepts_a_self_signed_upstream_quietly(tls_upstream, tmp_path):
    out = tmp_path / "cassette.jsonl"
    proxy = subprocess.Popen(
        [sys.executable, "run.py", "record", "--upstream", tls_upstream, "--out", str(out)]
        + ["--port", "0", "--insecure"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        address = proxy.stdout.readline().split()[1].rstrip("/")
        reply = requests.get(f"{address}/billmgr", params={"func": "whoami"}, timeout=5)
    finally:
        proxy.send_signal(signal.SIGTERM)
        _, errors = proxy.communicate(timeout=10)
    assert (reply.status_code, reply.content) == (200, b"<doc><ok/></doc>")
    # no certificate warning; waitress notes a request that waited for a thread on a busy machine
    assert [line for line in errors.splitlines() if not line.startswith("Task queue depth")] == []
    assert [c.status for c in read_cassette(out)] == [200]
