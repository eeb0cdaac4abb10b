"""The control API (`/_sim/...`, JSON): reset, world, clock, seller-side actions, faults, logs.

Each endpoint is a plain function of the simulator's state and a JSON-like body, returning
JSON-like values; the blueprint at the bottom is the HTTP edge, and the in-process
`SellerSide` calls the same functions without a request.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

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


# -- what each endpoint does, without a request ----------------------------------------------

REFUSALS = (SellerError, ControlError, WorldError, ValueError)


def refusal(error: Exception) -> tuple[dict, int]:
    """A refused control request as the API answers it: the error and its HTTP status."""
    if isinstance(error, SellerError):
        return {"error": {"type": error.type, "object": error.object, "msg": error.msg}}, 409
    return {"error": {"type": "control", "msg": str(error)}}, 400


def reset(state, data: dict) -> dict:
    """Replace the whole state with a new seller holding `world` (empty if none)."""
    start = parse_time(data["start"]) if data.get("start") else None
    new = seller_from_world(data.get("world") or {}, start, _int(data.get("seed", 0), "seed"))
    with state.seller.lock:
        state.seller = new
    return {"now": stamp(new.now)}


def clock(state) -> dict:
    """The simulated time, when the automation next has work, and how the clock runs."""
    s = state.seller
    with s.lock:
        due = s.next_due()
        return {"now": stamp(s.now), "next_due": stamp(due) if due else None} | state.clock.view()


def move_clock(state, data: dict) -> dict:
    """Advance the clock `to` a time or by `advance` (`5m`), running the seller's automation."""
    s = state.seller
    with s.lock:
        if "to" in data:
            when = parse_time(data["to"], "to")
        else:
            when = s.now + parse_duration(arg(data, "advance"), "advance")
        s.advance_to(when)
        state.clock.anchor(s)  # a running clock runs on from where the hand left it
    return clock(state)


def action(s: Seller, name: str, data: dict) -> dict:
    """A seller-side action of the scenario format (`seller.<name>`), done by the seller's staff."""
    if name not in ACTIONS:
        raise ControlError(f"unknown action '{name}'; expected one of {sorted(ACTIONS)}")
    with s.lock:
        return {"ok": True, "result": ACTIONS[name](s, data)}


def faults(s: Seller) -> dict:
    """The queued faults, per kind what is left, and per kind what they have hit."""
    with s.lock:
        return {"pending": s.faults.pending(), "used": s.faults.used, "faults": s.faults.to_list()}


def add_fault(s: Seller, data: dict) -> dict:
    """Queue a fault: `{kind, times}`, optionally aimed at `func` and `account`."""
    with s.lock:
        s.faults.add(
            str(arg(data, "kind")), arg(data, "times"), data.get("func"), data.get("account")
        )
    return faults(s)


def clear_faults(s: Seller) -> dict:
    with s.lock:
        s.faults.clear()
    return faults(s)


def calls(s: Seller, func: str | None = None, last: int | None = None) -> dict:
    """The call log, oldest first: of `func` alone (a glob) if given, the `last` N if given."""
    with s.lock:
        entries = [c for c in s.calls if func is None or fnmatchcase(c["func"], func)]
    return {"calls": entries[-last:] if last else entries}


def clear_calls(s: Seller) -> dict:
    with s.lock:
        s.calls.clear()
    return {"calls": []}


def services(s: Seller, account: str | None = None, remoteid: str | None = None) -> dict:
    with s.lock:
        return {
            "services": [
                service_view(x, s)
                for x in s.services.values()
                if (account is None or x.account == account)
                and (remoteid is None or x.remoteid == remoteid)
            ]
        }


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
            "pending_events": len(s.feeds[a.login]),
        }


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


def save_snapshot(s: Seller, data: dict) -> dict:
    path = str(arg(data, "path"))
    with s.lock:
        snapshot.save(s, path)
    return {"ok": True, "path": path}


def restore(state, data: dict) -> dict:
    new = snapshot.load(str(arg(data, "path")))
    with state.seller.lock:
        state.seller = new
    return {"ok": True, "now": stamp(new.now)}


# -- the HTTP edge ---------------------------------------------------------------------------


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


@bp.errorhandler(ControlError)
@bp.errorhandler(WorldError)
@bp.errorhandler(ValueError)
@bp.errorhandler(SellerError)
def refused(error: Exception):
    reply, status = refusal(error)
    return jsonify(reply), status


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
    return jsonify(action(seller(), name, body()))


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults_endpoint():
    if request.method == "POST":
        return jsonify(add_fault(seller(), body()))
    if request.method == "DELETE":
        return jsonify(clear_faults(seller()))
    return jsonify(faults(seller()))


@bp.route("/calls", methods=["GET", "DELETE"])
def calls_endpoint():
    if request.method == "DELETE":
        return jsonify(clear_calls(seller()))
    return jsonify(calls(seller(), request.args.get("func"), request.args.get("last", type=int)))


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


@bp.post("/snapshot")
def snapshot_endpoint():
    return jsonify(save_snapshot(seller(), body()))


@bp.post("/restore")
def restore_endpoint():
    return jsonify(restore(holder(), body()))
