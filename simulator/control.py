"""The control API (`/_sim/...`, JSON): reset, world, clock, seller-side actions, faults, logs.

Each endpoint is a plain function of the simulator's state and a JSON-like body, returning
JSON-like values; the blueprint at the bottom is the HTTP edge, and the in-process
`SellerSide` calls the same functions without a request. Every request is checked before
anything changes: a key the endpoint does not know or a value of the wrong kind is refused
naming the key and the value (`refusal` gives the JSON error and its 4xx), and the seller is
as it was. Over HTTP a body must also be a JSON object sent as `application/json`, and with
a token set (see `guard`), every request under `/_sim` must present it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from datetime import datetime
from fnmatch import fnmatchcase

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from simulator import guard, snapshot
from simulator.api import date, stamp
from simulator.model import STATUS_NAMES, Seller, SellerError, Service
from simulator.world import (
    LARGEST_AMOUNT,
    TARIFF_KEYS,
    WorldError,
    _amount,
    _int,
    edited_tariff,
    parse_duration,
    parse_time,
    seller_from_world,
    shown,
)

bp = Blueprint("control", __name__, url_prefix="/_sim")
LARGEST_SEED = 2**32 - 1


class ControlError(Exception):
    """A bad control request: answered with `status` (400 unless said) naming `key`.

    Without a key, the message names it first (`times: expected ...`), as `Faults` words it.
    `type` is the error's type in the reply: `control`, or `missed` for what is not there.
    """

    def __init__(self, key: str, problem: str, status: int = 400, type: str = "control"):
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key or problem.partition(":")[0]
        self.status = status
        self.type = type


# What the control API refuses, each answered by `refusal`; anything else is a bug (a 500).
REFUSALS = (ControlError, WorldError, SellerError, ValueError)


def refusal(error: Exception) -> tuple[dict, int]:
    """A refused control request as the API answers it: the JSON error and its HTTP status."""
    if isinstance(error, ControlError):
        return error_body(error.type, error.key, str(error)), error.status
    if isinstance(error, WorldError):
        return error_body("control", error.path, str(error)), 400
    if isinstance(error, SellerError):
        return error_body(error.type, error.object, error.msg), 409
    # any other refusal of a value: its message names the key first
    return error_body("control", str(error).partition(":")[0], str(error)), 400


def error_body(type: str, key: str, msg: str) -> dict:
    return {"error": {"type": type, "object": key, "msg": msg}}


# -- reading a body's values ----------------------------------------------------------------


def checked(data, allowed: set[str] | frozenset[str]) -> dict:
    """`data` if it is a mapping of `allowed` keys only; ControlError naming the first other."""
    if not isinstance(data, dict):
        raise ControlError("body", f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(str(key) for key in set(data) - set(allowed))
    if unknown:
        raise ControlError(unknown[0], f"unknown key; expected one of {sorted(allowed)}")
    return data


def arg(data: dict, name: str):
    if name not in data:
        raise ControlError(name, "missing")
    return data[name]


REQUIRED = object()


def text(data: dict, name: str, default=REQUIRED) -> str | None:
    """A string value (`default` if the key is absent); ControlError for another kind."""
    if name not in data:
        if default is REQUIRED:
            raise ControlError(name, "missing")
        return default
    value = data[name]
    if not isinstance(value, str):
        raise ControlError(name, f"expected a string, got {shown(value)}")
    return value


def name_of(data: dict, name: str) -> str:
    """A required, non-empty string value."""
    value = text(data, name)
    if not value.strip():
        raise ControlError(name, "expected a non-empty name")
    return value


def address(data: dict, name: str = "ip") -> str | None:
    """An optional IP address."""
    value = text(data, name, None)
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ControlError(name, f"expected an IP address, got {shown(value)}") from None


def later(now: datetime, delta, key: str, value) -> datetime:
    try:
        return now + delta
    except OverflowError:
        raise ControlError(key, f"{shown(value)} from {stamp(now)} is past the year 9999") from None


def how_many(value, key: str) -> int | None:
    """A count of 1 or more (an int, or its digits as a query string gives them), or None."""
    if value is None:
        return None
    if type(value) is int:
        value = str(value)  # in-process and over HTTP, the same check and the same words
    if not (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) < 10
        and int(value) > 0
    ):
        raise ControlError(key, f"expected a whole number >= 1, got {shown(value)}")
    return int(value)


def service_view(service: Service, s: Seller) -> dict:
    """A service as the control API and the scenario checks see it."""
    tariff = s.tariffs.get(service.tariff)
    return {
        "id": service.id,
        "account": service.account,
        "tariff": service.tariff,
        "tariff_intname": tariff.intname if tariff else "",
        "type": service.type,
        "period": service.period,
        "status": STATUS_NAMES[service.status],
        "opened": stamp(service.opened),
        "expires": date(service.expires),
        "remoteid": service.remoteid,
        "name": service.name,
        "addons": {
            k: (v if isinstance(v, bool | int) else str(v)) for k, v in service.addons.items()
        },
        "params": dict(service.params),
        "ips": list(service.ips),
    }


# -- seller-side actions --------------------------------------------------------------------


def _service(data) -> int:
    return _int(arg(data, "service"), "service")


def _tariff(s: Seller, data: dict):
    tariff_id = _int(arg(data, "id"), "id")
    if tariff_id not in s.tariffs:
        raise SellerError("missed", "id", f"no tariff {tariff_id}")
    return s.tariffs[tariff_id]


def _create_service(s: Seller, d: dict) -> dict:
    params = {k: text(d, k) for k in SERVICE_PARAMS if k in d}
    created = s.create_service(
        name_of(d, "account"),
        _int(arg(d, "tariff"), "tariff"),
        _int(d.get("period", 1), "period"),
        address(d),
        params,
        text(d, "remoteid", ""),
    )
    return service_view(created, s)


SERVICE = frozenset({"service"})
# what a service bought on the seller directly may be given: a hosting account its username
SERVICE_PARAMS = ("name", "domain", "hostname", "licname", "username")
# each action: the keys its body may hold, and what it does with them
ACTIONS: dict[str, tuple[frozenset, Callable[[Seller, dict], object]]] = {
    "activate": (SERVICE, lambda s, d: s.activate(_service(d))),
    "suspend": (SERVICE, lambda s, d: s.staff_suspend(_service(d))),
    "resume": (SERVICE, lambda s, d: s.staff_resume(_service(d))),
    "delete": (SERVICE, lambda s, d: s.staff_delete(_service(d))),
    "add_ip": (SERVICE | {"ip"}, lambda s, d: {"ip": s.add_ip(_service(d), address(d))}),
    "remove_ip": (SERVICE | {"ip"}, lambda s, d: {"ip": s.remove_ip(_service(d), address(d))}),
    "set_addon": (
        SERVICE | {"addon", "value"},
        lambda s, d: s.set_addon(_service(d), name_of(d, "addon"), arg(d, "value")),
    ),
    "set_param": (
        SERVICE | {"name", "value"},
        lambda s, d: s.set_param(_service(d), name_of(d, "name"), arg(d, "value")),
    ),
    "topup": (
        frozenset({"account", "amount"}),
        lambda s, d: s.topup(
            name_of(d, "account"), _amount(arg(d, "amount"), "amount", LARGEST_AMOUNT)
        ),
    ),
    "edit_tariff": (
        frozenset({"id"} | TARIFF_KEYS - {"type"}),
        lambda s, d: s.add_tariff(edited_tariff(_tariff(s, d), d, f"edit_tariff {d.get('id')}")),
    ),
    "create_service": (
        frozenset({"account", "tariff", "period", "ip", "remoteid", *SERVICE_PARAMS}),
        _create_service,
    ),
}


# -- what each endpoint does, without a request ----------------------------------------------


def reset(state, data: dict) -> dict:
    """Replace the whole state with a new seller holding `world` (empty if none)."""
    data = checked(data, {"world", "start", "seed"})
    start = parse_time(data["start"], "start") if data.get("start") is not None else None
    seed = _int(data.get("seed", 0), "seed")
    if not 0 <= seed <= LARGEST_SEED:
        raise ControlError("seed", f"expected 0 to {LARGEST_SEED}, got {shown(seed)}")
    new = seller_from_world(data.get("world") or {}, start, seed)
    with state.seller.lock:
        state.seller = new
    return {"now": stamp(new.now)}


def clock(state) -> dict:
    """The simulated time, when the automation next has work, and how the clock runs.

    `mode` is `manual`, `real` or `speed`; `speed` is simulated seconds a wall second (0 for a
    manual clock, 1 for a real one), as the dashboard shows them.
    """
    reply = clock_times(state)
    due = reply["next_due"]
    return reply | {"now": stamp(reply["now"]), "next_due": stamp(due) if due else None}


def clock_times(state) -> dict:
    """`clock` with its times as datetimes, to the second as its text gives them."""
    s = state.seller
    with s.lock:
        due = s.next_due()
        return {"now": _to_second(s.now), "next_due": _to_second(due)} | state.clock.view()


def _to_second(when: datetime | None) -> datetime | None:
    """`when` as `stamp` writes it, to the second."""
    return when.replace(microsecond=0) if when and when.microsecond else when


def move_clock(state, data: dict) -> dict:
    """Advance the clock `to` a time or by `advance` (`5m`), running the seller's automation."""
    data = checked(data, {"to", "advance"})
    if len(data) != 1:
        raise ControlError("to", "expected exactly one of 'to' (a time) or 'advance' (5m)")
    s = state.seller
    with s.lock:
        if "to" in data:
            when = parse_time(data["to"], "to")
        else:
            step = parse_duration(data["advance"], "advance")
            when = later(s.now, step, "advance", data["advance"])
        _move(state, when)
    return clock(state)


def move_clock_to(state, when) -> dict:
    """`move_clock` `to` a time, its reply as `clock_times` gives it: what the harness asks at
    every step of its clock, without a time rendered and parsed as text each way."""
    s = state.seller
    with s.lock:
        if not (isinstance(when, datetime) and when.tzinfo is None):  # else as it is parsed
            when = parse_time(when if isinstance(when, datetime) else str(when), "to")
        _move(state, when)
    return clock_times(state)


def _move(state, when: datetime) -> None:
    state.seller.advance_to(when)
    state.clock.anchor(state.seller)  # a running clock runs on from where the hand left it


def known_action(name: str) -> None:
    """Nothing if `name` is a seller-side action; ControlError naming the actions if not."""
    if name not in ACTIONS:
        raise ControlError(
            "action", f"unknown action {shown(name)}; expected one of {sorted(ACTIONS)}"
        )


def action(s: Seller, name: str, data: dict) -> dict:
    """A seller-side action of the scenario format (`seller.<name>`), done by the seller's staff."""
    known_action(name)
    keys, run = ACTIONS[name]
    data = checked(data, keys)
    with s.lock:
        return {"ok": True, "result": run(s, data)}


def faults(s: Seller) -> dict:
    """The queued faults: per kind what is left and what they have hit, and each counter."""
    with s.lock:
        return {"pending": s.faults.pending(), "used": s.faults.used, "faults": s.faults.to_list()}


def fault_list(s: Seller) -> list[dict]:
    """The queued fault counters, oldest first: `faults`'s `faults`."""
    with s.lock:
        return s.faults.to_list()


def add_fault(s: Seller, data: dict) -> dict:
    """Queue a fault: `{kind, times}`, optionally aimed at `func` and `account`."""
    data = checked(data, {"kind", "times", "func", "account"})
    with s.lock:
        try:
            s.faults.add(
                arg(data, "kind"), arg(data, "times"), data.get("func"), data.get("account")
            )
        except ValueError as error:  # Faults.add names the key first: "times: ..."
            raise ControlError("", str(error)) from None
    return faults(s)


def clear_faults(s: Seller) -> dict:
    with s.lock:
        s.faults.clear()
    return faults(s)


def calls(s: Seller, func: str | None = None, last: int | str | None = None) -> dict:
    """The call log, oldest first: of `func` alone (a glob) if given, the `last` N if given."""
    last = how_many(last, "last")
    with s.lock:
        entries = [
            c for c in s.calls if func is None or fnmatchcase(str(c.get("func") or ""), func)
        ]
    return {"calls": entries[-last:] if last else entries}


def clear_calls(s: Seller) -> dict:
    with s.lock:
        s.calls.clear()
    return {"calls": []}


def services(s: Seller, account: str | None = None, remoteid: str | None = None) -> dict:
    with s.lock:
        if account is not None:
            chosen = s.services.of_account(account, remoteid)
        else:
            chosen = [x for x in s.services.values() if remoteid is None or x.remoteid == remoteid]
        return {"services": [service_view(x, s) for x in chosen]}


def one_service(s: Seller, service_id: int) -> dict:
    with s.lock:
        return service_view(s.service(service_id), s)


def account(s: Seller, login: str) -> dict:
    with s.lock:
        a = s.account(login)
        return {
            "login": a.login,
            "balance": str(a.balance),
            "currency": s.currency,
            "level": a.level,
            "can_suspend": a.can_suspend,
            "pending_events": pending_events(s, login),
            "failed_logins": s.failed_logins.count(a.login, s.now, s.wall_clock()),
        }


def pending_events(s: Seller, login: str) -> int:
    """How many events wait on the account's feed: `account`'s `pending_events`."""
    with s.lock:
        return len(s.feeds[s.account(login).login])


def ledger(s: Seller, account: str | None = None) -> dict:
    with s.lock:
        return {
            "ledger": [
                {
                    "id": e.id,
                    "account": e.account,
                    "amount": str(e.amount),
                    "reason": e.reason,
                    "service": e.service,
                    "date": stamp(e.date),
                }
                for e in s.ledger
                if account is None or e.account == account
            ]
        }


def whole_state(s: Seller) -> dict:
    with s.lock:
        return snapshot.as_json(s)


# -- named snapshots in the state folder ----------------------------------------------------


def snapshot_file(state, data: dict):
    """The file the body's `name` names in the state folder; ControlError if it cannot be."""
    data = checked(data, {"name"})
    if state.state_dir is None:
        raise ControlError(
            "name",
            "no state folder: start the simulator with --state-dir (or give create_app "
            "a state_dir) to save snapshots",
            409,
        )
    name = arg(data, "name")
    try:
        return name, snapshot.named(state.state_dir, name)
    except snapshot.SnapshotNameError as error:
        raise ControlError("name", str(error)) from None


def snapshots(state) -> dict:
    """The names of the snapshots in the state folder."""
    return {"snapshots": snapshot.names(state.state_dir) if state.state_dir else []}


def save_snapshot(state, data: dict) -> dict:
    """Save the whole state as the snapshot `name` (replacing one of that name)."""
    name, path = snapshot_file(state, data)
    s = state.seller
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with s.lock:
            snapshot.save(s, path)
    except OSError as error:  # the folder's trouble, told without the machine's paths
        raise ControlError("name", f"cannot save {name!r}: {error.strerror}", 507) from None
    return {"ok": True, "name": name}


def restore(state, data: dict) -> dict:
    """Replace the whole state with the snapshot `name`; a bad one changes nothing."""
    name, path = snapshot_file(state, data)
    try:
        new = snapshot.load(path)
    except FileNotFoundError:
        raise ControlError("name", f"no snapshot {name!r}", 404, "missed") from None
    except OSError as error:
        raise ControlError("name", f"cannot read {name!r}: {error.strerror}", 507) from None
    except snapshot.SnapshotError as error:
        raise ControlError("name", f"snapshot {name!r} cannot be restored: {error}") from None
    with state.seller.lock:
        state.seller = new
    return {"ok": True, "name": name, "now": stamp(new.now)}


# -- the HTTP edge: the guard, the errors, reading a request --------------------------------


def holder():
    return current_app.extensions["simulator"]


def seller() -> Seller:
    return holder().seller


def is_control_path(path: str) -> bool:
    return path == bp.url_prefix or path.startswith(bp.url_prefix + "/")


@bp.before_app_request
def require_token():
    """Refuse any control request without the token, when one is set; others pass."""
    token = holder().token
    if token is None or not is_control_path(request.path):
        return None
    given = guard.presented(
        request.headers.get("Authorization"), request.cookies.get(guard.TOKEN_COOKIE)
    )
    if guard.accepts(token, given):
        return None
    problem = "missing" if given is None else "wrong"
    reply = jsonify(
        error_body(
            "auth",
            "token",
            f"token: {problem}; the control API needs its token, sent as "
            f"'Authorization: Bearer <token>' or the cookie {guard.TOKEN_COOKIE}=<token>",
        )
    )
    reply.headers["WWW-Authenticate"] = 'Bearer realm="simulator control API"'
    return reply, 401


def refused(error: Exception):
    """Any refusal (`REFUSALS`) as its JSON error and 4xx."""
    reply, status = refusal(error)
    return jsonify(reply), status


for refused_kind in REFUSALS:
    bp.register_error_handler(refused_kind, refused)


def http_error(error: HTTPException):
    """A routing or protocol error under `/_sim` (unknown path, wrong method) as JSON."""
    reply = jsonify(
        error_body("control", "path", f"{request.method} {shown(request.path)}: {error.name}")
    )
    for header, value in error.get_headers():
        if header.lower() == "allow":
            reply.headers[header] = value
    return reply, error.code


def body(allowed: set[str] | frozenset[str] | None = None) -> dict:
    """The request's JSON object (of `allowed` keys only, if given); ControlError otherwise.

    An empty body with the JSON content type is `{}`. The content type is required even
    then: a web page cannot send it across origins without asking first, so a page open in
    a browser cannot drive a simulator on this machine.
    """
    if request.mimetype != "application/json":
        raise ControlError(
            "body",
            "expected a JSON object sent with Content-Type: application/json ({} for none), "
            f"got Content-Type {shown(request.mimetype or 'none')}",
            415,
        )
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ControlError("body", "nested too deeply") from None
    except ValueError as error:  # bad UTF-8 and numbers past 4300 digits included
        raise ControlError("body", f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ControlError("body", f"expected a JSON object, got {type(data).__name__}")
    return data if allowed is None else checked(data, allowed)


@bp.post("/reset")
def reset_endpoint():
    return jsonify(reset(holder(), body()))


@bp.get("/clock")
def clock_endpoint():
    return jsonify(clock(holder()))


@bp.post("/clock")
def move_clock_endpoint():
    return jsonify(move_clock(holder(), body()))


@bp.post("/actions/<name>")
def action_endpoint(name: str):
    known_action(name)  # before the body is read: an unknown action is told first
    return jsonify(action(seller(), name, body()))


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults_endpoint():
    """Queue a fault (`{kind, times}`), list the pending ones, or clear them all."""
    if request.method == "POST":
        return jsonify(add_fault(seller(), body()))
    if request.method == "DELETE":
        return jsonify(clear_faults(seller()))
    return jsonify(faults(seller()))


@bp.route("/calls", methods=["GET", "DELETE"])
def calls_endpoint():
    """The call log, oldest first (`?func=GLOB`, `?last=N` for the last N), or clear it."""
    if request.method == "DELETE":
        return jsonify(clear_calls(seller()))
    return jsonify(calls(seller(), request.args.get("func"), request.args.get("last")))


@bp.get("/services")
def services_endpoint():
    return jsonify(services(seller(), request.args.get("account"), request.args.get("remoteid")))


@bp.get("/services/<int:service_id>")
def one_service_endpoint(service_id: int):
    return jsonify(one_service(seller(), service_id))


@bp.get("/accounts/<login>")
def account_endpoint(login: str):
    return jsonify(account(seller(), login))


@bp.get("/ledger")
def ledger_endpoint():
    return jsonify(ledger(seller(), request.args.get("account")))


@bp.get("/state")
def state_endpoint():
    return jsonify(whole_state(seller()))


@bp.get("/snapshots")
def snapshots_endpoint():
    return jsonify(snapshots(holder()))


@bp.post("/snapshot")
def save_snapshot_endpoint():
    return jsonify(save_snapshot(holder(), body()))


@bp.post("/restore")
def restore_endpoint():
    return jsonify(restore(holder(), body()))
