"""Ordering: at once with `skipbasket=on`, or through the cart (BILLmanager's basket).

An order without `skipbasket=on` goes to the account's open cart and costs nothing yet;
paying the cart (`basket` with `clicked_button=free` or `pay`, or BILLmanager 6's
`cartorder.create.confirm`) creates each service exactly as a `skipbasket` order does.
"""

from __future__ import annotations

from decimal import Decimal

from simulator.formats import action, el, fields, form, named_list
from simulator.functions.catalog import chosen_datacenter, order_form
from simulator.functions.common import autoprolong_period, money, period_label
from simulator.functions.table import WITH_SOK, Call, Param, declare, whole_number
from simulator.model import PRODUCT_TYPES, Cart, OrderRequest, SellerError

ORDER_EXTRAS = ("ostempl", "recipe", "domain", "hostname", "ip", "licname")
ORDER_PARAMS = (
    Param("pricelist", "int", required=True),
    Param("period", "int", required="sok"),
    Param("ostempl", "select"),
    Param("recipe", "select"),
    Param("autoprolong", "select"),
    Param("datacenter", "select"),
    Param("skipbasket"),
    Param("remoteid"),
)


def order_params(call: Call) -> dict:
    """The parameters an order keeps on its service (`null` in a select is none)."""
    extras = {key: call.raw(key) for key in ORDER_EXTRAS}
    for key in ("ostempl", "recipe"):
        if extras[key] == "null":
            extras[key] = None
    if call.raw("instances_os") and not extras["ostempl"]:
        extras["ostempl"] = call.raw("instances_os")  # BILLmanager 6's name for it [T: Zomro]
    if call.raw("servername") and not extras["hostname"]:
        extras["hostname"] = call.raw("servername")
    return extras


def place_order(call: Call, period: int, skipbasket: bool):
    """Order at once, or put the order in the cart; the reply says which."""
    seller = call.seller
    order = OrderRequest(
        call.type,
        call["pricelist"],
        period,
        call.addons(),
        order_params(call),
        call["remoteid"] or "",
        autoprolong_period(call, call["autoprolong"], period),
        chosen_datacenter(call),
    )
    if skipbasket:
        service = seller.place(call.account, order)
        return action(*fields(id=service.id, item=service.id))
    cart, line = seller.add_to_cart(call.account, order)
    return action(el("lineitem.id", line.id), *fields(basket=cart.id))


@declare("{type}.order.param", types=PRODUCT_TYPES, params=ORDER_PARAMS, changes=WITH_SOK)
def order_param(call: Call):
    """The order form; with `sok` an order, paid at once with `skipbasket=on`."""
    if not call.sok:
        return order_form(call, call["pricelist"], call["period"])
    return place_order(call, call["period"], call["skipbasket"] == "on")


@declare(
    "v2.{type}.order.param",
    types=PRODUCT_TYPES,
    params=(
        Param("pricelist", "int", required=True),
        Param("order_period", "int"),
        Param("period", "int"),
        *ORDER_PARAMS[2:],
        Param("force_use_new_cart"),
    ),
    changes=WITH_SOK,
)
def order_param_v2(call: Call):
    """BILLmanager 6's order form; with `sok` a cart line item (`lineitem.id`)."""
    period = call["order_period"] if call["order_period"] is not None else call["period"]
    if not call.sok:
        return order_form(call, call["pricelist"], period)
    if period is None:
        raise SellerError("missed", "order_period", "the parameter 'order_period' is required")
    if call["force_use_new_cart"] == "on":
        call.seller.carts.pop(call.account.login, None)
    return place_order(call, period, call["skipbasket"] == "on")


def cart_form(call: Call, cart: Cart | None):
    """The open cart as `openlist`: the cart's own row, then one row per order in it."""
    seller, elems = call.seller, []
    if cart is not None:
        quotes = seller.cart_quotes(cart)
        total = sum((quote.price for _, quote in quotes), Decimal(0))
        elems.append(
            fields(id=cart.id, name=f"Cart {cart.id}", cost=money(total), currency=seller.currency)
        )
        for line, quote in quotes:
            elems.append(
                fields(
                    id=line.id,
                    name=quote.tariff.name,
                    itemtype=line.order.type,
                    pricelist=quote.tariff.name,
                    pricelist_id=line.order.tariff,
                    period=period_label(line.order.period),
                    cost=money(quote.price),
                    remoteid=line.order.remoteid,
                )
            )
    return form(named_list("openlist", elems))


def paid(services):
    return action(*[el("id", s.id) for s in services])


@declare(
    "basket",
    params=(Param("id"), Param("elid"), Param("clicked_button")),
    changes=WITH_SOK,
)
def basket(call: Call):
    """The cart; with `sok`, `clicked_button=free` or `pay` pays it, `delete` removes a line."""
    seller = call.seller
    if not call.sok:
        return cart_form(call, seller.carts.get(call.account.login))
    button = call["clicked_button"]
    raw = call["id"] or call["elid"]
    if raw is None:
        raise SellerError("missed", "id", "the parameter 'id' is required")
    target = whole_number(raw, "id")
    if button in ("free", "pay"):
        return paid(seller.pay_cart(call.account, target))
    if button == "delete":
        seller.remove_from_cart(call.account, target)
        return action()
    raise SellerError("value", "clicked_button", f"'{button}' is not free, pay or delete")


@declare("order")
def open_orders(call: Call):
    """The open cart, as the `order` list shows it."""
    return cart_form(call, call.seller.carts.get(call.account.login))


@declare(
    "cartorder.create.confirm",
    params=(Param("elid", required="sok"), Param("paymethod_id")),
    changes=WITH_SOK,
)
def cart_confirm(call: Call):
    """BILLmanager 6: pay the cart holding line item `elid`; only from the balance."""
    if not call.sok:
        return cart_form(call, call.seller.carts.get(call.account.login))
    if (call["paymethod_id"] or "0") != "0":
        raise SellerError("value", "paymethod_id", "only the balance (paymethod_id=0) is simulated")
    return paid(call.seller.pay_cart(call.account, whole_number(call["elid"], "elid")))
