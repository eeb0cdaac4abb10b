"""`run.py record`: a proxy between a client and a real BILLmanager that writes a cassette.

Every request goes to the upstream as it came (method, path, query, body, cookies and other
headers) and its reply comes back as it was; each call is written, masked, to the cassette.
Transport details are the proxy's own: the body comes back decoded (no Content-Encoding),
hop-by-hop headers are not forwarded, and a cookie the upstream sets loses its `Domain` and
`Secure` attributes so that a client speaking plain HTTP to the proxy keeps sending it.
An upstream that does not answer (refused, timeout, TLS failure) is answered with a 502.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import requests
from werkzeug.wrappers import Request, Response

from simulator.cassette import Call, CassetteWriter, decoded

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length"}
NOT_RETURNED = HOP_BY_HOP | {"content-length", "content-encoding"}
COOKIE_ATTRIBUTES_DROPPED = ("domain", "secure")


def upstream_url(url: str) -> str:
    """The upstream's base URL without a trailing slash; ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--upstream: expected an http:// or https:// URL, got {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"--upstream: expected a base URL without ?query or #fragment: {url!r}")
    return url.rstrip("/")


def wall_clock() -> str:
    """Now, in UTC, to the millisecond: a recording is made in real time."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Recorder:
    """The recording proxy as a WSGI app; `upstream` is a base URL such as `https://host:1500`.

    `verify` is as in `requests`: True, False (any certificate) or a CA bundle's path.
    """

    def __init__(
        self,
        upstream: str,
        cassette: CassetteWriter,
        timeout: float = 30.0,
        verify: bool | str = True,
        clock=wall_clock,
    ):
        self.upstream = upstream_url(upstream)
        self.cassette = cassette
        self.timeout = timeout
        self.verify = verify
        self.clock = clock

    def __call__(self, environ, start_response):
        return self.forward(Request(environ))(environ, start_response)

    def forward(self, request: Request) -> Response:
        """Send the request upstream, record the call, and answer with the upstream's reply."""
        body = request.get_data(cache=True)
        call = Call(
            method=request.method,
            path=request.path,
            query=request.args.to_dict(),
            cookies=request.cookies.to_dict(),
            time=self.clock(),
        )
        call.form, call.body_format = _body_params(request, body)
        url = self.upstream + quote(request.path, safe="/:@!$&'()*+,;=-._~%")
        if request.query_string:
            url += "?" + request.query_string.decode("latin-1")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED}
        started = time.perf_counter()
        try:
            # a fresh session per call: no cookie the upstream set may ride on another call
            reply = requests.request(
                request.method,
                url,
                data=body or None,
                headers=headers,
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=False,
            )
        except OSError as error:  # requests' errors, and an unreadable CA bundle
            call.error = _failure(error)
            message = f"upstream {self.upstream} did not answer ({call.error}): {error}\n"
            response = Response(message, status=502, mimetype="text/plain")
            call.status, call.content_type, call.body = 502, response.content_type, message
        else:
            response = Response(reply.content, status=reply.status_code)
            response.headers.clear()
            for name in dict.fromkeys(reply.raw.headers.keys()):
                if name.lower() in NOT_RETURNED:
                    continue
                for value in reply.raw.headers.getlist(name):
                    if name.lower() == "set-cookie":
                        value = _client_cookie(value)
                    response.headers.add(name, value)
            call.status = reply.status_code
            call.content_type = reply.headers.get("Content-Type", "")
            call.body = decoded(reply.content, call.content_type)
            call.set_cookies = dict(
                _cookie_pair(header) for header in reply.raw.headers.getlist("Set-Cookie")
            )
        call.elapsed_ms = round((time.perf_counter() - started) * 1000)
        self.cassette.write(call)
        return response


def _body_params(request: Request, body: bytes) -> tuple[dict, str | None]:
    """The parameters a request body carries, and how: a form, a JSON object, or none."""
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.to_dict(), "form"
    if request.mimetype == "application/json" and body:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}, None
        if isinstance(data, dict):
            return data, "json"
    return {}, None


def _failure(error: OSError) -> str:
    if isinstance(error, requests.Timeout):
        return "timeout"
    if isinstance(error, requests.exceptions.SSLError):
        return "tls"
    if isinstance(error, requests.ConnectionError):
        return "refused"
    return "failed"


def _cookie_pair(header: str) -> tuple[str, str]:
    name, _, value = header.split(";")[0].partition("=")
    return name.strip(), value.strip()


def _client_cookie(header: str) -> str:
    """A Set-Cookie header without `Domain` and `Secure`, which bind it to the upstream."""
    pair, *attributes = header.split(";")
    kept = [
        a for a in attributes if a.strip().split("=")[0].lower() not in COOKIE_ATTRIBUTES_DROPPED
    ]
    return ";".join([pair, *kept])
