"""A `requests` session that calls a WSGI app in-process: real requests and replies, no socket.

A simulator fault reply (`X-Simulator-Fault`) becomes the exception a real socket would give:
`down` and `lose_reply` a ConnectionError, `slow` a ReadTimeout; `error` stays an HTTP 500.
"""

from __future__ import annotations

import http.client
from types import SimpleNamespace

import requests
from requests.adapters import BaseAdapter
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from werkzeug.test import Client


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
    """A transport adapter that hands each prepared request to a WSGI app."""

    def __init__(self, app):
        super().__init__()
        # Cookies live in the requests session only, as they would over a socket.
        self.client = Client(app, use_cookies=False)

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        reply = self.client.open(
            request.path_url,
            method=request.method,
            headers=dict(request.headers),
            data=request.body,
            environ_overrides={"simulator.in_process": True},
        )
        fault = reply.headers.get("X-Simulator-Fault")
        if fault in ("down", "lose_reply"):
            raise requests.ConnectionError(f"connection refused ({fault})", request=request)
        if fault == "slow":
            raise requests.ReadTimeout("no reply before the timeout", request=request)
        response = requests.Response()
        response.status_code = reply.status_code
        response.headers = CaseInsensitiveDict(reply.headers)
        response._content = reply.get_data()
        response._content_consumed = True
        response.raw = _Raw(reply.headers.items())
        response.url = request.url
        response.request = request
        response.encoding = reply.mimetype_params.get("charset", "utf-8")
        response.reason = reply.status.partition(" ")[2]
        extract_cookies_to_jar(response.cookies, request, response.raw)
        return response

    def close(self):
        pass


def in_process_session(app, base_url: str = "http://simulator") -> requests.Session:
    """A session whose requests to `base_url` go straight to `app`."""
    session = requests.Session()
    session.mount(base_url, WSGIAdapter(app))
    return session
