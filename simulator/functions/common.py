"""What several families show the same way: dates, periods, statuses, costs, paged lists."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from functools import cache, lru_cache
from xml.etree import ElementTree as ET

from simulator.formats import Document, Made, cell, el, rows
from simulator.functions.table import Call, whole_number
from simulator.model import (
    ACTIVE,
    DATACENTERS,
    DAY,
    DELETED,
    ORDERED,
    SUSPENDED,
    TRIAL,
    Seller,
    SellerError,
    Service,
    Tariff,
)

STATUS_LABELS = {ORDERED: "Ordered", ACTIVE: "Active", SUSPENDED: "Suspended", DELETED: "Deleted"}
STATUS_COLORS = {ORDERED: "orange", ACTIVE: "green", SUSPENDED: "red", DELETED: "gray"}
PERIOD_LABELS = {
    1: "monthly",
    3: "quarterly",
    6: "semi-annual",
    12: "annual",
    24: "biennial",
    36: "triennial",
}


@lru_cache(maxsize=4096)  # a list shows the same few dates on every row
def date(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d") if when else ""


@lru_cache(maxsize=4096)
def stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else ""


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def period_label(period: int) -> str:
    if period > 0:
        return PERIOD_LABELS.get(period, f"{period} months")
    return {DAY: "daily", TRIAL: "trial"}.get(period, "lifetime")


def period_element(period: int, cost: Decimal) -> ET.Element:
    """`<period cost=... type=... length=...>` as pricelist.export shows a price."""
    if period > 0:
        kind, length = "month", period
    else:
        kind, length = {DAY: ("day", 1), TRIAL: ("trial", 1)}.get(period, ("lifetime", 0))
    return el("period", period_label(period), {"cost": cost, "type": kind, "length": length})


@cache  # a handful of statuses; a list has a row per service
def status_list_cell(status: int) -> tuple:
    """`item_status`, a list row's or form's cell: the code XML and JSON show, the label bjson's."""
    return cell(
        "item_status", status, STATUS_LABELS[status], orig=status, color=STATUS_COLORS[status]
    )


def _period_price(seller: Seller, service: Service) -> Decimal | None:
    """What the service's period costs now; None once its tariff no longer sells that period
    (the staff edited the tariff, or a snapshot says so): the service still lists."""
    tariff = seller.tariffs[service.tariff]
    if service.period not in tariff.prices:
        return None
    return tariff.price_for(service.period, service.addons)


def cost_cells(seller: Seller, service: Service, prices: dict | None = None) -> tuple[str, str]:
    """The `cost` column (what the service costs a month, or its period if not in months) and
    `item_cost` (its period's price), from one reckoning of the price: a list has a row each.

    `prices`, a dict kept for one reply, holds the cells already reckoned for a tariff, period
    and add-on values: a list's services mostly share them, and nothing changes mid-reply.
    """
    if prices is None:
        return _cost_cells(seller, service)
    key = (service.tariff, service.period, tuple(service.addons.items()))
    found = prices.get(key)
    if found is None:
        found = prices[key] = _cost_cells(seller, service)
    return found


def _cost_cells(seller: Seller, service: Service) -> tuple[str, str]:
    price = _period_price(seller, service)
    if price is None:
        return "", ""
    if service.period > 0:
        cost = f"{money(price / service.period)} {seller.currency} / month"
    else:
        cost = f"{money(price)} {seller.currency} / {period_label(service.period)}"
    return cost, f"{price:.4f}"


def datacenter_name(tariff: Tariff) -> str:
    return DATACENTERS.get(tariff.datacenter, "")


def autoprolong_text(service: Service) -> str:
    return str(service.autoprolong) if service.autoprolong else "off"


def os_family(template: str) -> str:
    """The family an OS template belongs to (`$valuegroup`): `debian` for `debian-12`."""
    name = template.rsplit("__", 1)[-1]
    match = re.match(r"[A-Za-z]+", name)
    return match.group(0).lower() if match else "other"


def listing(call: Call, cells: list, row=None, written=None) -> Document:
    """A list with its metadata, paged only when the client sends `p_cnt` or `p_num`.

    With `row`, `cells` are the things listed and each row is `row(thing)`, made as the reply
    is written (one row's cells alive at a time, not every row's); `written(thing)`, if given,
    is that row's XML (`formats.row_xml(row(thing))`), as the row maker may keep it.
    """
    total = len(cells)
    page = call.page()
    if page is None:
        shown_rows, meta = cells, dict(p_elems=total, p_num=1, p_cnt=max(total, 1))
    else:
        start, count = page
        shown_rows = cells[start : start + count]
        meta = dict(p_elems=total, p_num=start // count + 1, p_cnt=count)
    if row is not None:
        shown_rows = Made(shown_rows, row, written)
    return rows(shown_rows, **meta)


def service_of(call: Call, elid: str | None = None) -> Service:
    """The caller's service named by `elid` (of the function's type, where it has one)."""
    return call.seller.service_of(call.account, elid or call["elid"], call.type)


def autoprolong_period(call: Call, raw: str | None, default_period: int | None = None) -> int:
    """`autoprolong` as a period code: off (`null`, `off`, `0`) is 0; `on` the service's own."""
    if raw is None or raw in ("off", "0"):
        return 0
    if raw == "on":
        if default_period is None:
            raise SellerError("value", "autoprolong", "autoprolong=on needs a period")
        return default_period
    return whole_number(raw, "autoprolong")


def tariff_named(seller: Seller, tariff_id: int | None, type: str | None) -> Tariff:
    tariff = seller.tariffs.get(tariff_id) if tariff_id is not None else None
    if tariff is None or (type and tariff.type != type):
        raise SellerError("value", "pricelist", f"no {type or 'such'} tariff {tariff_id}")
    return tariff


def price_text(seller: Seller, tariff: Tariff, period: int) -> str:
    return f"{money(tariff.prices[period])} {seller.currency} / {period_label(period)}"
