"""A `requests` session that calls a WSGI app in-process: real requests and replies, no socket.

A simulator fault reply (`X-Simulator-Fault`) becomes the exception a real socket would give:
`down` and `lose_reply` a ConnectionError, `slow` a ReadTimeout; `error` stays an HTTP 500.
"""

from __future__ import annotations

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.test import Client


class WSGIAdapter(BaseAdapter):
    """A transport adapter that hands each prepared request to a WSGI app."""

    def __init__(self, app):
        super().__init__()
        self.client = Client(app)

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
        response.url = request.url
        response.request = request
        response.encoding = reply.mimetype_params.get("charset", "utf-8")
        response.reason = reply.status.partition(" ")[2]
        for cookie in reply.headers.getlist("Set-Cookie"):
            name, _, rest = cookie.partition("=")
            response.cookies.set(name, rest.partition(";")[0])
        return response

    def close(self):
        pass


def in_process_session(app, base_url: str = "http://simulator") -> requests.Session:
    """A session whose requests to `base_url` go straight to `app`."""
    session = requests.Session()
    session.mount(base_url, WSGIAdapter(app))
    return session
