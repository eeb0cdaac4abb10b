"""The seller a cassette shows, and the world a replay runs in.

A cassette shows the seller only through the calls a client made: the logins that worked,
the balances `whoami` gave, the tariffs `pricelist.export` listed, the services lists showed
and which of them the session itself ordered. The world built from that holds each account
with its password placeholder as password, so the recorded credentials work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from simulator.cassette import SESSION_COOKIE_PREFIX, Call
from simulator.shape import Reply, attr, error_type, parse_reply, rows, text

ORDER_SUFFIX = ".order.param"
SUSPEND_ACTIONS = (".suspend", ".resume", ".delete")
UNKNOWN_BALANCE = Decimal(1_000_000)
ADDON_TYPES = {"1": "boolean", "2": "integer", "3": "enumeration"}
UNLIMITED = "999999"
SERVICE_FIELDS = ("ip", "domain", "hostname", "licname", "remoteid")


def reply_of(call: Call) -> Reply:
    return parse_reply(call.body, call.content_type)


def doc_of(tree) -> dict:
    """The `doc` of a reply tree (or the tree itself when a format has no `doc`)."""
    if isinstance(tree, dict):
        inner = tree.get("doc", tree)
        return inner if isinstance(inner, dict) else {}
    return {}


def session_of(call: Call) -> str | None:
    params = call.params
    if params.get("auth"):
        return str(params["auth"])
    return next((v for k, v in call.cookies.items() if k.startswith(SESSION_COOKIE_PREFIX)), None)


def opened_session(call: Call) -> str | None:
    """The (masked) session id an `auth` call's reply opened."""
    auth = doc_of(reply_of(call).tree).get("auth")
    sid = attr(auth, "id") or text(auth)
    if sid:
        return sid
    return next(
        (v for k, v in call.set_cookies.items() if k.startswith(SESSION_COOKIE_PREFIX)), None
    )


def period_code(kind: str, length: str) -> int | None:
    """BILLmanager's period code for a `price/period` element's `type` and `length`."""
    try:
        count = int(length) if length else 1
    except ValueError:
        return None
    return {"month": count, "year": 12 * count, "day": -50, "trial": -100, "lifetime": 0}.get(
        kind or "month"
    )


def amount(value: str) -> str | None:
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        return None
    return str(parsed) if parsed.is_finite() and parsed >= 0 else None


def prices_of(node) -> dict[int, str]:
    prices = {}
    for price in rows(node.get("price") if isinstance(node, dict) else None):
        for period in rows(price.get("period") if isinstance(price, dict) else None):
            code = period_code(attr(period, "type"), attr(period, "length"))
            cost = amount(attr(period, "cost"))
            if code is not None and cost is not None:
                prices[code] = cost
    return prices


def monthly(node) -> str:
    prices = prices_of(node)
    return prices.get(1) or next(iter(prices.values()), "0")


def addon_spec(node: dict) -> tuple[str, dict] | None:
    addon_id = text(node.get("id"))
    if not addon_id.isdigit():
        return None
    intname = text(node.get("intname")) or text(node.get("name")) or f"addon-{addon_id}"
    kind = ADDON_TYPES.get(text(node.get("addontype")), "integer")
    spec: dict = {"id": int(addon_id), "type": kind}
    if kind == "integer":
        # BILLmanager's addonlimit is the amount the tariff includes; older exports give `value`
        included, most = text(node.get("value")), text(node.get("addonmax"))
        if not included:
            included = text(node.get("addonlimit"))
        elif not most:
            most = text(node.get("addonlimit"))
        if included.isdigit():
            spec["included"] = int(included)
        if most.isdigit() and most != UNLIMITED:
            spec["max"] = int(most)
        spec["unit_price"] = monthly(node)
    elif kind == "boolean":
        spec["price"] = monthly(node)
    else:
        items = {}
        for enumeration in rows(node.get("enumeration")):
            for item in rows(enumeration.get("enumerationitem")):
                name = text(item.get("intname")) or text(item.get("name")) or text(item.get("id"))
                items[name] = monthly(item)
        if not items:
            return None
        spec["items"] = items
    return intname, spec


def tariff_spec(node: dict) -> tuple[int, dict] | None:
    """A world tariff from one `pricelist` element of an export, if it has an id and prices."""
    tariff_id = text(node.get("id"))
    prices = prices_of(node)
    if not tariff_id.isdigit() or not prices:
        return None
    info = node.get("itemtype_info")
    kind = text(info.get("intname")) if isinstance(info, dict) else ""
    kind = kind or text(node.get("itemtype"))
    intname = text(node.get("intname")) or text(node.get("name")) or f"tariff-{tariff_id}"
    spec: dict = {"intname": intname, "name": text(node.get("name")) or intname, "type": kind}
    spec["prices"] = prices
    for param in rows(node.get("itemtypeparam")):
        values = [
            text(v.get("intname")) or text(v)
            for v in rows(param.get("itemtypeparamvalue"))
            if isinstance(v, dict)
        ]
        key = {"ostempl": "ostempl", "recipe": "recipes"}.get(text(param.get("intname")))
        if key and values:
            spec[key] = values
    addons = {}
    for node_addon in rows(node.get("addon")):
        found = addon_spec(node_addon) if isinstance(node_addon, dict) else None
        if found:
            name, addon = found
            addons[name if name not in addons else f"{name}-{addon['id']}"] = addon
    if addons:
        spec["addons"] = addons
    return int(tariff_id), spec


def enumeration_ids(tree) -> dict[tuple[str, str, str], str]:
    """(tariff id, add-on id, item name) -> item id, for every enumeration item of an export."""
    found = {}
    for tariff in rows(doc_of(tree).get("pricelist")):
        for addon in rows(tariff.get("addon")) if isinstance(tariff, dict) else []:
            for enumeration in rows(addon.get("enumeration")) if isinstance(addon, dict) else []:
                for item in rows(enumeration.get("enumerationitem")):
                    name = text(item.get("intname")) or text(item.get("name"))
                    key = (text(tariff.get("id")), text(addon.get("id")), name)
                    found[key] = text(item.get("id"))
    return found


@dataclass
class Observed:
    """What a cassette shows of the seller it was recorded against."""

    passwords: dict[str, str] = field(default_factory=dict)  # login -> the placeholder that worked
    balances: dict[str, Decimal] = field(default_factory=dict)
    admins: set[str] = field(default_factory=set)
    no_suspend: set[str] = field(default_factory=set)
    currency: str | None = None
    tariffs: dict[int, dict] = field(default_factory=dict)
    services: dict[str, dict] = field(default_factory=dict)  # recorded id -> what lists showed
    ordered: set[str] = field(default_factory=set)
    enumerations: dict[tuple[str, str, str], str] = field(default_factory=dict)
    start: str | None = None


def observe(calls: list[Call]) -> Observed:
    """Read the seller's world off a cassette, as far as it shows it."""
    seen = Observed()
    sessions: dict[str, str] = {}
    for call in calls:
        if call.error or call.status != 200:
            continue
        if seen.start is None and _iso(call.time):
            seen.start = _iso(call.time)
        params, func = call.params, call.func
        reply = reply_of(call)
        doc, failed = doc_of(reply.tree), error_type(reply)
        login = _login(call, sessions)
        password = _password_sent(call)
        if login and password and failed != "auth":
            seen.passwords.setdefault(login, password)
        if func == "auth" and login and not failed:
            sid = opened_session(call)
            if sid:
                sessions[sid] = login
        if failed:
            if failed == "access" and func.endswith(SUSPEND_ACTIONS) and login:
                seen.no_suspend.add(login)
            continue
        if func == "whoami" and login and isinstance(doc.get("user"), dict):
            user = doc["user"]
            balance = amount(attr(user, "balance"))
            if balance is not None:
                seen.balances.setdefault(login, Decimal(balance))
            if attr(user, "level") == "29":
                seen.admins.add(login)
            seen.currency = seen.currency or attr(user, "currency") or None
        elif func == "pricelist.export":
            for node in rows(doc.get("pricelist")):
                found = tariff_spec(node) if isinstance(node, dict) else None
                if found:
                    seen.tariffs.setdefault(*found)
                for price in rows(node.get("price")) if isinstance(node, dict) else []:
                    seen.currency = seen.currency or attr(price, "currency") or None
            seen.enumerations.update(enumeration_ids(reply.tree))
        elif func.endswith(ORDER_SUFFIX) and params.get("sok"):
            seen.ordered.update(text(doc.get(k)) for k in ("id", "item") if text(doc.get(k)))
        elif func and "." not in func and login:
            for row in rows(doc.get("elem")):
                service = _service_row(row, func, login)
                if service and service["id"] not in seen.services:
                    seen.services[service["id"]] = service
    return seen


def _iso(value: str) -> str | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S")
    except (ValueError, AttributeError):
        return None


def _login(call: Call, sessions: dict[str, str]) -> str | None:
    """The login a call speaks for: `authinfo`'s, `auth`'s `username`, or its session's."""
    params = call.params
    if params.get("authinfo"):
        return str(params["authinfo"]).partition(":")[0]
    if call.func == "auth" and params.get("username"):
        return str(params["username"])
    sid = session_of(call)
    return sessions.get(sid) if sid else None


def _password_sent(call: Call) -> str | None:
    params = call.params
    if params.get("authinfo"):
        return str(params["authinfo"]).partition(":")[2]
    if call.func == "auth" and params.get("password"):
        return str(params["password"])
    return None


def _service_row(row, func: str, login: str) -> dict | None:
    if not isinstance(row, dict):
        return None
    # a list names the tariff by `pricelist_id` (its `pricelist` is the tariff's name), older
    # simulators by `pricelist` alone
    service_id = text(row.get("id"))
    tariff = text(row.get("pricelist_id")) or text(row.get("pricelist"))
    if not service_id or not tariff:
        return None
    status = text(row.get("status")) or attr(row.get("item_status"), "orig")
    service = {"id": service_id, "account": login, "type": func, "tariff": tariff}
    service["status"] = status or text(row.get("item_status"))
    service["period"] = text(row.get("period"))
    for key in SERVICE_FIELDS:
        if text(row.get(key)):
            service[key] = text(row.get(key))
    return service


@dataclass
class World:
    """The replay's world: the `seller` section, the passwords it holds, and what was left out."""

    section: dict
    passwords: dict[str, str]
    services: list[dict]
    notes: list[str] = field(default_factory=list)
    from_cassette: bool = True

    def summary(self) -> str:
        accounts = ", ".join(sorted(self.section.get("accounts", {}))) or "none"
        tariffs = ", ".join(str(t) for t in self.section.get("tariffs", {})) or "none"
        count = len(self.services)
        source = "built from the cassette" if self.from_cassette else "from --world"
        return (
            f"world {source}: accounts {accounts}; tariffs {tariffs}; "
            f"{count} service{'s' if count != 1 else ''} before the first call"
        )


def built_world(seen: Observed) -> World:
    """A world holding what the cassette shows, with each account's password its placeholder."""
    tariffs = {tariff_id: dict(spec) for tariff_id, spec in seen.tariffs.items()}
    notes, services = [], []
    for listed in seen.services.values():
        service = dict(listed)
        tariff = service["tariff"]
        if not tariff.isdigit():
            named = [t for t, spec in tariffs.items() if spec.get("name") == tariff]
            if not named:
                notes.append(f"service {service['id']}: no exported tariff named {tariff!r}")
                continue
            service["tariff"] = str(named[0])
        elif int(tariff) not in tariffs:
            period = int(service["period"]) if service["period"].lstrip("-").isdigit() else 1
            tariffs[int(tariff)] = {
                "intname": f"tariff-{tariff}",
                "type": service["type"],
                "prices": {period: "0"},
            }
            notes.append(f"tariff {tariff}: not exported in the cassette; made free")
        spec = tariffs[int(service["tariff"])]
        if not spec.get("type") or spec["type"].isdigit():
            spec["type"] = service["type"]
        if service["id"] not in seen.ordered:  # the session's own orders the replay makes again
            services.append(service)
    accounts = {}
    for login, password in seen.passwords.items():
        account: dict = {"password": password}
        if login not in seen.balances:
            notes.append(f"account {login}: no whoami in the cassette; balance {UNKNOWN_BALANCE}")
        account["balance"] = str(seen.balances.get(login, UNKNOWN_BALANCE))
        if login in seen.admins:
            account["level"] = "admin"
        if login in seen.no_suspend:
            account["can_suspend"] = False
        accounts[login] = account
    section = {"currency": seen.currency or "EUR", "accounts": accounts, "tariffs": tariffs}
    return World(section, dict(seen.passwords), services, notes)


def given_world(section: dict, seen: Observed) -> World:
    """A scenario's `seller` section, with the services the cassette's lists show in it."""
    accounts = section.get("accounts") or {}
    tariffs = {str(t) for t in section.get("tariffs") or {}}
    services, notes = [], []
    for service in seen.services.values():
        if service["id"] in seen.ordered:
            continue
        if service["account"] not in accounts or service["tariff"] not in tariffs:
            notes.append(
                f"service {service['id']}: account {service['account']!r} or tariff "
                f"{service['tariff']!r} is not in the world; left out"
            )
            continue
        services.append(service)
    for login in seen.passwords:
        if login not in accounts:
            notes.append(f"login {login!r} is not an account of the world")
    passwords = {
        str(login): str(spec.get("password", ""))
        for login, spec in accounts.items()
        if isinstance(spec, dict)
    }
    return World(section, passwords, services, notes, from_cassette=False)
