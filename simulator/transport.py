"""Calling a WSGI app in-process: real requests and replies, no socket.

Two clients share one way in: `in_process_session` is a full `requests.Session` with a
transport adapter; `in_process_client` is the part of a session that the engine and the
scenario harness use (get, post, delete; params, data, json; cookies), several times cheaper
per call, for runs that make a call every simulated 5 minutes.

Both hand a simulator app's API calls (GET and POST to `/billmgr`) straight to its dispatcher
(`simulator.api.direct_reply`), which gives the very status, headers and bytes the WSGI view
gives, without Flask's request cycle; every other request, and any other app, goes through
WSGI (`call_app`).

A simulator fault reply (`X-Simulator-Fault`) becomes the exception a real socket would give:
`down` and `lose_reply` a ConnectionError, `slow` a ReadTimeout; `error` stays an HTTP 500.
"""

from __future__ import annotations

import http.client
import io
import json as jsonlib
import re
import sys
from datetime import timedelta
from functools import cached_property
from types import SimpleNamespace
from urllib.parse import unquote_to_bytes, urlencode, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.cookies import RequestsCookieJar, cookiejar_from_dict, extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict

API_PATHS = ("/billmgr", "/manager/billmgr")  # as `simulator.api` routes them
_api = None  # `simulator.api`, once a call needs it


def call(app, method: str, url: str, headers, body) -> tuple[str, list, bytes]:
    """One request to `app`: an API call to a simulator straight to its dispatcher, else WSGI."""
    direct = direct_call(app, method, url, headers, body)
    if direct is not None:
        return direct
    return call_app(app, method, url, headers, body)


def direct_call(app, method: str, url: str, headers, body) -> tuple[str, list, bytes] | None:
    """The reply of a simulator's dispatcher, or None for a request only WSGI serves."""
    holder = app.extensions.get("simulator") if hasattr(app, "extensions") else None
    if holder is None or method not in ("GET", "POST"):
        return None
    parts = urlsplit(url)
    if parts.path not in API_PATHS:
        return None
    content_type = cookies = None
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "content-type":
            content_type = value
        elif lowered == "cookie":
            cookies = value
    if content_type and content_type.lower().lstrip().startswith("multipart/"):
        return None
    try:
        raw_query = parts.query.encode("latin-1")
    except UnicodeEncodeError:
        return None  # as WSGI would fail on it, so WSGI answers it
    if isinstance(body, str):
        body = body.encode("utf-8")
    global _api
    if _api is None:  # imported at the first API call: it imports Flask, plain WSGI apps need not
        from simulator import api as _api

    status, reply_headers, content = _api.direct_reply(
        holder, method, raw_query, content_type or "", body or b"", cookies
    )
    return _api.status_line(status), reply_headers, content


def call_app(app, method: str, url: str, headers, body) -> tuple[str, list, bytes]:
    """Run one request through `app` as a WSGI server would; its status, headers and body."""
    parts = urlsplit(url)
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = body or b""
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(parts.path or "/").decode("latin-1"),
        "QUERY_STRING": parts.query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        "simulator.in_process": True,
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ[key] = value
        elif key != "CONTENT_LENGTH":
            environ[f"HTTP_{key}"] = value
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"], started["headers"] = status, response_headers
        return lambda data: None

    replies = app(environ, start_response)
    try:
        content = b"".join(replies)
    finally:
        if hasattr(replies, "close"):
            replies.close()
    return started["status"], started["headers"], content


class _Raw:
    """Where `requests` reads Set-Cookie from, so the session keeps cookies as over a socket."""

    def __init__(self, headers):
        # requests reads nothing from a reply that sets no cookie, so most replies skip this.
        self._original_response = None
        if any(name.lower() in ("set-cookie", "set-cookie2") for name, _ in headers):
            message = http.client.HTTPMessage()
            for name, value in headers:
                message[name] = value
            self._original_response = SimpleNamespace(msg=message)

    def close(self):
        pass


def _response(status: str, headers: list, body: bytes, url: str, request) -> requests.Response:
    """The reply as `requests` gives it, or the exception a socket would give for a fault."""
    fault = content_type = None
    for name, value in headers:  # the first of a name counts, as in the reply's header dict
        lowered = name.lower()
        if lowered == "content-type" and content_type is None:
            content_type = value
        elif lowered == "x-simulator-fault" and fault is None:
            fault = value
    if fault in ("down", "lose_reply"):
        raise requests.ConnectionError(f"connection refused ({fault})", request=request)
    if fault == "slow":
        raise requests.ReadTimeout("no reply before the timeout", request=request)
    return InProcessResponse(status, headers, body, url, request, content_type or "")


class InProcessResponse(requests.Response):
    """A `requests.Response` whose header dict, cookie jar and `raw` are made when first read:
    the engine's client reads none of them, and `Response()` making its empty ones was most
    of what building a reply cost. Each is what `requests` would hold for the reply."""

    def __init__(self, status: str, headers: list, body: bytes, url: str, request, type: str):
        # not `super().__init__()`: it makes a header dict and a cookie jar to be replaced
        code, _, self.reason = status.partition(" ")
        self.status_code = int(code)
        self._header_list = headers
        self._content = body
        self._content_consumed = True
        self._next = None
        self.url = url
        self.request = request
        self.history = []
        self.elapsed = timedelta(0)
        charset = type.partition("charset=")[2]
        self.encoding = charset.split(";")[0].strip().strip('"') or "utf-8"

    @cached_property
    def headers(self) -> CaseInsensitiveDict:
        fields = CaseInsensitiveDict()
        for name, value in self._header_list:
            fields.setdefault(name, value)
        return fields

    @cached_property
    def cookies(self) -> RequestsCookieJar:
        return cookiejar_from_dict({})

    @cached_property
    def raw(self) -> _Raw:
        return _Raw(self._header_list)


class WSGIAdapter(BaseAdapter):
    """A transport adapter that hands each prepared request to a WSGI app."""

    def __init__(self, app):
        super().__init__()
        # Cookies live in the requests session only, as they would over a socket.
        self.app = app

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        status, headers, body = call(
            self.app, request.method, request.url, request.headers, request.body
        )
        response = _response(status, headers, body, request.url, request)
        extract_cookies_to_jar(response.cookies, request, response.raw)
        return response

    def close(self):
        pass


def in_process_session(app, base_url: str = "http://simulator") -> requests.Session:
    """A session whose requests to `base_url` go straight to `app`."""
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc applies to an app in this process
    session.mount(base_url, WSGIAdapter(app))
    return session


class InProcessClient:
    """What the engine's seller client and the harness use of a `requests.Session`, in-process.

    Requests are encoded as `requests` encodes them (None values dropped, lists repeated) and
    cookies the app sets are sent back, as one host's session would. Not supported: files,
    auth, redirects, hooks, streaming.
    """

    def __init__(self, app):
        self.app = app
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, url: str, params=None, data=None, json=None, headers=None, timeout=None
    ) -> requests.Response:
        fields = dict(headers or {})
        body = None
        if params:
            url += ("&" if "?" in url else "?") + _encode(params)
        if json is not None:
            body = jsonlib.dumps(json, allow_nan=False).encode("utf-8")
            fields.setdefault("Content-Type", "application/json")
        elif isinstance(data, (dict, list)):
            body = _encode(data)
            fields.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif data is not None:
            body = data
        if self.cookies:
            fields["Cookie"] = "; ".join(map("=".join, self.cookies.items()))
        status, reply_headers, content = call(self.app, method, url, fields, body)
        for name, value in reply_headers:
            if name.lower() == "set-cookie":
                self._keep_cookie(value)
        return _response(status, reply_headers, content, url, None)

    def _keep_cookie(self, header: str) -> None:
        pair, *attributes = header.split(";")
        name, _, value = pair.strip().partition("=")
        if any(a.strip().lower() == "max-age=0" for a in attributes):
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs) -> requests.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _encode(values) -> str:
    """Form or query encoding as `requests` does it."""
    pairs = values.items() if isinstance(values, dict) else values
    flat = [
        (key, value)
        for key, many in pairs
        for value in (many if isinstance(many, (list, tuple)) else [many])
        if value is not None
    ]
    # A call's names and values (a function, an id, a session) are mostly characters that
    # urlencode leaves as they are, and quoting them one by one was most of a call's
    # encoding. Bytes show as b'...', never only such characters: urlencode takes them.
    # Written plain, such a form has one '&' between pairs and one '=' in each, no more.
    written = [f"{key!s}={value!s}" for key, value in flat]
    form = "&".join(written)
    if form.count("&") == len(written) - 1 and _PLAIN_FORM.fullmatch(form):
        return form
    return urlencode(flat)


# Pairs of what urlencode's `quote_plus` never changes.
_UNQUOTED = "[A-Za-z0-9_.~-]*"
_PLAIN_FORM = re.compile(f"{_UNQUOTED}={_UNQUOTED}(?:&{_UNQUOTED}={_UNQUOTED})*")


def in_process_client(app) -> InProcessClient:
    """A light session-like client whose every request goes straight to `app`."""
    return InProcessClient(app)
