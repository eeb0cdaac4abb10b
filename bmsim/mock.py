"""`mock_billmanager(url)`: `requests` and `httpx` calls to `url` reach an in-process simulator.

In moto's manner: a context manager, a decorator, or (through the pytest plugin) a fixture.
`requests` sessions get the simulator's WSGI transport adapter for that URL, `httpx`
transports hand its requests to an `httpx.MockTransport` over the same app; no socket is
opened, and calls to any other URL go where they always go. The mock is a `SellerSide`,
so a test drives the seller's staff, clock and faults through it and reads what was sent.
"""

from __future__ import annotations

import functools
import inspect
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

import requests

from simulator.app import create_app
from simulator.side import InProcessSide
from simulator.transport import WSGIAdapter, call_app

DEFAULT_URL = "http://billmanager.test"
DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_and_path(url: str) -> tuple[tuple[str, str, int | None], str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or DEFAULT_PORTS.get(scheme)
    return (scheme, (parts.hostname or "").lower(), port), parts.path.rstrip("/")


class MockBillmanager(InProcessSide):
    """An in-process simulator that every `requests` and `httpx` call to `url` reaches.

    Each start (entering the `with`, each call of a decorated function) begins a new seller
    holding `world`: a `seller` section, a scenario, or a scenario file's path, and a new
    state folder for its snapshots, gone at the stop.
    """

    def __init__(self, url: str = DEFAULT_URL, world=None, *, start=None, seed: int = 0):
        origin, _ = _origin_and_path(url)
        if origin[0] not in DEFAULT_PORTS or not origin[1]:
            raise ValueError(f"url: expected http(s)://HOST[:PORT][/PATH], got {url!r}")
        super().__init__(create_app())
        self.url = url.rstrip("/")
        self.world, self.world_start, self.seed = world, start, seed
        self._origin, self._path = _origin_and_path(self.url)
        self._depth = 0
        self._snapshots: tempfile.TemporaryDirectory | None = None
        self.adapter = WSGIAdapter(self.app)
        self._httpx_transport = None

    def __repr__(self) -> str:
        return f"mock_billmanager({self.url!r})"

    @property
    def api_url(self) -> str:
        """Where the BILLmanager API answers: `url` + `/billmgr`."""
        return self.url + "/billmgr"

    def handles(self, url: str) -> bool:
        """Whether a call to `url` is this mock's."""
        origin, path = _origin_and_path(str(url))
        return origin == self._origin and (path == self._path or path.startswith(self._path + "/"))

    # -- on and off --------------------------------------------------------------------------

    def start(self) -> MockBillmanager:
        """Route calls to `url` here, with a new seller holding `world`."""
        if self._depth == 0:
            self.load(self.world, start=self.world_start, seed=self.seed)
            self._snapshots = tempfile.TemporaryDirectory(prefix="bmsim-snapshots-")
            self.holder.state_dir = Path(self._snapshots.name)
            ROUTER.add(self)
        self._depth += 1
        return self

    def stop(self) -> None:
        """Let calls to `url` go where they would go without the mock."""
        if self._depth == 0:
            raise RuntimeError(f"{self!r} is not started")
        self._depth -= 1
        if self._depth == 0:
            ROUTER.remove(self)
            self.holder.state_dir = None
            self._snapshots.cleanup()

    def __enter__(self) -> MockBillmanager:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __call__(self, target):
        """As a decorator: each call of a function (or each `test*` method of a class) runs
        with the mock started."""
        if isinstance(target, type):
            for name, member in list(vars(target).items()):
                if name.startswith("test") and callable(member):
                    setattr(target, name, self(member))
            return target
        if inspect.iscoroutinefunction(target):

            @functools.wraps(target)
            async def run_async(*args, **kwargs):
                with self:
                    return await target(*args, **kwargs)

            return run_async

        @functools.wraps(target)
        def run(*args, **kwargs):
            with self:
                return target(*args, **kwargs)

        return run

    # -- httpx ---------------------------------------------------------------------------------

    @property
    def httpx_transport(self):
        """An `httpx.MockTransport` over the simulator app (sync and async clients alike)."""
        if self._httpx_transport is None:
            import httpx

            self._httpx_transport = httpx.MockTransport(self._answer_httpx)
        return self._httpx_transport

    def _answer_httpx(self, request):
        import httpx

        status, headers, body = call_app(
            self.app, request.method, str(request.url), request.headers, request.content
        )
        # A fault reply becomes what a socket would give httpx, as WSGIAdapter does for requests.
        fault = next((v for k, v in headers if k.lower() == "x-simulator-fault"), None)
        if fault in ("down", "lose_reply"):
            raise httpx.ConnectError(f"connection refused ({fault})", request=request)
        if fault == "slow":
            raise httpx.ReadTimeout("no reply before the timeout", request=request)
        return httpx.Response(int(status.split()[0]), headers=headers, content=body)


def mock_billmanager(url: str = DEFAULT_URL, world=None, *, start=None, seed: int = 0):
    """A `MockBillmanager` for `url`: `with mock_billmanager(URL) as seller:` or a decorator.

    `@mock_billmanager` alone decorates with the default URL (`http://billmanager.test`).
    """
    if callable(url):
        return MockBillmanager()(url)
    return MockBillmanager(url, world, start=start, seed=seed)


class Router:
    """The started mocks, and the patches that send their calls to them while any is started."""

    def __init__(self):
        self.lock = threading.Lock()
        self.mocks: list[MockBillmanager] = []
        self.originals: dict = {}

    def find(self, url) -> MockBillmanager | None:
        for mock in reversed(self.mocks):  # the latest started wins, as with nested mocks
            if mock.handles(url):
                return mock
        return None

    def add(self, mock: MockBillmanager) -> None:
        with self.lock:
            if not self.mocks:
                self._patch()
            self.mocks.append(mock)

    def remove(self, mock: MockBillmanager) -> None:
        with self.lock:
            self.mocks.remove(mock)
            if not self.mocks:
                self._unpatch()

    def _patch(self) -> None:
        get_adapter = requests.Session.get_adapter
        self.originals[requests.Session, "get_adapter"] = get_adapter

        def routed_adapter(session, url):
            mock = self.find(url)
            return mock.adapter if mock is not None else get_adapter(session, url)

        requests.Session.get_adapter = routed_adapter
        try:
            import httpx
        except ImportError:  # httpx is optional: without it there is nothing of it to route
            return
        handle = httpx.HTTPTransport.handle_request
        handle_async = httpx.AsyncHTTPTransport.handle_async_request
        self.originals[httpx.HTTPTransport, "handle_request"] = handle
        self.originals[httpx.AsyncHTTPTransport, "handle_async_request"] = handle_async

        def routed(transport, request):
            mock = self.find(request.url)
            if mock is None:
                return handle(transport, request)
            return mock.httpx_transport.handle_request(request)

        async def routed_async(transport, request):
            mock = self.find(request.url)
            if mock is None:
                return await handle_async(transport, request)
            return await mock.httpx_transport.handle_async_request(request)

        httpx.HTTPTransport.handle_request = routed
        httpx.AsyncHTTPTransport.handle_async_request = routed_async

    def _unpatch(self) -> None:
        for (owner, name), original in self.originals.items():
            setattr(owner, name, original)
        self.originals = {}


ROUTER = Router()
