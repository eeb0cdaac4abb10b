"""What only an administrator may call: the accounts, the users, acting as another user."""

from __future__ import annotations

from simulator.formats import action, el, fields
from simulator.functions.common import listing
from simulator.functions.table import ADMIN, Call, Param, declare


@declare("account", access=ADMIN)
def accounts(call: Call):
    """Every account with its level and balance."""
    seller = call.seller
    return listing(
        call,
        [
            fields(
                id=seller.account_id(a.login),
                name=a.login,
                level=a.level,
                balance=a.balance,
            )
            for a in seller.accounts.values()
        ],
    )


@declare("user", access=ADMIN)
def users(call: Call):
    """Every account's user, with `account_id` and `email`."""
    seller = call.seller
    return listing(
        call,
        [
            fields(
                id=seller.account_id(a.login),
                account_id=seller.account_id(a.login),
                name=a.login,
                email=a.email,
                level=a.level,
            )
            for a in seller.accounts.values()
        ],
    )


def act_as(call: Call):
    """A session of the account `elid` names (its id or login), for the administrator."""
    target = call.seller.account_by_id(call["elid"])
    session = call.seller.open_session(target)
    return action(el("auth", session, {"id": session, "level": target.level}))


for _name in ("su", "account.su"):
    declare(_name, access=ADMIN, params=(Param("elid", required=True),))(act_as)
