"""A `requests` session that calls a WSGI app in-process: real requests and replies, no socket.

A simulator fault reply (`X-Simulator-Fault`) becomes the exception a real socket would give:
`down` and `lose_reply` a ConnectionError, `slow` a ReadTimeout; `error` stays an HTTP 500.
"""

from __future__ import annotations

import http.client
import io
import sys
from types import SimpleNamespace
from urllib.parse import unquote_to_bytes, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from werkzeug.http import parse_options_header


class _Raw:
    """Where `requests` reads Set-Cookie from, so the session keeps cookies as over a socket."""

    def __init__(self, headers):
        message = http.client.HTTPMessage()
        for name, value in headers:
            message[name] = value
        self._original_response = SimpleNamespace(msg=message)

    def close(self):
        pass


class WSGIAdapter(BaseAdapter):
    """A transport adapter that hands each prepared request to a WSGI app.

    It builds the WSGI environ itself and calls the app directly: werkzeug's test client does
    the same with several times the overhead, and scenarios make a call every simulated tick.
    """

    def __init__(self, app):
        super().__init__()
        # Cookies live in the requests session only, as they would over a socket.
        self.app = app

    def _environ(self, request) -> dict:
        url = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        environ = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(url.path or "/").decode("latin-1"),
            "QUERY_STRING": url.query,
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
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                if key == "CONTENT_TYPE":
                    environ[key] = value
                continue
            environ[f"HTTP_{key}"] = value
        return environ

    def _call(self, request) -> tuple[str, list[tuple[str, str]], bytes]:
        started = {}

        def start_response(status, headers, exc_info=None):
            started["status"], started["headers"] = status, headers
            return lambda data: None

        replies = self.app(self._environ(request), start_response)
        try:
            body = b"".join(replies)
        finally:
            if hasattr(replies, "close"):
                replies.close()
        return started["status"], started["headers"], body

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        status, headers, body = self._call(request)
        fields = CaseInsensitiveDict()
        for name, value in headers:
            fields.setdefault(name, value)
        fault = fields.get("X-Simulator-Fault")
        if fault in ("down", "lose_reply"):
            raise requests.ConnectionError(f"connection refused ({fault})", request=request)
        if fault == "slow":
            raise requests.ReadTimeout("no reply before the timeout", request=request)
        response = requests.Response()
        code, _, reason = status.partition(" ")
        response.status_code = int(code)
        response.headers = fields
        response._content = body
        response._content_consumed = True
        response.raw = _Raw(headers)
        response.url = request.url
        response.request = request
        content_type = parse_options_header(fields.get("Content-Type", ""))[1]
        response.encoding = content_type.get("charset", "utf-8")
        response.reason = reason
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
