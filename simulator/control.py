"""The control API (`/_sim/...`, JSON): reset, world, clock, seller-side actions, faults, logs."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from simulator import snapshot
from simulator.api import date, stamp
from simulator.model import STATUS_NAMES, Seller, SellerError, Service
from simulator.world import (
    WorldError,
    _amount,
    _int,
    edited_tariff,
    parse_duration,
    parse_time,
    seller_from_world,
)

bp = Blueprint("control", __name__, url_prefix="/_sim")


class ControlError(Exception):
    """A bad control request: answered 400 with its message."""


def holder():
    return current_app.extensions["simulator"]


def seller() -> Seller:
    return holder().seller


def body() -> dict:
    data = request.get_json(silent=True)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ControlError("the request body must be a JSON object")
    return data


def arg(data: dict, name: str):
    if name not in data:
        raise ControlError(f"missing '{name}'")
    return data[name]


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


@bp.errorhandler(ControlError)
@bp.errorhandler(WorldError)
@bp.errorhandler(ValueError)
def bad_request(error):
    return jsonify(error={"type": "control", "msg": str(error)}), 400


@bp.errorhandler(SellerError)
def refused(error: SellerError):
    return jsonify(error={"type": error.type, "object": error.object, "msg": error.msg}), 409


@bp.post("/reset")
def reset():
    """Replace the whole state with a new seller holding `world` (empty if none)."""
    data = body()
    start = parse_time(data["start"]) if data.get("start") else None
    new = seller_from_world(data.get("world") or {}, start, int(data.get("seed", 0)))
    with seller().lock:
        holder().seller = new
    return jsonify(now=stamp(new.now))


@bp.get("/clock")
def clock():
    s = seller()
    with s.lock:
        due = s.next_due()
        return jsonify(now=stamp(s.now), next_due=stamp(due) if due else None)


@bp.post("/clock")
def move_clock():
    """Advance the clock `to` a time or by `advance` (`5m`), running the seller's automation."""
    data = body()
    s = seller()
    with s.lock:
        if "to" in data:
            when = parse_time(data["to"], "to")
        else:
            when = s.now + parse_duration(arg(data, "advance"), "advance")
        s.advance_to(when)
        due = s.next_due()
        return jsonify(now=stamp(s.now), next_due=stamp(due) if due else None)


def _service(data) -> int:
    return _int(arg(data, "service"), "service")


ACTIONS = {
    "activate": lambda s, d: s.activate(_service(d)),
    "suspend": lambda s, d: s.staff_suspend(_service(d)),
    "resume": lambda s, d: s.staff_resume(_service(d)),
    "delete": lambda s, d: s.staff_delete(_service(d)),
    "add_ip": lambda s, d: {"ip": s.add_ip(_service(d), d.get("ip"))},
    "remove_ip": lambda s, d: {"ip": s.remove_ip(_service(d), d.get("ip"))},
    "set_addon": lambda s, d: s.set_addon(_service(d), str(arg(d, "addon")), arg(d, "value")),
    "set_param": lambda s, d: s.set_param(_service(d), str(arg(d, "name")), arg(d, "value")),
    "topup": lambda s, d: s.topup(str(arg(d, "account")), _amount(arg(d, "amount"), "amount")),
    "edit_tariff": lambda s, d: s.add_tariff(
        edited_tariff(_tariff(s, d), d, f"edit_tariff {d.get('id')}")
    ),
    "create_service": lambda s, d: service_view(
        s.create_service(
            str(arg(d, "account")),
            _int(arg(d, "tariff"), "tariff"),
            _int(d.get("period", 1), "period"),
            d.get("ip"),
            {k: d[k] for k in ("name", "domain", "hostname", "licname") if k in d},
            str(d.get("remoteid") or ""),
        ),
        s,
    ),
}


def _tariff(s: Seller, data: dict):
    tariff_id = _int(arg(data, "id"), "id")
    if tariff_id not in s.tariffs:
        raise SellerError("missed", "id", f"no tariff {tariff_id}")
    return s.tariffs[tariff_id]


@bp.post("/actions/<name>")
def action(name: str):
    """A seller-side action of the scenario format (`seller.<name>`), done by the seller's staff."""
    if name not in ACTIONS:
        raise ControlError(f"unknown action '{name}'; expected one of {sorted(ACTIONS)}")
    s = seller()
    with s.lock:
        result = ACTIONS[name](s, body())
    return jsonify(ok=True, result=result)


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults():
    """Queue a fault (`{kind, times}`), list the pending ones, or clear them all."""
    s = seller()
    with s.lock:
        if request.method == "POST":
            data = body()
            s.faults.add(
                str(arg(data, "kind")), arg(data, "times"), data.get("func"), data.get("account")
            )
        elif request.method == "DELETE":
            s.faults.clear()
        return jsonify(pending=s.faults.pending(), used=s.faults.used, faults=s.faults.to_list())


@bp.route("/calls", methods=["GET", "DELETE"])
def calls():
    s = seller()
    with s.lock:
        if request.method == "DELETE":
            s.calls.clear()
            return jsonify(calls=[])
        last = request.args.get("last", type=int)
        entries = list(s.calls)
        return jsonify(calls=entries[-last:] if last else entries)


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


@bp.post("/snapshot")
def save_snapshot():
    s = seller()
    path = str(arg(body(), "path"))
    with s.lock:
        snapshot.save(s, path)
    return jsonify(ok=True, path=path)


@bp.post("/restore")
def restore():
    new = snapshot.load(str(arg(body(), "path")))
    with seller().lock:
        holder().seller = new
    return jsonify(ok=True, now=stamp(new.now))
