"""The catalog: pricelist.export, and the order wizard's steps before anything is ordered."""

from __future__ import annotations

from decimal import Decimal
from weakref import WeakKeyDictionary
from xml.etree import ElementTree as ET

from simulator.formats import Document, data, el, fields, form, named_list, slist
from simulator.functions.common import (
    datacenter_name,
    money,
    os_family,
    period_element,
    period_label,
    price_text,
    tariff_named,
)
from simulator.functions.table import PUBLIC, Call, Param, declare, whole_number
from simulator.model import (
    DATACENTERS,
    PRODUCT_TYPES,
    Addon,
    OrderRequest,
    Seller,
    SellerError,
    Tariff,
)

ADDON_TYPE_CODES = {"boolean": 1, "integer": 2, "enumeration": 3}
# BILLmanager numbers product types per install; these are one install's [T: datahata's
# export has vds 3, dedic 21, soft 40], the rest chosen here.
ITEMTYPE_IDS = {"vhost": 1, "vds": 3, "dnshost": 9, "dedic": 21, "soft": 40, "instances": 110}
ITEMTYPE_BY_ID = {str(n): t for t, n in ITEMTYPE_IDS.items()}
# The resource an add-on sells (`addon_itemtype_info/intname`) and its unit, by its name.
RESOURCES = {
    "ram": ("mem", "MB"),
    "mem": ("mem", "MB"),
    "memory": ("mem", "MB"),
    "cpu": ("ncpu", "Unit"),
    "ncpu": ("ncpu", "Unit"),
    "vcpu": ("ncpu", "Unit"),
    "disk": ("disc", "GB"),
    "disc": ("disc", "GB"),
    "hdd": ("disc", "GB"),
    "ssd": ("disc", "GB"),
    "ip": ("ip", "Unit"),
    "traffic": ("traffic", "GB"),
}
MEASURE_IDS = {"Unit": 1, "MB": 2, "GB": 3}


def resource_of(addon: Addon) -> tuple[str, str]:
    return RESOURCES.get(addon.intname.lower(), (addon.intname, "Unit"))


def monthly_price(currency: str, cost: Decimal) -> ET.Element:
    return el("price", attrs={"currency": currency}, children=[period_element(1, cost)])


def addon_element(addon: Addon, currency: str) -> ET.Element:
    """An add-on as pricelist.export shows it: `addonlimit` is how much the tariff includes."""
    resource, unit = resource_of(addon)
    children = fields(
        id=addon.id,
        intname=addon.intname,
        name=addon.intname,
        addontype=ADDON_TYPE_CODES[addon.type],
        addonmin=0 if addon.type == "integer" else None,
        addonlimit=addon.included if addon.type == "integer" else None,
        addonmax=addon.max if addon.type == "integer" else None,
        addonstep=1 if addon.type == "integer" else None,
    )
    if addon.type == "integer":
        measure = MEASURE_IDS[unit]
        children += [
            el("measure", measure),
            el("measure", children=fields(id=measure, name=unit)),
        ]
    children.append(el("addon_itemtype_info", children=fields(intname=resource)))
    if addon.type == "integer":
        children.append(monthly_price(currency, addon.unit_price))
    elif addon.type == "boolean":
        children.append(monthly_price(currency, addon.price))
    else:
        items = [
            el(
                "enumerationitem",
                children=fields(id=addon.item_ids[item], intname=item, name=item)
                + [monthly_price(currency, price)],
            )
            for item, price in addon.items.items()
        ]
        children.append(el("enumeration", children=fields(id=addon.id) + items))
    return el("addon", children=children)


def tariff_element(tariff: Tariff, currency: str) -> ET.Element:
    """A tariff (`<pricelist>`) with its prices, OS templates, software and add-ons."""
    prices = el(
        "price",
        attrs={"currency": currency},
        children=[period_element(p, c) for p, c in sorted(tariff.prices.items())],
    )
    params = [
        el(
            "itemtypeparam",
            children=fields(intname=intname)
            + [el("itemtypeparamvalue", children=fields(intname=v, name=v)) for v in values],
        )
        for intname, values in (("ostempl", tariff.ostempl), ("recipe", tariff.recipes))
    ]
    return el(
        "pricelist",
        children=fields(
            id=tariff.id,
            name=tariff.name,
            intname=tariff.intname,
            description=tariff.description,
            itemtype=ITEMTYPE_IDS[tariff.type],
            active="on",
            hideinorder="off",
            archived="off",
        )
        + [
            el("itemtype_info", children=fields(intname=tariff.type)),
            el("datacenter", children=fields(id=tariff.datacenter, name=datacenter_name(tariff))),
            prices,
        ]
        + params
        + [addon_element(a, currency) for a in tariff.addons.values()],
    )


@declare(
    "pricelist.export",
    access=PUBLIC,
    params=(Param("itemtype"), Param("pricelist", "int")),
)
def pricelist_export(call: Call):
    """Every tariff (no login needed); `itemtype` (intname or id) and `pricelist` filter.

    `elid` names a provider or project in BILLmanager, not a tariff: it filters nothing.
    """
    itemtype = call["itemtype"]
    if itemtype is not None:
        itemtype = ITEMTYPE_BY_ID.get(itemtype, itemtype)
    return exported(call.seller, itemtype, call["pricelist"])


EXPORTS_KEPT = 64  # filters kept per state of the catalogue: a flood of odd ones costs no memory
# Per seller: the catalogue's version and currency it was built for, and the documents by filter.
_exports: WeakKeyDictionary[Seller, tuple[tuple[int, str], dict]] = WeakKeyDictionary()


def exported(seller: Seller, itemtype: str | None, tariff_id: int | None) -> Document:
    """pricelist.export's document, built once per state of the catalogue and kept rendered.

    Every change to a tariff replaces it in `seller.tariffs`, which moves the version on.
    """
    state = (seller.tariffs.version, seller.currency)
    kept = _exports.get(seller)
    if kept is None or kept[0] != state:
        kept = _exports[seller] = (state, {})
    documents = kept[1]
    document = documents.get((itemtype, tariff_id))
    if document is None:
        tariffs = seller.pricelist(itemtype, tariff_id)
        document = data(*[tariff_element(t, seller.currency) for t in tariffs]).kept()
        if len(documents) < EXPORTS_KEPT:
            documents[(itemtype, tariff_id)] = document
    return document


def datacenters(seller: Seller, type: str) -> list[tuple[int, str]]:
    used = {t.datacenter for t in seller.tariffs.values() if t.type == type}
    return [(n, name) for n, name in DATACENTERS.items() if n in used or not used]


def chosen_datacenter(call: Call) -> int | None:
    raw = call.raw("datacenter")
    if raw is None or raw == "null":
        return None
    datacenter = whole_number(raw, "datacenter")
    if datacenter not in DATACENTERS:
        raise SellerError("value", "datacenter", f"no datacenter {datacenter}")
    return datacenter


def offered(call: Call) -> list[Tariff]:
    datacenter = chosen_datacenter(call)
    return [
        t
        for t in call.seller.tariffs.values()
        if t.type == call.type and (datacenter is None or t.datacenter == datacenter)
    ]


def first_period(tariff: Tariff) -> int:
    months = sorted(p for p in tariff.prices if p > 0)
    return months[0] if months else sorted(tariff.prices)[0]


@declare("{type}.order", types=PRODUCT_TYPES, params=(Param("datacenter", "select"),))
def order_wizard(call: Call):
    """The order wizard's first step: the datacenters and the tariffs (`tariflist`)."""
    seller = call.seller
    tariffs = offered(call)
    return form(
        slist("datacenter", datacenters(seller, call.type)),
        named_list(
            "tariflist",
            [
                fields(
                    pricelist=t.id,
                    desc=t.description or t.name,
                    price=price_text(seller, t, first_period(t)),
                    order_available="on",
                )
                for t in tariffs
            ],
        ),
    )


@declare("v2.{type}.order.pricelist", types=PRODUCT_TYPES, params=(Param("datacenter", "select"),))
def order_pricelist(call: Call):
    """BILLmanager 6's first step: tariffs with their details and prices per period."""
    seller = call.seller
    elems = []
    for t in offered(call):
        details = [
            el("detail", children=fields(name=a.intname, value=a.wire(a.default())))
            for a in t.addons.values()
        ]
        prices = el(
            "prices",
            children=[
                el(
                    "price",
                    children=fields(cost=money(cost), currency=seller.currency, period=period),
                )
                for period, cost in sorted(t.prices.items())
            ],
        )
        elems.append(
            fields(id=t.id, title=t.name, description=t.description or t.name)
            + details
            + [
                el(
                    "datacenter",
                    children=fields(id=t.datacenter, value=datacenter_name(t)),
                ),
                prices,
            ]
        )
    return form(slist("datacenter", datacenters(seller, call.type)), named_list("pricelist", elems))


def order_form(call: Call, tariff_id: int | None, period: int | None):
    """An order form (`<type>.order.param` without `sok`): what may be chosen, and its price."""
    seller = call.seller
    tariff = tariff_named(seller, tariff_id, call.type)
    period = period if period in tariff.prices else first_period(tariff)
    try:
        quote = seller.quote(OrderRequest(call.type, tariff.id, period, call.addons()))
        addons = quote.addons
    except SellerError:
        quote, addons = None, {n: a.default() for n, a in tariff.addons.items()}
    summary = [
        fields(label=f"{tariff.name} ({period_label(period)})", cost=money(tariff.prices[period]))
    ]
    for name, addon in tariff.addons.items():
        cost = addon.monthly_price(addons[name]) * max(1, period if period > 0 else 1)
        if cost:
            summary.append(fields(label=name, cost=money(cost)))
    total = quote.price if quote else tariff.prices[period]
    return form(
        *fields(pricelist=tariff.id, period=period, datacenter=tariff.datacenter),
        *[el(f"addon_{a.id}", a.wire(addons[n]), {"intname": n}) for n, a in tariff.addons.items()],
        slist("period", [(p, period_label(p)) for p in sorted(tariff.prices)]),
        slist("datacenter", [(tariff.datacenter, datacenter_name(tariff))]),
        slist(
            # BILLmanager 6 names the select of an instance's OS `instances_os` [T: Zomro]
            "instances_os" if call.type == "instances" else "ostempl",
            [(o, o, {"valuegroup": os_family(o)}) for o in tariff.ostempl],
        ),
        slist(
            "recipe",
            [(r, r, {"depend": o}) for r in tariff.recipes for o in tariff.ostempl]
            or [(r, r) for r in tariff.recipes],
        ),
        slist(
            "autoprolong",
            [("null", "off")] + [(p, period_label(p)) for p in sorted(tariff.prices) if p > 0],
        ),
        named_list("pricelist_summary", summary),
        named_list(
            "total_summary", [fields(label="Total", cost=money(total), currency=seller.currency)]
        ),
    )
