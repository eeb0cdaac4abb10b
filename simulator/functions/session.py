"""Logging in and the caller's own account: auth, key login, whoami, keepalive, settings."""

from __future__ import annotations

from simulator.formats import action, data, el, fields, form, named_list
from simulator.functions.table import (
    ALWAYS,
    CLIENT,
    LOGIN,
    NEVER,
    WITH_SOK,
    Call,
    Param,
    declare,
)
from simulator.model import SellerError


@declare(
    "auth",
    access=LOGIN,
    params=(Param("username"), Param("password"), Param("key"), Param("authinfo")),
)
def auth(call: Call):
    """A session from `username`+`password`, `authinfo`, or a one-time `key`."""
    seller = call.seller
    if call["authinfo"]:
        user, _, password = call["authinfo"].partition(":")
        account = seller.authenticate(user, password)
    elif call["key"]:
        if not call["username"]:
            raise SellerError("missed", "username", "the parameter 'username' is required")
        account = seller.redeem_login_key(call["username"], call["key"])
    else:
        for name in ("username", "password"):
            if not call[name]:
                raise SellerError("missed", name, f"the parameter '{name}' is required")
        account = seller.authenticate(call["username"], call["password"])
    call.session = seller.open_session(account)
    call.account = account
    return form(el("auth", call.session, {"id": call.session, "level": account.level}))


@declare("whoami", access=CLIENT)
def whoami(call: Call):
    account = call.account
    return data(
        el(
            "user",
            account.login,
            {
                "name": account.login,
                "level": account.level,
                "balance": account.balance,
                "currency": call.seller.currency,
            },
        )
    )


@declare("keepalive", access=CLIENT)
def keepalive(call: Call):
    """Keeps the session alive: the login itself touched it."""
    return action()


@declare(
    "session.newkey",
    access=CLIENT,
    params=(Param("username", required=True), Param("key", required=True)),
    changes=ALWAYS,
)
def session_newkey(call: Call):
    """A one-time key for `func=auth&username=...&key=...` (single sign-on)."""
    call.seller.issue_login_key(call.account, call["username"], call["key"])
    return action()


@declare("usrparam", access=CLIENT, params=(Param("email"),), changes=WITH_SOK)
def usrparam(call: Call):
    """The caller's settings; with `sok` it saves `email`."""
    account = call.account
    if call.sok:
        if call["email"] is not None:
            if "@" not in call["email"]:
                raise SellerError("value", "email", f"'{call['email']}' is not an email address")
            account.email = call["email"]
        return action()
    return form(*fields(name=account.login, email=account.email, lang="en"))


@declare("account.discountinfo", access=CLIENT, changes=NEVER)
def discountinfo(call: Call):
    """The caller's discounts: none, the simulator has no promotions."""
    return form(named_list("promotion", []))
