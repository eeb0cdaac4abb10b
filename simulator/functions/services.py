"""A client's services: lists, forms and edits, lifecycle, prolongation, passwords, tickets."""

from __future__ import annotations

import html
from functools import partial

from simulator.formats import action, cell, cells, data, el, fields, form, row_xml, slist
from simulator.functions.common import (
    STATUS_LABELS,
    autoprolong_period,
    autoprolong_text,
    cost_cells,
    datacenter_name,
    date,
    listing,
    period_label,
    service_of,
    stamp,
    status_list_cell,
)
from simulator.functions.table import ALWAYS, WITH_SOK, Call, Param, declare
from simulator.model import PRODUCT_TYPES, SERVER_TYPES, Seller, SellerError, Service

EDITABLE = tuple(t for t in PRODUCT_TYPES if t != "soft")  # soft.edit is the licences'
ELID = Param("elid", required=True)


def service_row(seller: Seller, service: Service, prices: dict | None = None) -> list[tuple]:
    """A service as its type's list shows it; `pricelist` is the tariff's name. `prices`: see
    `cost_cells`.

    The cells as `formats.cells` makes them (text, None values left out), listed directly:
    a list has a row per service, and the keyword dict `cells` takes costs a row's work again.
    """
    tariff = seller.tariffs[service.tariff]
    params = service.params
    ips = service.ips
    ip = ips[0] if ips else params.get("ip", "") if service.type == "soft" else ""
    cost, period_cost = cost_cells(seller, service, prices)
    expires = date(service.expires)
    row = [
        ("id", str(service.id), None),
        ("name", str(service.name), None),
        ("pricelist", str(tariff.name), None),
        ("pricelist_id", str(service.tariff), None),
        ("period", str(service.period), None),
        ("status", str(service.status), None),
        ("createdate", date(service.opened), None),
        ("expiredate", expires, None),
        ("real_expiredate", expires, None),
        ("remoteid", str(service.remoteid), None),
        ("ip", str(ip), None),
    ]
    for name in ("domain", "username", "licname", "ostempl"):
        value = params.get(name)
        if value is not None:
            row.append((name, str(value), None))
    row += (
        ("cost", cost, None),
        ("item_cost", period_cost, None),
        ("currency_str", str(seller.currency), None),
        ("datacentername", datacenter_name(tariff), None),
        ("autoprolong", autoprolong_text(service), None),
        ("status_msg", STATUS_LABELS[service.status], None),
        status_list_cell(service.status),
    )
    return row


# A service's list row as XML, by the service's id, with everything `service_row` reads: a list
# is read again and again while most of its services stay as they are. The row is taken again
# only while its every input is as it was, so a change to any of them writes it anew; and a
# service's new row replaces its old one, so a list of any length up to the bound stays kept
# (over it, the oldest half goes).
WRITTEN_ROWS: dict[int, tuple[tuple, str]] = {}
WRITTEN_ROWS_KEPT = 65536


def service_row_xml(seller: Seller, service: Service, prices: dict | None = None) -> str:
    """`formats.row_xml(service_row(...))`, kept by the row's inputs (see WRITTEN_ROWS)."""
    tariff = seller.tariffs[service.tariff]
    inputs = (
        service.id,
        service.type,
        service.tariff,
        service.period,
        service.status,
        service.opened,
        service.expires,
        service.remoteid,
        service.autoprolong,
        tuple(service.ips),
        tuple(service.params.items()),
        cost_cells(seller, service, prices),
        tariff.name,
        tariff.datacenter,
        seller.currency,
    )
    kept = WRITTEN_ROWS.get(service.id)
    if kept is not None and kept[0] == inputs:  # kept inputs hash: no list or dict equals them
        return kept[1]
    try:
        hash(inputs)
    except TypeError:  # a value that may change in place (a snapshot's odd param): not kept
        return row_xml(service_row(seller, service, prices))
    written = row_xml(service_row(seller, service, prices))
    if len(WRITTEN_ROWS) >= WRITTEN_ROWS_KEPT:
        for old in list(WRITTEN_ROWS)[: WRITTEN_ROWS_KEPT // 2]:
            WRITTEN_ROWS.pop(old, None)  # another seller's thread may drop it too
    WRITTEN_ROWS[service.id] = (inputs, written)
    return written


@declare("{type}", types=PRODUCT_TYPES, params=(Param("remoteid"),))
def service_list(call: Call):
    """The caller's services of the type (`remoteid=` filters), paged on request."""
    seller, prices = call.seller, {}
    services = seller.services_of(call.account, call.type, call["remoteid"])
    return listing(
        call,
        services,
        lambda service: service_row(seller, service, prices),
        partial(service_row_xml, seller, prices=prices),  # no frame of its own per row
    )


def service_fields(seller: Seller, service: Service) -> list[tuple]:
    """What every service's form shows: ids, tariff, dates, status, add-ons (as `cells`)."""
    tariff = seller.tariffs[service.tariff]
    children = cells(
        id=service.id,
        name=service.name,
        pricelist=service.tariff,
        pricelist_name=tariff.name,
        period=service.period,
        status=service.status,
        createdate=date(service.opened),
        expiredate=date(service.expires),
        remoteid=service.remoteid,
        datacenter=tariff.datacenter,
        autoprolong=service.autoprolong or "null",
    )
    children.append(status_list_cell(service.status))
    for name, value in service.addons.items():
        addon = tariff.addons.get(name)
        if addon is not None:
            children.append(cell(f"addon_{addon.id}", addon.wire(value), None, intname=name))
    return children


def service_form(seller: Seller, service: Service):
    """A service's form (`<type>.edit` without `sok`): add-ons, parameters and IPs."""
    children: list = service_fields(seller, service)
    if service.type in ("vhost", "dnshost"):
        children += cells(username=service.params.get("username"), password=service.password)
    children += [cell("param", value, None, name=name) for name, value in service.params.items()]
    children += [cell("ip", ip, None) for ip in service.ips]
    tariff = seller.tariffs[service.tariff]
    if tariff.ostempl:
        children.append(slist("ostempl", [(o, o) for o in tariff.ostempl]))
    return form(*children)


@declare(
    "{type}.edit",
    types=EDITABLE,
    params=(ELID, Param("ostempl", "select"), Param("autoprolong", "select")),
    changes=WITH_SOK,
)
def service_edit(call: Call):
    """A service's form; with `sok` it changes add-ons, reinstalls, sets `autoprolong`.

    Add-ons are charged the difference; a new `ostempl` reinstalls the server.
    """
    seller = call.seller
    service = service_of(call)
    if not call.sok:
        return service_form(seller, service)
    ostempl = call["ostempl"]
    reinstall = ostempl is not None and ostempl != service.params.get("ostempl")
    if reinstall:
        seller.check_reinstall(service, ostempl)
    renew = call.raw("autoprolong")
    if renew is not None:
        period = autoprolong_period(call, call["autoprolong"], service.period)
        if period and period not in seller.tariffs[service.tariff].prices:
            raise SellerError("value", "autoprolong", f"the tariff has no period {period}")
    addons = call.addons()
    if addons or not reinstall:
        seller.change_addons(call.account, service, addons)
    if reinstall:
        seller.reinstall(call.account, service, ostempl)
    if renew is not None:
        seller.set_autoprolong(call.account, service, period)
    return action(*fields(id=service.id))


def lifecycle(method: str):
    def run(call: Call):
        seller = call.seller
        services = [service_of(call, elid) for elid in call.elids()]
        # all at once: the seller checks every one before it changes any (`elid=1, 2`)
        getattr(seller, method)(call.account, *services)
        return action()

    run.__doc__ = f"{method.capitalize()} the services `elid` names (several as `1, 2`)."
    return run


for _method in ("suspend", "resume", "delete"):
    declare(f"{{type}}.{_method}", types=PRODUCT_TYPES, params=(ELID,), changes=ALWAYS)(
        lifecycle(_method)
    )


@declare(
    "service.prolong",
    params=(ELID, Param("period", "int", required="sok")),
    changes=WITH_SOK,
)
def service_prolong(call: Call):
    """The prolongation form; with `sok` it debits the period and moves the expiry."""
    seller = call.seller
    service = service_of(call)
    if not call.sok:
        tariff = seller.tariffs[service.tariff]
        return form(
            *fields(elid=service.id, expiredate=date(service.expires)),
            slist("period", [(p, period_label(p)) for p in sorted(tariff.prices) if p > 0]),
        )
    expires = seller.prolong(call.account, service, call["period"])
    return action(el("doc", children=fields(newexpiredate=date(expires))))


def gateway(ip: str) -> str:
    parts = ip.split(".")
    return ".".join(parts[:3] + ["1"]) if len(parts) == 4 else ""


@declare("service.ip", params=(ELID,))
def service_ip(call: Call):
    """A service's IP addresses, each with its gateway and mask."""
    service = service_of(call)
    return listing(
        call,
        [fields(ip=ip, name=ip, gateway=gateway(ip), mask="255.255.255.0") for ip in service.ips],
    )


def change_password(call: Call):
    """The password form; with `sok` it sets the service's root password (`passwd`)."""
    service = service_of(call)
    if not call.sok:
        return form(*fields(elid=service.id))
    if call["passwd"] is None:
        raise SellerError("missed", "passwd", "the parameter 'passwd' is required")
    if call["confirm"] is not None and call["confirm"] != call["passwd"]:
        raise SellerError("value", "confirm", "the confirmation differs from the password")
    call.seller.change_password(call.account, service, call["passwd"])
    return action(*fields(id=service.id))


for _name in ("service.changepassword", "service.set_password"):
    declare(_name, params=(ELID, Param("passwd"), Param("confirm")), changes=WITH_SOK)(
        change_password
    )


def reboot(call: Call):
    """Reboot a running server: it answers `ok`, and nothing the seller keeps changes."""
    service = service_of(call)
    call.seller.check_reboot(call.account, service)
    return action()


declare("{type}.reboot", types=SERVER_TYPES, params=(ELID,))(reboot)
declare("service.hardreboot", params=(ELID,))(reboot)


@declare(
    "service.changepricelist",
    params=(ELID, Param("pricelist", "int", required="sok"), Param("period", "int")),
    changes=WITH_SOK,
)
def change_pricelist(call: Call):
    """The tariffs a service may move to; with `sok` it moves (see `Seller.change_tariff`)."""
    seller = call.seller
    service = service_of(call)
    if not call.sok:
        others = [t for t in seller.tariffs.values() if t.type == service.type]
        return form(
            *fields(elid=service.id, pricelist=service.tariff),
            slist("pricelist", [(t.id, t.name) for t in others]),
        )
    charge = seller.change_tariff(call.account, service, call["pricelist"], call["period"])
    return action(*fields(id=service.id, amount=charge))


PANEL_URL = "https://panel.simulator.invalid/"  # the control panel the welcome letter names


@declare("service.instruction.html", params=(ELID,))
def instruction(call: Call):
    """How to reach a service, as the welcome letter tells it (`doc.body`, HTML).

    The last list is how to log in: URL, username, password.
    """
    service = service_of(call)
    tariff = call.seller.tariffs[service.tariff]
    about = [("Service", f"{service.name} ({tariff.name})")]
    about += [("IP address", ip) for ip in service.ips]
    if service.params.get("ostempl"):
        about.append(("Operating system", service.params["ostempl"]))
    if service.type == "soft":
        about.append(("Licence key", service.lickey))
    login = service.params.get("username") or ("root" if service.type in SERVER_TYPES else "")
    access = [("URL", PANEL_URL), ("Username", login), ("Password", service.password)]
    body = f"<p>Service #{service.id} is ready.</p>{_items(about)}"
    if login:
        body += _items(access)
    return data(el("body", body))


def _items(lines) -> str:
    items = "".join(f"<li>{html.escape(k)}: <b>{html.escape(str(v))}</b></li>" for k, v in lines)
    return f"<ul>{items}</ul>"


@declare("ticket")
def ticket_list(call: Call):
    """The caller's support tickets."""
    tickets = call.seller.tickets_of(call.account)
    return listing(
        call,
        [
            fields(id=t.id, name=t.subject, subject=t.subject, status=t.status, date=stamp(t.date))
            for t in tickets
        ],
    )


@declare(
    "ticket.edit",
    params=(Param("subject", required="sok"), Param("message", required="sok")),
    changes=WITH_SOK,
)
def ticket_edit(call: Call):
    """A new ticket's form; with `sok` it opens the ticket."""
    if not call.sok:
        return form(*fields(subject="", message=""))
    ticket = call.seller.open_ticket(call.account, call["subject"], call["message"])
    return action(*fields(id=ticket.id))
