"""The simulated seller as a test sees it: one interface, in-process or over the control API.

A `SellerSide` does every seller-side action of the scenario format (the seller's staff),
moves the clock, queues faults, and reads what the seller holds and what it was sent. Two
implementations give the same results: `InProcessSide` runs each on a simulator app's state
directly (no request, no socket), `SocketSide` sends it to a served simulator's control API
(`/_sim`). Services are dicts as the control API shows them, money is Decimal, times are
naive UTC datetimes, and anything the simulator will not do raises `SellerRefused`.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
import yaml

from simulator import control
from simulator.app import create_app
from simulator.world import WorldError, _int


class SellerRefused(Exception):
    """The simulator would not do it: the error's `type`, a message, the `object` it names.

    `type` is BILLmanager's (`missed`, `value`, `exists`, `not_enough_money`, ...) when the
    seller's rules refused, `control` when the request itself was wrong (a bad world, fault
    kind or duration: `object` is the key), `auth` when a guarded simulator wanted a token.
    `status` is the control API's HTTP status for it (400, 401, 404, 409, 415, ...), the
    same in-process; None when no simulator answered it (a world file that cannot be read).
    """

    def __init__(self, type: str, message: str, object: str = "", status: int | None = None):
        super().__init__(f"{type}: {message}")
        self.type, self.message, self.object, self.status = type, message, object, status


class SimulatorUnreachable(ConnectionError):
    """No simulator answers at the URL, or what answers is not a simulator's control API."""


def _refused(reply: dict, status: int) -> SellerRefused:
    """The control API's JSON error (`{"error": {type, object, msg}}`) as a SellerRefused."""
    error = reply.get("error")
    if not isinstance(error, dict):
        error = {"msg": f"HTTP {status}: {json.dumps(reply)[:200]}"}
    return SellerRefused(
        str(error.get("type", "control")),
        str(error.get("msg", "")),
        str(error.get("object") or ""),
        status,
    )


def _time(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp) if stamp else None


def _duration(value: str | timedelta) -> str:
    """A duration as the control API takes it: `5m`, or a timedelta in whole seconds."""
    if isinstance(value, timedelta) and not value % timedelta(seconds=1):
        return f"{int(value.total_seconds())}s"
    return str(value)  # anything else the control API refuses, naming it


def _whole(value, name: str) -> int:
    try:
        return _int(value, name)
    except WorldError as error:  # as the control API would refuse it, before asking it
        raise SellerRefused("control", str(error), name, 400) from None


def _given(**body) -> dict:
    """A body of the values given: a key left at None is left out (the API's default)."""
    return {key: value for key, value in body.items() if value is not None}


def _when(value: str | datetime) -> str | datetime:
    """A time as the control API takes it; a datetime goes as it is (JSON makes it a string)."""
    return value if isinstance(value, datetime) else str(value)


def world_of(world) -> tuple[dict, object]:
    """The seller section and start of `world`: a section, a scenario, or a file holding one.

    A file (YAML or JSON) must be a mapping with a `seller` section, as a scenario file is.
    """
    where = "world"
    if isinstance(world, str | os.PathLike):
        where = str(world)
        try:
            world = yaml.safe_load(Path(world).read_text(encoding="utf-8"))
        except OSError as error:
            raise SellerRefused("control", f"{where}: cannot read: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise SellerRefused("control", f"{where}: not YAML: {error}") from None
        if not isinstance(world, dict) or "seller" not in world:
            raise SellerRefused("control", f"{where}: expected a mapping with a `seller` section")
    if world is None:
        return {}, None
    if not isinstance(world, dict):
        raise SellerRefused("control", f"{where}: expected a mapping, got {type(world).__name__}")
    if "seller" in world:  # a whole scenario: its seller section and its start
        return world["seller"] or {}, world.get("start")
    return world, None


class SellerSide(ABC):
    """The simulated seller's staff, clock, faults and records, as a test drives them."""

    # -- what each implementation provides: the control API's operations, JSON-like --------

    @abstractmethod
    def _reset(self, body: dict) -> dict: ...

    @abstractmethod
    def _clock(self, body: dict | None) -> dict: ...

    @abstractmethod
    def _action(self, name: str, body: dict) -> dict: ...

    @abstractmethod
    def _faults(self, method: str, body: dict | None = None) -> dict: ...

    @abstractmethod
    def _calls(self, func: str | None, last: int | None, clear: bool = False) -> dict: ...

    @abstractmethod
    def _services(self, account: str | None, remoteid: str | None) -> dict: ...

    @abstractmethod
    def _service(self, service_id: int) -> dict: ...

    @abstractmethod
    def _account(self, login: str) -> dict: ...

    @abstractmethod
    def _ledger(self, account: str | None) -> dict: ...

    @abstractmethod
    def _state(self) -> dict: ...

    @abstractmethod
    def _snapshot(self, verb: str, body: dict | None) -> dict: ...

    def close(self) -> None:  # noqa: B027 - in-process there is nothing to let go of
        """Let go of any connection."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the world ---------------------------------------------------------------------------

    def load(self, world, *, start: str | datetime | None = None, seed: int = 0) -> None:
        """A new seller holding `world`: a `seller` section, a scenario, or a scenario file's path.

        The clock starts at `start`, else the scenario's `start`, else 2026-01-01 00:00.
        """
        section, world_start = world_of(world)
        start = start or world_start
        body = {"world": section, "seed": seed}
        if start:
            body["start"] = _when(start)
        self._reset(body)

    def reset(self, *, start: str | datetime | None = None, seed: int = 0) -> None:
        """A new, empty seller: no accounts, tariffs, services, faults or calls."""
        self.load({}, start=start, seed=seed)

    def state(self) -> dict:
        """The whole seller state, as `GET /_sim/state` and a snapshot file hold it."""
        return self._state()

    def snapshot(self, name: str) -> None:
        """Save the whole state as the snapshot `name` in the simulator's state folder."""
        self._snapshot("save", {"name": name})

    def restore(self, name: str) -> datetime:
        """Replace the whole state with the snapshot `name`; the clock's time it brings back."""
        return _time(self._snapshot("restore", {"name": name})["now"])

    def snapshots(self) -> list[str]:
        """The names of the snapshots in the simulator's state folder."""
        return self._snapshot("list", None)["snapshots"]

    # -- the seller's staff ------------------------------------------------------------------

    def activate(self, service: int) -> None:
        """Set up an ordered service (a tariff with `setup: manual` waits for this)."""
        self._action("activate", {"service": service})

    def suspend(self, service: int) -> None:
        self._action("suspend", {"service": service})

    def resume(self, service: int) -> None:
        self._action("resume", {"service": service})

    def delete(self, service: int) -> None:
        self._action("delete", {"service": service})

    def add_ip(self, service: int, ip: str | None = None) -> str:
        """Give a service `ip` (a new address if None); the address added."""
        return self._action("add_ip", _given(service=service, ip=ip))["result"]["ip"]

    def remove_ip(self, service: int, ip: str | None = None) -> str:
        """Take `ip` from a service (the most recently added if None); the address removed."""
        return self._action("remove_ip", _given(service=service, ip=ip))["result"]["ip"]

    def set_addon(self, service: int, addon: str, value) -> None:
        """Set an add-on (by its intname) to `value`: a number, on/off, or an item's name."""
        self._action("set_addon", {"service": service, "addon": addon, "value": value})

    def act(self, action: str, body: dict):
        """A seller-side action by its name in the scenario format (`activate`, `add_ip`, ...)
        with the control API's body; its result (a service, an address, or None)."""
        return self._action(action, body).get("result")

    def set_param(self, service: int, name: str, value) -> None:
        self._action("set_param", {"service": service, "name": name, "value": value})

    def topup(self, account: str, amount) -> None:
        """Add `amount` (Decimal, int or a string; never a float's rounding) to a balance."""
        self._action("topup", {"account": account, "amount": str(amount)})

    def edit_tariff(self, tariff: int, **changes) -> None:
        """Replace the keys given (`prices`, `addons`, `ostempl`, `recipes`, `name`, `setup`)."""
        self._action("edit_tariff", {**changes, "id": tariff})

    def create_service(
        self,
        account: str,
        tariff: int,
        period: int = 1,
        *,
        ip: str | None = None,
        remoteid: str = "",
        **params,
    ) -> dict:
        """A service bought on the seller directly, set up at once; `params`: name, domain, ..."""
        body = {"account": account, "tariff": tariff, "period": period, "remoteid": remoteid}
        if ip is not None:
            body["ip"] = ip
        return self._action("create_service", body | params)["result"]

    # -- the clock ---------------------------------------------------------------------------

    def clock(self) -> dict:
        """`now`, `next_due` (datetimes), `mode` (`manual`, `real`, `speed`) and `speed`."""
        return self._clock_reply(self._clock(None))

    def advance(self, duration: str | timedelta) -> datetime:
        """Move the clock on by `duration` (`30s`, `5m`, `2h`, `1d`), running what falls due."""
        return self._clock_reply(self._clock({"advance": _duration(duration)}))["now"]

    def clock_to(self, when: str | datetime) -> datetime:
        """Move the clock on to `when`, running what falls due; it never goes back."""
        return self.move_to(when)["now"]

    def move_to(self, when: str | datetime) -> dict:
        """Move the clock on to `when`, as `clock_to`; the clock as `clock()` reads it then."""
        return self._clock_reply(self._clock({"to": _when(when)}))

    @property
    def now(self) -> datetime:
        return self.clock()["now"]

    @property
    def next_due(self) -> datetime | None:
        """When the seller's automation (a set-up, an expiry) next has work, if ever."""
        return self.clock()["next_due"]

    @staticmethod
    def _clock_reply(reply: dict) -> dict:
        return reply | {"now": _time(reply["now"]), "next_due": _time(reply["next_due"])}

    # -- faults ------------------------------------------------------------------------------

    def fault(
        self, kind: str, times: int = 1, func: str | None = None, account: str | None = None
    ) -> None:
        """Queue `times` of `kind` for the next calls (of `func`, a glob, by `account`, if set)."""
        self._faults("POST", _given(kind=kind, times=times, func=func, account=account))

    def faults(self) -> list[dict]:
        """The queued fault counters, oldest first: id, kind, times left, func, account, used."""
        return self._faults("GET")["faults"]

    def clear_faults(self) -> None:
        self._faults("DELETE")

    def faults_used(self) -> dict[str, int]:
        """How many calls and reads each kind of fault has hit so far, spent counters too."""
        return self._faults("GET")["used"]

    # -- what the seller holds and was sent --------------------------------------------------

    def calls(self, func: str | None = None, last: int | None = None) -> list[dict]:
        """The API calls the seller got, oldest first: of `func` (a glob) alone, the `last` N."""
        return self._calls(func, last)["calls"]

    def clear_calls(self) -> None:
        self._calls(None, None, clear=True)

    def services(self, account: str | None = None, remoteid: str | None = None) -> list[dict]:
        return self._services(account, remoteid)["services"]

    def service(self, service_id: int) -> dict:
        return self._service(_whole(service_id, "service"))

    def account(self, login: str) -> dict:
        """An account: login, balance (Decimal), currency, level, can_suspend, pending_events."""
        reply = self._account(login)
        return reply | {"balance": Decimal(reply["balance"])}

    def balance(self, login: str) -> Decimal:
        return self.account(login)["balance"]

    def pending_events(self, login: str) -> int:
        """How many events wait on an account's feed, as `account` shows them."""
        return self._account(login)["pending_events"]

    def ledger(self, account: str | None = None) -> list[dict]:
        """Every balance movement, oldest first; `amount` is a Decimal, negative for a debit."""
        return [e | {"amount": Decimal(e["amount"])} for e in self._ledger(account)["ledger"]]


class InProcessSide(SellerSide):
    """A simulator app in this process, driven without a request: what the control API runs."""

    def __init__(self, app=None):
        self.app = app or create_app()
        self.holder = self.app.extensions["simulator"]

    def __repr__(self) -> str:
        return f"InProcessSide(now={self.holder.seller.now!r})"

    @property
    def seller(self):
        """The current `Seller` (a reset replaces it)."""
        return self.holder.seller

    def _run(self, function, *args):
        # As `before_request` does for a served app whose clock runs by itself.
        if self.holder.clock.running:
            self.holder.clock.catch_up(self.holder.seller)
        try:
            return function(*args)
        except control.REFUSALS as error:
            raise _refused(*control.refusal(error)) from None

    def _reset(self, body):
        return self._run(control.reset, self.holder, body)

    def _clock(self, body):
        if body is None:
            return self._run(control.clock, self.holder)
        return self._run(control.move_clock, self.holder, body)

    def _action(self, name, body):
        return self._run(control.action, self.seller, name, body)

    def _faults(self, method, body=None):
        function = {"GET": control.faults, "DELETE": control.clear_faults}.get(method)
        if function is None:
            return self._run(control.add_fault, self.seller, body)
        return self._run(function, self.seller)

    def _calls(self, func, last, clear=False):
        if clear:
            return self._run(control.clear_calls, self.seller)
        return self._run(control.calls, self.seller, func, last)

    def _services(self, account, remoteid):
        return self._run(control.services, self.seller, account, remoteid)

    def _service(self, service_id):
        return self._run(control.one_service, self.seller, service_id)

    def _account(self, login):
        return self._run(control.account, self.seller, login)

    def _ledger(self, account):
        return self._run(control.ledger, self.seller, account)

    def _state(self):
        return self._run(control.whole_state, self.seller)

    # The harness asks these at its clock's every step: each as the control API's reply gives
    # it, without the reply's other values or its times as text.

    def move_to(self, when):
        return self._run(control.move_clock_to, self.holder, when)

    @property
    def next_due(self):
        return self._run(control.clock_times, self.holder)["next_due"]

    def faults(self):
        return self._run(control.fault_list, self.seller)

    def pending_events(self, login):
        return self._run(control.pending_events, self.seller, login)

    def _snapshot(self, verb, body):
        if verb == "list":
            return self._run(control.snapshots, self.holder)
        function = control.save_snapshot if verb == "save" else control.restore
        return self._run(function, self.holder, body)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


class SocketSide(SellerSide):
    """A served simulator's control API (`<url>/_sim`), over HTTP.

    `token` is sent as `Authorization: Bearer <token>` (a guarded simulator asks for it).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ):
        url = url.rstrip("/")
        for suffix in ("/billmgr", "/_sim"):
            url = url.removesuffix(suffix)
        self.url = url
        self.timeout = timeout
        self.http = session or requests.Session()
        if session is None and is_loopback(url):
            self.http.trust_env = False  # no proxy stands between us and a local simulator
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"SocketSide({self.url!r})"

    @property
    def api_url(self) -> str:
        """Where the BILLmanager API answers: `url` + `/billmgr`."""
        return self.url + "/billmgr"

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, body: dict | None = None, **params) -> dict:
        params = {k: v for k, v in params.items() if v is not None}
        data = None if body is None else json.dumps(body, default=str)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        target = f"{self.url}/_sim{path}"
        try:
            response = self.http.request(
                method, target, params=params, data=data, headers=headers, timeout=self.timeout
            )
        except requests.Timeout:
            raise SimulatorUnreachable(
                f"the simulator at {self.url} did not answer within {self.timeout:g} s"
            ) from None
        except requests.ConnectionError as error:
            raise SimulatorUnreachable(
                f"no simulator answers at {self.url} ({_reason(error)})"
            ) from None
        try:
            reply = response.json()
        except ValueError:
            reply = None
        finally:
            response.close()  # back to the pool, even if what we raise outlives this call
        if response.status_code in (401, 403) and not (
            isinstance(reply, dict) and "error" in reply
        ):
            raise SellerRefused(
                "auth",
                f"HTTP {response.status_code}: the simulator wants a valid token",
                status=response.status_code,
            )
        if not isinstance(reply, dict):
            raise SimulatorUnreachable(
                f"{target} answered HTTP {response.status_code} without JSON: "
                "not a simulator's control API"
            )
        if response.status_code >= 400:
            raise _refused(reply, response.status_code)
        return reply

    def _reset(self, body):
        return self._send("POST", "/reset", body)

    def _clock(self, body):
        if body is None:
            return self._send("GET", "/clock")
        return self._send("POST", "/clock", body)

    def _action(self, name, body):
        return self._send("POST", f"/actions/{quote(name, safe='')}", body)

    def _faults(self, method, body=None):
        return self._send(method, "/faults", body)

    def _calls(self, func, last, clear=False):
        if clear:
            return self._send("DELETE", "/calls")
        return self._send("GET", "/calls", func=func, last=last)

    def _services(self, account, remoteid):
        return self._send("GET", "/services", account=account, remoteid=remoteid)

    def _service(self, service_id):
        return self._send("GET", f"/services/{service_id}")

    def _account(self, login):
        return self._send("GET", f"/accounts/{quote(str(login), safe='')}")

    def _ledger(self, account):
        return self._send("GET", "/ledger", account=account)

    def _state(self):
        return self._send("GET", "/state")

    def _snapshot(self, verb, body):
        if verb == "list":
            return self._send("GET", "/snapshots")
        return self._send("POST", "/snapshot" if verb == "save" else "/restore", body)


def _reason(error: Exception) -> str:
    """A connection error in a few words, not urllib3's nested repr."""
    text = str(error)
    for words in ("Connection refused", "Name or service not known", "No route to host"):
        if words in text:
            return words.lower()
    return type(error).__name__
