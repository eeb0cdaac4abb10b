"""The control API (`/_sim/...`, JSON): reset, world, clock, seller-side actions, faults, logs.

Every request is checked before anything changes: a body that is not a JSON object sent as
`application/json`, a key the endpoint does not know, or a value of the wrong kind is a 4xx
naming the key and the value, and the seller is as it was. With a token set (see `guard`),
every request under `/_sim` must present it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from datetime import datetime

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
    """

    def __init__(self, key: str, problem: str, status: int = 400):
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key or problem.partition(":")[0]
        self.status = status


def holder():
    return current_app.extensions["simulator"]


def seller() -> Seller:
    return holder().seller


def is_control_path(path: str) -> bool:
    return path == bp.url_prefix or path.startswith(bp.url_prefix + "/")


# -- the guard and the errors ---------------------------------------------------------------


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
        error={
            "type": "auth",
            "object": "token",
            "msg": f"token: {problem}; the control API needs its token, sent as "
            f"'Authorization: Bearer <token>' or the cookie {guard.TOKEN_COOKIE}=<token>",
        }
    )
    reply.headers["WWW-Authenticate"] = 'Bearer realm="simulator control API"'
    return reply, 401


def error_reply(type: str, key: str, msg: str, status: int):
    return jsonify(error={"type": type, "object": key, "msg": msg}), status


@bp.errorhandler(ControlError)
def bad_request(error: ControlError):
    return error_reply("control", error.key, str(error), error.status)


@bp.errorhandler(WorldError)
def bad_world(error: WorldError):
    return error_reply("control", error.path, str(error), 400)


@bp.errorhandler(ValueError)
def bad_value(error: ValueError):
    """Any other refusal of a value: 400, its message naming the key first."""
    return error_reply("control", str(error).partition(":")[0], str(error), 400)


@bp.errorhandler(SellerError)
def refused(error: SellerError):
    return error_reply(error.type, error.object, error.msg, 409)


def http_error(error: HTTPException):
    """A routing or protocol error under `/_sim` (unknown path, wrong method) as JSON."""
    reply, status = error_reply(
        "control", "path", f"{request.method} {shown(request.path)}: {error.name}", error.code
    )
    for header, value in error.get_headers():
        if header.lower() == "allow":
            reply.headers[header] = value
    return reply, status


# -- reading a request ----------------------------------------------------------------------


def body(allowed: set[str]) -> dict:
    """The request's JSON object; ControlError for anything else or for a key not `allowed`.

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
    unknown = sorted(set(data) - allowed)
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


# -- reset and the clock --------------------------------------------------------------------


@bp.post("/reset")
def reset():
    """Replace the whole state with a new seller holding `world` (empty if none)."""
    data = body({"world", "start", "seed"})
    start = parse_time(data["start"], "start") if data.get("start") is not None else None
    seed = _int(data.get("seed", 0), "seed")
    if not 0 <= seed <= LARGEST_SEED:
        raise ControlError("seed", f"expected 0 to {LARGEST_SEED}, got {shown(seed)}")
    new = seller_from_world(data.get("world") or {}, start, seed)
    with seller().lock:
        holder().seller = new
    return jsonify(now=stamp(new.now))


def clock_view(s: Seller):
    due = s.next_due()
    return jsonify(now=stamp(s.now), next_due=stamp(due) if due else None)


@bp.get("/clock")
def clock():
    s = seller()
    with s.lock:
        return clock_view(s)


@bp.post("/clock")
def move_clock():
    """Advance the clock `to` a time or by `advance` (`5m`), running the seller's automation."""
    data = body({"to", "advance"})
    if len(data) != 1:
        raise ControlError("to", "expected exactly one of 'to' (a time) or 'advance' (5m)")
    s = seller()
    with s.lock:
        if "to" in data:
            when = parse_time(data["to"], "to")
        else:
            step = parse_duration(data["advance"], "advance")
            when = later(s.now, step, "advance", data["advance"])
        s.advance_to(when)
        return clock_view(s)


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


@bp.post("/actions/<name>")
def action(name: str):
    """A seller-side action of the scenario format (`seller.<name>`), done by the seller's staff."""
    if name not in ACTIONS:
        raise ControlError(
            "action", f"unknown action {shown(name)}; expected one of {sorted(ACTIONS)}"
        )
    keys, run = ACTIONS[name]
    data = body(set(keys))
    s = seller()
    with s.lock:
        result = run(s, data)
    return jsonify(ok=True, result=result)


# -- faults and the call log ----------------------------------------------------------------


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults():
    """Queue a fault (`{kind, times}`), list the pending ones, or clear them all."""
    data = body({"kind", "times", "func", "account"}) if request.method == "POST" else None
    s = seller()
    with s.lock:
        if data is not None:
            try:
                s.faults.add(
                    arg(data, "kind"), arg(data, "times"), data.get("func"), data.get("account")
                )
            except ValueError as error:  # Faults.add names the key first: "times: ..."
                raise ControlError("", str(error)) from None
        elif request.method == "DELETE":
            s.faults.clear()
        return jsonify(pending=s.faults.pending(), used=s.faults.used, faults=s.faults.to_list())


@bp.route("/calls", methods=["GET", "DELETE"])
def calls():
    """The call log, oldest first (`?last=N` for the last N), or clear it."""
    last = request.args.get("last")
    if last is not None and not (last.isdigit() and len(last) < 10 and int(last) > 0):
        raise ControlError("last", f"expected a whole number >= 1, got {shown(last)}")
    s = seller()
    with s.lock:
        if request.method == "DELETE":
            s.calls.clear()
            return jsonify(calls=[])
        entries = list(s.calls)
        return jsonify(calls=entries[-int(last) :] if last else entries)


# -- reading the state ----------------------------------------------------------------------


@bp.get("/services")
def services():
    s = seller()
    account, remoteid = request.args.get("account"), request.args.get("remoteid")
    with s.lock:
        return jsonify(
            services=[
                service_view(x, s)
                for x in s.services.values()
                if (account is None or x.account == account)
                and (remoteid is None or x.remoteid == remoteid)
            ]
        )


@bp.get("/services/<int:service_id>")
def one_service(service_id: int):
    s = seller()
    with s.lock:
        return jsonify(service_view(s.service(service_id), s))


@bp.get("/accounts/<login>")
def account(login: str):
    s = seller()
    with s.lock:
        a = s.account(login)
        return jsonify(
            login=a.login,
            balance=str(a.balance),
            currency=s.currency,
            level=a.level,
            can_suspend=a.can_suspend,
            pending_events=len(s.feeds[a.login]),
            failed_logins=s.failed_logins.count(a.login, s.now, s.wall_clock()),
        )


@bp.get("/ledger")
def ledger():
    s = seller()
    account = request.args.get("account")
    with s.lock:
        return jsonify(
            ledger=[
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
        )


@bp.get("/state")
def state():
    s = seller()
    with s.lock:
        return jsonify(snapshot.as_json(s))


# -- named snapshots in the state folder ----------------------------------------------------


def snapshot_file(data: dict):
    """The file the body's `name` names in the state folder; ControlError if it cannot be."""
    state_dir = holder().state_dir
    if state_dir is None:
        raise ControlError(
            "name",
            "no state folder: start the simulator with --state-dir (or give create_app "
            "a state_dir) to save snapshots",
            409,
        )
    name = arg(data, "name")
    try:
        return name, snapshot.named(state_dir, name)
    except snapshot.SnapshotNameError as error:
        raise ControlError("name", str(error)) from None


@bp.get("/snapshots")
def snapshots():
    """The names of the snapshots in the state folder."""
    state_dir = holder().state_dir
    return jsonify(snapshots=snapshot.names(state_dir) if state_dir else [])


@bp.post("/snapshot")
def save_snapshot():
    """Save the whole state as the snapshot `name` (replacing one of that name)."""
    name, path = snapshot_file(body({"name"}))
    s = seller()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with s.lock:
            snapshot.save(s, path)
    except OSError as error:  # the folder's trouble, told without the machine's paths
        raise ControlError("name", f"cannot save {name!r}: {error.strerror}", 507) from None
    return jsonify(ok=True, name=name)


@bp.post("/restore")
def restore():
    """Replace the whole state with the snapshot `name`; a bad one changes nothing."""
    name, path = snapshot_file(body({"name"}))
    try:
        new = snapshot.load(path)
    except FileNotFoundError:
        return error_reply("missed", "name", f"name: no snapshot {name!r}", 404)
    except OSError as error:
        raise ControlError("name", f"cannot read {name!r}: {error.strerror}", 507) from None
    except snapshot.SnapshotError as error:
        raise ControlError("name", f"snapshot {name!r} cannot be restored: {error}") from None
    with seller().lock:
        holder().seller = new
    return jsonify(ok=True, name=name, now=stamp(new.now))
