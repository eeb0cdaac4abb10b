"""Software licences (`soft`): the licence form, a new key, saving its name, IP and remoteid."""

from __future__ import annotations

from simulator.formats import action, cell, cells, fields, form
from simulator.functions.common import service_of
from simulator.functions.services import service_fields
from simulator.functions.table import WITH_SOK, Call, Param, declare

DIRECT = ("licname", "ip")  # parameters the licence form shows as fields of their own


@declare(
    "soft.edit",
    params=(
        Param("elid", required=True),
        Param("clicked_button"),
        Param("licname"),
        Param("ip"),
        Param("remoteid"),
    ),
    changes=WITH_SOK,
)
def soft_edit(call: Call):
    """A licence's form (`lickey` once set up); with `sok` a new key or its fields saved.

    `clicked_button=newkey` issues a new key; otherwise `licname`, `ip`, `remoteid` and
    add-ons are saved.
    """
    seller = call.seller
    service = service_of(call)
    if not call.sok:
        children = service_fields(seller, service)
        children += cells(
            lickey=service.lickey,
            licname=service.params.get("licname", ""),
            ip=service.params.get("ip", ""),
        )
        children += [
            cell("param", value, None, name=name)
            for name, value in service.params.items()
            if name not in DIRECT
        ]
        return form(*children)
    if call["clicked_button"] == "newkey":
        return action(*fields(id=service.id, lickey=seller.new_licence_key(call.account, service)))
    changes = {name: call[name] for name in ("licname", "ip", "remoteid") if name in call.params}
    changes = {name: value or "" for name, value in changes.items()}
    addons = call.addons()
    if addons:
        seller.change_addons(call.account, service, addons)
    seller.edit_licence(call.account, service, changes)
    return action(*fields(id=service.id, lickey=service.lickey))
