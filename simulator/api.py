"""The BILLmanager API (`/billmgr?func=...`): parse a call, run it on the `Seller`, render it.

`call` knows no Flask; the blueprint at the bottom is the thin HTTP edge.
Not simulated: carts (orders need `skipbasket=on`), key auth, `su`, projects, `bjson`/`xjson`.
The event feed that `checkevent` polls is `func=itemevent` (its real name is not public).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, current_app, request

from simulator.model import (
    ADMIN_LEVEL,
    PRODUCT_TYPES,
    STATUS_NAMES,
    Account,
    Seller,
    SellerError,
    Service,
    Tariff,
)
from simulator.render import doc, el, fields, to_json, to_xml

ADDON_TYPE_CODES = {"boolean": 1, "integer": 2, "enumeration": 3}
STATE_CHANGING = {"order.param", "edit", "suspend", "resume", "delete", "service.prolong"}
SESSION_COOKIE = "billmgrses5"


@dataclass
class Reply:
    """What a call produced: a document, or a fault that replaces it, and a session to set."""

    root: ET.Element | None
    fault: str | None = None
    session: str | None = None
    account: str | None = None
    result: str = "ok"


def date(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d") if when else ""


def stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else ""


def error_doc(error: SellerError) -> ET.Element:
    """`doc.error` as BILLmanager gives it: type, object, params and a message."""
    children = []
    if error.object:
        children.append(
            el("param", error.object, {"name": "object", "type": "msg", "msg": error.object})
        )
    children += [el("param", value, {"name": name}) for name, value in error.params.items()]
    children.append(el("msg", error.msg))
    return doc(
        el(
            "error",
            attrs={"type": error.type, "object": error.object, "lang": "en"},
            children=children,
        )
    )


def ok_doc(*children: ET.Element) -> ET.Element:
    return doc(el("ok"), *children)


# -- parameters -----------------------------------------------------------------------------


def required(params: dict, name: str) -> str:
    value = params.get(name)
    if value is None or str(value).strip() == "":
        raise SellerError("missed", name, f"the parameter '{name}' is required")
    return str(value).strip()


def whole(params: dict, name: str, default: int | None = None) -> int:
    if default is not None and not str(params.get(name, "")).strip():
        return default
    raw = required(params, name)
    try:
        return int(raw)
    except ValueError:
        raise SellerError("value", name, f"'{raw}' is not a whole number") from None


def elids(params: dict) -> list[str]:
    """`elid`, which may name several ids separated by `, `."""
    return [part.strip() for part in required(params, "elid").split(",") if part.strip()]


def addon_values(params: dict) -> dict[int, str]:
    values = {}
    for key, raw in params.items():
        if key.startswith("addon_"):
            try:
                values[int(key[6:])] = raw
            except ValueError:
                raise SellerError("value", key, f"'{key}' does not name an add-on id") from None
    return values


# -- rendering of model objects -------------------------------------------------------------


def period_element(period: int, cost: Decimal) -> ET.Element:
    if period > 0:
        kind, length, label = "month", period, f"{period} month"
    else:
        kind, length, label = {-50: ("day", 1, "day"), -100: ("trial", 1, "trial")}.get(
            period, ("lifetime", 0, "lifetime")
        )
    return el("period", label, {"cost": cost, "type": kind, "length": length})


def monthly_price(currency: str, cost: Decimal) -> ET.Element:
    return el("price", attrs={"currency": currency}, children=[period_element(1, cost)])


def tariff_element(tariff: Tariff, currency: str) -> ET.Element:
    prices = el(
        "price",
        attrs={"currency": currency},
        children=[period_element(p, c) for p, c in sorted(tariff.prices.items())],
    )
    params = []
    for intname, values in (("ostempl", tariff.ostempl), ("recipe", tariff.recipes)):
        params.append(
            el(
                "itemtypeparam",
                children=fields(intname=intname)
                + [el("itemtypeparamvalue", children=fields(intname=v, name=v)) for v in values],
            )
        )
    addons = []
    for addon in tariff.addons.values():
        children = fields(
            id=addon.id,
            intname=addon.intname,
            name=addon.intname,
            addontype=ADDON_TYPE_CODES[addon.type],
            addonmin=0,
            addonlimit=addon.max,
            value=addon.included if addon.type == "integer" else None,
        )
        if addon.type == "integer":
            children.append(monthly_price(currency, addon.unit_price))
        elif addon.type == "boolean":
            children.append(monthly_price(currency, addon.price))
        else:
            children.append(
                el(
                    "enumeration",
                    children=fields(id=addon.id)
                    + [
                        el(
                            "enumerationitem",
                            children=fields(id=addon.item_ids[item], intname=item, name=item)
                            + [monthly_price(currency, price)],
                        )
                        for item, price in addon.items.items()
                    ],
                )
            )
        addons.append(el("addon", children=children))
    return el(
        "pricelist",
        children=fields(
            id=tariff.id,
            name=tariff.name,
            intname=tariff.intname,
            itemtype=tariff.type,
            active="on",
        )
        + [el("itemtype_info", children=fields(intname=tariff.type)), prices]
        + params
        + addons,
    )


def status_element(service: Service) -> ET.Element:
    return el("item_status", STATUS_NAMES[service.status].capitalize(), {"orig": service.status})


def service_row(service: Service) -> ET.Element:
    return el(
        "elem",
        children=fields(
            id=service.id,
            name=service.name,
            pricelist=service.tariff,
            period=service.period,
            status=service.status,
            createdate=date(service.opened),
            expiredate=date(service.expires),
            remoteid=service.remoteid,
            ip=service.ips[0] if service.ips else service.params.get("ip", ""),
            domain=service.params.get("domain"),
            username=service.params.get("username"),
            licname=service.params.get("licname"),
        )
        + [status_element(service)],
    )


def service_form(seller: Seller, service: Service) -> ET.Element:
    tariff = seller.tariffs[service.tariff]
    children = fields(
        id=service.id,
        name=service.name,
        pricelist=service.tariff,
        period=service.period,
        status=service.status,
        createdate=date(service.opened),
        expiredate=date(service.expires),
        remoteid=service.remoteid,
    )
    children.append(status_element(service))
    for name, value in service.addons.items():
        addon = tariff.addons.get(name)
        if addon is not None:
            children.append(el(f"addon_{addon.id}", addon.wire(value), {"intname": name}))
    children += [el("param", value, {"name": name}) for name, value in service.params.items()]
    children += [el("ip", ip) for ip in service.ips]
    return doc(*children)


def event_row(event) -> ET.Element:
    return el(
        "elem",
        children=fields(
            id=event.id,
            type=event.type,
            item=event.service,
            remoteid=event.remoteid,
            status=event.status,
            expiredate=date(event.expires),
            name=event.name,
            value=event.value,
            date=stamp(event.date),
        )
        + [el("ip", ip) for ip in event.ips],
    )


# -- functions ------------------------------------------------------------------------------


def fn_whoami(seller: Seller, account: Account, params: dict) -> ET.Element:
    return doc(
        el(
            "user",
            account.login,
            {
                "name": account.login,
                "level": account.level,
                "balance": account.balance,
                "currency": seller.currency,
            },
        )
    )


def fn_pricelist_export(seller: Seller, account: Account | None, params: dict) -> ET.Element:
    itemtype = params.get("itemtype") or None
    tariff = whole(params, "pricelist") if params.get("pricelist") else None
    return doc(*[tariff_element(t, seller.currency) for t in seller.pricelist(itemtype, tariff)])


def fn_itemevent(seller: Seller, account: Account, params: dict) -> ET.Element:
    return doc(*[event_row(event) for event in seller.read_events(account)])


def fn_service_prolong(seller: Seller, account: Account, params: dict) -> ET.Element:
    service = seller.service_of(account, required(params, "elid"))
    if not params.get("sok"):
        tariff = seller.tariffs[service.tariff]
        return doc(
            *fields(elid=service.id, expiredate=date(service.expires)),
            el(
                "slist",
                attrs={"name": "period"},
                children=[el("val", p, {"key": p}) for p in sorted(tariff.prices) if p > 0],
            ),
        )
    expires = seller.prolong(account, service, whole(params, "period"))
    return doc(el("doc", children=fields(newexpiredate=date(expires))))


def fn_service_ip(seller: Seller, account: Account, params: dict) -> ET.Element:
    service = seller.service_of(account, required(params, "elid"))
    return doc(*[el("elem", children=fields(ip=ip, name=ip)) for ip in service.ips])


def fn_account(seller: Seller, account: Account, params: dict) -> ET.Element:
    return doc(
        *[
            el("elem", children=fields(id=a.login, name=a.login, level=a.level, balance=a.balance))
            for a in seller.accounts.values()
        ]
    )


def fn_list(seller: Seller, account: Account, params: dict, type: str) -> ET.Element:
    remoteid = params.get("remoteid")
    return doc(*[service_row(s) for s in seller.services_of(account, type, remoteid)])


def fn_order(seller: Seller, account: Account, params: dict, type: str) -> ET.Element:
    tariff_id = whole(params, "pricelist")
    if not params.get("sok"):
        tariff = seller.tariffs.get(tariff_id)
        if tariff is None or tariff.type != type:
            raise SellerError("value", "pricelist", f"no {type} tariff {tariff_id}")
        return doc(
            *fields(pricelist=tariff.id),
            el(
                "slist",
                attrs={"name": "period"},
                children=[el("val", p, {"key": p}) for p in sorted(tariff.prices)],
            ),
            el(
                "slist",
                attrs={"name": "ostempl"},
                children=[el("val", o, {"key": o}) for o in tariff.ostempl],
            ),
            el(
                "slist",
                attrs={"name": "recipe"},
                children=[el("val", r, {"key": r}) for r in tariff.recipes],
            ),
        )
    period = whole(params, "period")
    if params.get("skipbasket") != "on":
        raise SellerError("value", "skipbasket", "carts are not simulated: send skipbasket=on")
    extra = {
        key: params.get(key) for key in ("ostempl", "recipe", "domain", "hostname", "ip", "licname")
    }
    service = seller.order(
        account,
        type,
        tariff_id,
        period,
        addons=addon_values(params),
        remoteid=str(params.get("remoteid", "")),
        params=extra,
    )
    return doc(*fields(id=service.id, item=service.id))


def fn_edit(seller: Seller, account: Account, params: dict, type: str) -> ET.Element:
    service = seller.service_of(account, required(params, "elid"), type)
    if params.get("sok"):
        seller.change_addons(account, service, addon_values(params))
        return ok_doc(*fields(id=service.id))
    return service_form(seller, service)


def fn_lifecycle(action: str):
    def run(seller: Seller, account: Account, params: dict, type: str) -> ET.Element:
        services = [seller.service_of(account, elid, type) for elid in elids(params)]
        getattr(seller, action)(account, *services)  # all of them or none
        return ok_doc()

    return run


FUNCTIONS = {
    "whoami": fn_whoami,
    "pricelist.export": fn_pricelist_export,
    "itemevent": fn_itemevent,
    "service.prolong": fn_service_prolong,
    "service.ip": fn_service_ip,
    "account": fn_account,
}
TYPE_FUNCTIONS = {
    "": fn_list,
    "order.param": fn_order,
    "edit": fn_edit,
    "suspend": fn_lifecycle("suspend"),
    "resume": fn_lifecycle("resume"),
    "delete": fn_lifecycle("delete"),
}
ADMIN_FUNCTIONS = {"account"}
PUBLIC_FUNCTIONS = {"pricelist.export"}


def resolve(func: str):
    """The handler for `func`, with the product type bound where the name carries one."""
    if func in FUNCTIONS:
        return FUNCTIONS[func], func
    type, _, action = func.partition(".")
    if type in PRODUCT_TYPES and action in TYPE_FUNCTIONS:
        handler = TYPE_FUNCTIONS[action]
        return (lambda seller, account, params: handler(seller, account, params, type)), action
    raise SellerError("unknown_func", func, f"unknown function '{func}'")


def login(seller: Seller, params: dict, cookie: str | None) -> Account | None:
    """The caller's account from `authinfo`, `auth` or the session cookie, if any was given."""
    if params.get("authinfo"):
        user, _, password = str(params["authinfo"]).partition(":")
        return seller.authenticate(user, password)
    session = params.get("auth") or cookie
    if session:
        return seller.session_account(str(session))
    return None


def call(seller: Seller, params: dict, cookie: str | None = None) -> Reply:
    """Run one BILLmanager API call on `seller`, faults included, and return its reply."""
    func = str(params.get("func", "")).strip()
    claimed = claimed_login(seller, params, cookie)
    # down, error and slow count any call, even one that would be refused
    fault = seller.faults.take_for_call(func, claimed)
    if fault is not None:
        return Reply(None, fault=fault, account=claimed, result=fault)
    if func == "auth":
        return auth(seller, params)
    account = None
    try:
        handler, action = resolve(func) if func else (None, "")
        if handler is None:
            raise SellerError("missed", "func", "the parameter 'func' is required")
        changes_state = action in STATE_CHANGING and (
            action in {"suspend", "resume", "delete"} or bool(params.get("sok"))
        )
        account = login(seller, params, cookie)
        if account is None and func not in PUBLIC_FUNCTIONS:
            raise SellerError("auth", "", "authentication required: send authinfo or auth")
        if func in ADMIN_FUNCTIONS and account.level != ADMIN_LEVEL:
            raise SellerError("access", func, f"'{func}' needs an administrator")
        root = handler(seller, account, params)
    except SellerError as error:
        return Reply(error_doc(error), account=account and account.login, result=error.type)
    # lose_reply counts calls that changed the seller's state: the work is done, the reply lost
    if seller.faults.take_lost_reply(func, account and account.login, changes_state):
        return Reply(None, fault="lose_reply", account=account.login, result="lose_reply")
    return Reply(root, account=account and account.login)


def claimed_login(seller: Seller, params: dict, cookie: str | None) -> str | None:
    """The login a call speaks for, checked or not, which faults aimed at an account match."""
    if params.get("authinfo"):
        return str(params["authinfo"]).partition(":")[0]
    if params.get("func") == "auth" and params.get("username"):
        return str(params["username"])
    session = params.get("auth") or cookie
    return seller.sessions.get(str(session), (None, None))[0] if session else None


def auth(seller: Seller, params: dict) -> Reply:
    try:
        if params.get("authinfo"):
            user, _, password = str(params["authinfo"]).partition(":")
        else:
            user, password = required(params, "username"), required(params, "password")
        account = seller.authenticate(user, password)
        sid = seller.open_session(account)
        return Reply(
            doc(el("auth", sid, {"id": sid, "level": account.level})),
            session=sid,
            account=account.login,
        )
    except SellerError as error:
        return Reply(error_doc(error), result=error.type)


SECRET_KEYS = {"password", "passwd", "confirm", "key"}


def masked(params: dict) -> dict:
    """The call's parameters with passwords hidden, as the call log keeps them."""
    shown = {}
    for key, value in params.items():
        if key in SECRET_KEYS:
            value = "***"
        elif key == "authinfo":
            value = str(value).partition(":")[0] + ":***"
        shown[key] = value
    return shown


# -- the HTTP edge --------------------------------------------------------------------------

bp = Blueprint("billmgr", __name__)
FAULT_STATUS = {"down": 503, "error": 500, "slow": 504, "lose_reply": 503}


def request_params() -> dict:
    """`request.values.to_dict()`: the query's arguments, then a urlencoded form's.

    A form is parsed here as werkzeug parses it, without its form machinery, which cost more
    than most calls' own work; any other body goes the usual way.
    """
    if request.method == "GET" or request.mimetype != "application/x-www-form-urlencoded":
        return request.values.to_dict()
    try:
        form = parse_qsl(
            request.get_data().decode(), keep_blank_values=True, errors="werkzeug.url_quote"
        )
    except ValueError:
        return request.values.to_dict()
    params = request.args.to_dict()
    for key, value in form:
        params.setdefault(key, value)
    return params


@bp.route("/billmgr", methods=["GET", "POST"])
@bp.route("/manager/billmgr", methods=["GET", "POST"])
def billmgr() -> Response:
    holder = current_app.extensions["simulator"]
    params = request_params()
    out = params.get("out", "xml")
    seller: Seller = holder.seller
    # The cookie is read only when no credentials were sent: parsing it costs a call's work.
    credentials = params.get("authinfo") or params.get("auth")
    cookie = None if credentials else request.cookies.get(SESSION_COOKIE)
    with seller.lock:
        try:
            reply = call(seller, params, cookie)
        except Exception:  # a bug, not bad input: still a doc.error, and logged
            reply = Reply(
                error_doc(SellerError("internal", "", traceback.format_exc(limit=3))),
                result="internal",
            )
        if reply.fault:
            body, status = b"", FAULT_STATUS[reply.fault]
        else:
            body = to_json(reply.root) if out in ("json", "sjson") else to_xml(reply.root)
            status = 200
        seller.calls.append(
            {
                "id": len(seller.calls) + 1,
                "at": stamp(seller.now),
                "func": params.get("func", ""),
                "params": masked(params),
                "account": reply.account,
                "status": status,
                "result": reply.result,
                "reply": body[:2000].decode("utf-8", "replace"),
            },
            hide=(reply.session,),  # a new session id, in the auth reply
        )
    if reply.fault == "slow" and not request.environ.get("simulator.in_process"):
        time.sleep(seller.slow_seconds)
    mimetype = "application/json" if out in ("json", "sjson") else "text/xml"
    response = Response(body, status=status, mimetype=mimetype)
    if reply.fault:
        response.headers["X-Simulator-Fault"] = reply.fault
    if reply.session:
        response.set_cookie(SESSION_COOKIE, reply.session, httponly=True, samesite="Lax")
    return response
