"""What the dashboard shows: the seller's state, the other side a provider gives, and their history.

No Flask here; `dashboard` renders it. Every history is derived from records that exist (the
ledger, the events the seller made, the operations and movements the provider reports), never
sampled, so a page opened late shows the whole story.

The other side (the reseller) is plain data from a provider, in this shape; every key is
optional but `services`' and `operations`' own (times as `YYYY-MM-DD HH:MM:SS` or ISO):

    {"name": "reseller engine", "currency": "USD",
     "services": [{"id": 1, "client": "alice", "tariff": "5-vds-1", "status": "active",
                   "expires": "2026-02-01", "seller_service": 1000,
                   "operation": {"kind": "open", "state": "done", "error": ""}}],
     "operations": [{"id": 1, "service": 1, "kind": "open", "state": "done", "attempts": 1,
                     "error": "", "created": "...", "updated": "..."}],
     "clients": [{"name": "alice", "balance": "89.00",
                  "movements": [{"at": "...", "amount": "-11.00", "reason": "order"}]}],
     "events": [{"id": 7, "service": 1, "fetched": "...", "applied": "..." or None}]}
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from fnmatch import fnmatchcase

from simulator.charts import Series, line_chart
from simulator.faults import KINDS
from simulator.model import (
    ACTIVE,
    ADMIN_LEVEL,
    DAY,
    DELETED,
    LIFETIME,
    ORDERED,
    STATUS_NAMES,
    SUSPENDED,
    TRIAL,
    Event,
    Seller,
    Service,
    Tariff,
)

SHOWN_SERVICES = 200  # the newest; a page of thousands would be megabytes every second
SHOWN_EVENTS = 100
SHOWN_CALLS = 40
FUNCS_FROM_LAST = 5000  # the filter suggests functions seen in this many latest calls
FINISHED_STATES = ("done", "failed")
PERIOD_NAMES = {DAY: "day", TRIAL: "trial", LIFETIME: "lifetime"}


class ProviderError(ValueError):
    """The other side's provider gave data the dashboard cannot read; names where."""


def short(when: datetime | None) -> str:
    return when.strftime("%m-%d %H:%M") if when else ""


def duration_text(span: timedelta) -> str:
    """`45s`, `10m`, `2h 5m`, `3d 4h`: a lag or a wait as a person reads it."""
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def _time(value, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ProviderError(f"{where}: {value!r} is not a date-time") from None


def _need(entry, key: str, where: str):
    if not isinstance(entry, dict):
        raise ProviderError(f"{where}: expected a mapping, got {entry!r}")
    if key not in entry:
        raise ProviderError(f"{where}: missing '{key}'")
    return entry[key]


def _list(data: dict, key: str) -> list:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ProviderError(f"{key}: expected a list, got {type(value).__name__}")
    return value


# -- the seller ---------------------------------------------------------------------------


def period_name(period: int) -> str:
    return PERIOD_NAMES.get(period, f"{period} mo")


def tariff_view(tariff: Tariff) -> dict:
    if tariff.setup == "after":
        setup = f"after {duration_text(tariff.setup_after)}"
    else:
        setup = tariff.setup
    return {
        "id": tariff.id,
        "intname": tariff.intname,
        "name": tariff.name,
        "type": tariff.type,
        "prices": [(period_name(p), str(price)) for p, price in tariff.prices.items()],
        "addons": [_addon_text(a) for a in tariff.addons.values()],
        "setup": setup,
        "ostempl": ", ".join(tariff.ostempl),
    }


def _addon_text(addon) -> str:
    if addon.type == "integer":
        limit = f", up to {addon.max}" if addon.max is not None else ""
        return f"{addon.intname}: {addon.included} included{limit}, {addon.unit_price} a unit"
    if addon.type == "boolean":
        return f"{addon.intname}: on/off, {addon.price}"
    return f"{addon.intname}: " + ", ".join(f"{k} {v}" for k, v in addon.items.items())


def staff_actions(service: Service) -> list[str]:
    """What the seller's staff can do to a service in its status, as control API actions."""
    if service.status == DELETED:
        return []
    actions = {
        ORDERED: ["activate"],
        ACTIVE: ["suspend"],
        SUSPENDED: ["resume"],
    }[service.status]
    if service.status != ORDERED and service.type in ("vds", "dedic"):
        actions.append("add_ip")
    return actions + ["delete"]


def addon_choices(service: Service, tariff: Tariff | None) -> list[dict]:
    """The service's add-ons with the values staff may set, for the set-add-on form."""
    if tariff is None or service.status == DELETED:
        return []
    choices = []
    for name, addon in tariff.addons.items():
        value = service.addons.get(name, addon.default())
        choices.append(
            {
                "addon": name,
                "type": addon.type,
                "max": addon.max,
                "items": list(addon.items),
                "value": value if isinstance(value, bool | int) else str(value),
            }
        )
    return choices


def seller_service(service: Service, seller: Seller) -> dict:
    tariff = seller.tariffs.get(service.tariff)
    addons = {k: _addon_value(v) for k, v in service.addons.items()}
    return {
        "id": service.id,
        "account": service.account,
        "tariff": tariff.intname if tariff else str(service.tariff),
        "type": service.type,
        "period": period_name(service.period),
        "status": STATUS_NAMES[service.status],
        "expires": service.expires.strftime("%Y-%m-%d") if service.expires else "",
        "remoteid": service.remoteid,
        "ips": list(service.ips),
        "addons": addons,
        "actions": staff_actions(service),
        "addon_choices": addon_choices(service, tariff),
    }


def _addon_value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _event_detail(event: Event) -> str:
    if event.type in ("ip_add", "ip_del"):
        return event.value
    if event.name:
        return f"{event.name}={event.value}"
    return STATUS_NAMES.get(event.status, "")


# -- the other side -----------------------------------------------------------------------


def _reseller_services(reseller: dict) -> list[dict]:
    rows = []
    for index, entry in enumerate(_list(reseller, "services")):
        where = f"services[{index}]"
        operation = entry.get("operation") if isinstance(entry, dict) else None
        rows.append(
            {
                "id": _need(entry, "id", where),
                "client": entry.get("client", ""),
                "tariff": entry.get("tariff", ""),
                "status": _need(entry, "status", where),
                "expires": entry.get("expires") or "",
                "seller_service": entry.get("seller_service"),
                "operation": operation or None,
            }
        )
    return rows


def _operations(reseller: dict) -> list[dict]:
    rows = []
    for index, entry in enumerate(_list(reseller, "operations")):
        where = f"operations[{index}]"
        rows.append(
            {
                "id": _need(entry, "id", where),
                "service": entry.get("service"),
                "kind": _need(entry, "kind", where),
                "state": _need(entry, "state", where),
                "attempts": entry.get("attempts", ""),
                "error": entry.get("error") or "",
                "created": _time(_need(entry, "created", where), f"{where}.created"),
                "updated": _time(entry.get("updated"), f"{where}.updated"),
            }
        )
    return rows


def _clients(reseller: dict) -> list[dict]:
    clients = []
    for index, entry in enumerate(_list(reseller, "clients")):
        where = f"clients[{index}]"
        movements = []
        for n, movement in enumerate(entry.get("movements") or []):
            at = _time(_need(movement, "at", f"{where}.movements[{n}]"), f"{where}.at")
            amount = Decimal(str(_need(movement, "amount", f"{where}.movements[{n}]")))
            movements.append((at, amount))
        clients.append(
            {
                "name": str(_need(entry, "name", where)),
                "balance": Decimal(str(_need(entry, "balance", where))),
                "movements": sorted(movements, key=lambda m: m[0]),
            }
        )
    return clients


def _received(reseller: dict) -> dict[int, dict]:
    received = {}
    for index, entry in enumerate(_list(reseller, "events")):
        where = f"events[{index}]"
        received[int(_need(entry, "id", where))] = {
            "service": entry.get("service"),
            "fetched": _time(entry.get("fetched"), f"{where}.fetched"),
            "applied": _time(entry.get("applied"), f"{where}.applied"),
        }
    return received


# -- the whole view -----------------------------------------------------------------------


def overview(
    seller: Seller, reseller: dict | None, calls: str = "", reseller_error: str = ""
) -> dict:
    """Everything the dashboard shows, as plain values; `calls` is a glob over call functions."""
    try:
        other = _other_side(reseller) if reseller is not None else None
    except (ProviderError, ArithmeticError, TypeError, ValueError) as error:
        other, reseller_error = None, f"{type(error).__name__}: {error}"
    view = {
        "now": f"{seller.now:%Y-%m-%d %H:%M:%S}",
        "currency": seller.currency,
        "reseller": other,
        "reseller_error": reseller_error,
        "accounts": [
            {
                "login": a.login,
                "balance": str(a.balance),
                "admin": a.level == ADMIN_LEVEL,
                "pending_events": len(seller.feeds.get(a.login, [])),
            }
            for a in seller.accounts.values()
        ],
        "tariffs": [tariff_view(t) for t in seller.tariffs.values()],
        "services": _side_by_side(seller, other)[-SHOWN_SERVICES:],
        "services_total": len(seller.services),
        "events": _events(seller, other),
        "calls": _calls(seller, calls),
        "funcs": sorted({c["func"] for c in list(seller.calls)[-FUNCS_FROM_LAST:] if c["func"]}),
        "faults": {
            "queued": seller.faults.to_list(),
            "used": {k: n for k, n in seller.faults.used.items() if n},
            "kinds": KINDS,
        },
    }
    view["charts"] = charts(seller, other)
    return view


def _other_side(reseller: dict) -> dict:
    if not isinstance(reseller, dict):
        raise ProviderError(f"expected a mapping, got {type(reseller).__name__}")
    return {
        "name": str(reseller.get("name") or "reseller"),
        "currency": str(reseller.get("currency") or ""),
        "services": _reseller_services(reseller),
        "operations": _operations(reseller),
        "clients": _clients(reseller),
        "received": _received(reseller),
    }


def _side_by_side(seller: Seller, other: dict | None) -> list[dict]:
    """One row per seller service with the other side's service linked to it, then the rest."""
    theirs = other["services"] if other else []
    linked = {}
    for service in theirs:
        if service["seller_service"] is not None:
            linked.setdefault(int(service["seller_service"]), service)
    rows = []
    for service in seller.services.values():
        mine = seller_service(service, seller)
        match = linked.get(service.id)
        differs = bool(match and match["status"] != mine["status"])
        rows.append({"seller": mine, "reseller": match, "differs": differs})
    shown = {id(row["reseller"]) for row in rows if row["reseller"]}
    rows += [
        {"seller": None, "reseller": s, "differs": False} for s in theirs if id(s) not in shown
    ]
    return rows


def _events(seller: Seller, other: dict | None) -> list[dict]:
    on_feed = {e.id for events in seller.feeds.values() for e in events}
    received = other["received"] if other else {}
    rows = []
    for event in list(seller.events_made)[-SHOWN_EVENTS:][::-1]:
        got = received.get(event.id)
        lag = ""
        if event.id in on_feed:
            fate, text = "feed", "on the feed"
        elif other is None:
            fate, text = "read", "read from the feed"
        elif got and got["applied"]:
            fate, text = "applied", f"applied {short(got['applied'])}"
            lag = duration_text(got["applied"] - event.date)
        elif got:
            fate, text = "fetched", f"fetched {short(got['fetched'])}, not applied"
        else:
            fate, text = "lost", "read, never received"
        rows.append(
            {
                "id": event.id,
                "made": short(event.date),
                "account": event.account,
                "type": event.type,
                "service": event.service,
                "detail": _event_detail(event),
                "fate": fate,
                "fate_text": text,
                "lag": lag,
            }
        )
    return rows


def _calls(seller: Seller, pattern: str) -> list[dict]:
    pattern = pattern.strip()
    rows = []
    for call in reversed(seller.calls):
        if pattern and not fnmatchcase(call["func"], pattern):
            continue
        params = call["params"]
        rows.append(
            {
                "id": call["id"],
                "at": call["at"][5:16],
                "func": call["func"] or "-",
                "account": call["account"] or "",
                "elid": params.get("elid", ""),
                "status": call["status"],
                "result": call["result"],
            }
        )
        if len(rows) == SHOWN_CALLS:
            break
    return rows


# -- the plots ----------------------------------------------------------------------------


def _time_range(seller: Seller, other: dict | None) -> tuple[datetime, datetime]:
    """From the earliest record either side holds to now, at least half an hour wide."""
    firsts = [seller.now]
    if seller.calls:
        firsts.append(datetime.fromisoformat(next(iter(seller.calls))["at"]))
    if seller.ledger:
        firsts.append(seller.ledger[0].date)
    if seller.events_made:
        firsts.append(seller.events_made[0].date)
    if other:
        firsts += [op["created"] for op in other["operations"]]
        firsts += [c["movements"][0][0] for c in other["clients"] if c["movements"]]
    start = min(firsts)
    return start, max(seller.now, start + timedelta(minutes=30))


def balance_series(name: str, balance: Decimal, movements, start: datetime) -> Series:
    """A balance over time from its movements: what it was before them, then after each."""
    opening = balance - sum((amount for _, amount in movements), Decimal(0))
    points = [(start, opening)]
    running = opening
    for when, amount in movements:
        running += amount
        points.append((when, running))
    return Series(name, points)


def in_flight_series(operations: list[dict]) -> Series:
    """How many operations were unfinished at each moment: created until done or failed."""
    changes = []
    for op in operations:
        changes.append((op["created"], 1))
        if op["state"] in FINISHED_STATES:
            changes.append((op["updated"] or op["created"], -1))
    points, count = [], 0
    for when, change in sorted(changes):
        count += change
        if points and points[-1][0] == when:
            points[-1] = (when, count)
        else:
            points.append((when, count))
    return Series("in flight", points)


def lag_series(seller: Seller, received: dict[int, dict]) -> tuple[Series, str]:
    """Each applied event's lag from made to applied, at the time it was made."""
    lags = [
        (event.date, received[event.id]["applied"] - event.date)
        for event in seller.events_made
        if event.id in received and received[event.id]["applied"]
    ]
    hours = any(lag > timedelta(hours=3) for _, lag in lags)
    unit = 3600 if hours else 60
    points = [(when, Decimal(int(lag.total_seconds())) / unit) for when, lag in lags]
    return Series("made to applied", points, step=False), "h" if hours else "m"


def charts(seller: Seller, other: dict | None) -> dict[str, str]:
    start, end = _time_range(seller, other)
    now = seller.now
    seller_lines = [
        balance_series(
            login,
            account.balance,
            [(e.date, e.amount) for e in seller.ledger if e.account == login],
            start,
        )
        for login, account in seller.accounts.items()
        if account.level != ADMIN_LEVEL
    ]
    plots = {
        "seller_balances": line_chart(
            f"Balances at the seller ({seller.currency})", seller_lines, start, end, now=now
        )
    }
    if other is None:
        for key, title in (
            ("client_balances", "Client balances at the reseller"),
            ("event_lag", "Event lag, made to applied"),
            ("in_flight", "Operations in flight"),
        ):
            plots[key] = line_chart(title, [], start, end, empty="needs the reseller side")
        return plots
    currency = f" ({other['currency']})" if other["currency"] else ""
    plots["client_balances"] = line_chart(
        f"Client balances at the reseller{currency}",
        [balance_series(c["name"], c["balance"], c["movements"], start) for c in other["clients"]],
        start,
        end,
        now=now,
    )
    lags, unit = lag_series(seller, other["received"])
    plots["event_lag"] = line_chart(
        "Event lag, made to applied", [lags], start, end, unit=unit, empty="no event applied yet"
    )
    plots["in_flight"] = line_chart(
        "Operations in flight",
        [in_flight_series(other["operations"])],
        start,
        end,
        now=now,
        empty="no operation yet",
        whole=True,
    )
    return plots
