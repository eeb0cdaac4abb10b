"""The function table: each BILLmanager function declared once, as moto declares its responses.

A declaration names the function, who may call it, the parameters it reads (checked before it
runs: a missing required one is `missed`, a malformed one `value`) and whether a successful
call changes the seller's state, which `lose_reply` counts. Its builder takes the `Call` and
returns the `Document` the reply renders. `{type}` in a name declares it once per product type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from simulator.formats import Document
from simulator.model import Account, Seller, SellerError

LOGIN, PUBLIC, CLIENT, ADMIN = "login", "public", "client", "admin"
ALWAYS, WITH_SOK, NEVER = "always", "sok", "never"
WHOLE = re.compile(r"-?[0-9]+")
DEFAULT_PAGE = 100  # rows per page when a client sends `p_num` without `p_cnt`


@dataclass(frozen=True)
class Param:
    """A parameter a function reads: `text`, `int` or `select` (where `null` means none).

    `required` is True, or the name of another parameter whose presence makes it required.
    """

    name: str
    kind: str = "text"
    required: bool | str = False

    def read(self, params: dict):
        raw = params.get(self.name)
        text = None if raw is None else str(raw).strip()
        if self.kind == "select" and text == "null":
            text = None  # BILLmanager's "none" in a select, as `autoprolong=null` sends it
        if not text:
            if self.required is True or (self.required and params.get(self.required)):
                raise SellerError("missed", self.name, f"the parameter '{self.name}' is required")
            return None
        if self.kind == "int":
            return whole_number(text, self.name)
        return text


def whole_number(text: str, name: str) -> int:
    """`text` as a whole number (ASCII digits only); SellerError `value` naming `name` if not."""
    if not WHOLE.fullmatch(text):
        raise SellerError("value", name, f"'{text[:40]}' is not a whole number")
    if len(text) > 18:  # no id, period or count the seller keeps is larger
        raise SellerError("value", name, f"'{text[:40]}' is too large")
    return int(text)


@dataclass(frozen=True)
class Function:
    """One declared function: its name, builder, access level, parameters and effect."""

    name: str
    build: Callable[[Call], Document]
    access: str
    params: tuple[Param, ...]
    changes: str
    type: str | None = None

    def changes_state(self, params: dict) -> bool:
        """Whether a successful call with these parameters changed the seller's state."""
        return self.changes == ALWAYS or (self.changes == WITH_SOK and bool(params.get("sok")))


class Call:
    """One call as a builder sees it: the seller, the caller, the declared parameters."""

    def __init__(self, seller: Seller, account: Account | None, params: dict, fn: Function):
        self.seller = seller
        self.account = account
        self.params = params
        self.fn = fn
        self.type = fn.type
        self.session: str | None = None  # a session the call opened, for the cookie
        self.args = {param.name: param.read(params) for param in fn.params}

    def __getitem__(self, name: str):
        return self.args[name]

    @property
    def sok(self) -> bool:
        return bool(self.params.get("sok"))

    def raw(self, name: str) -> str | None:
        """An undeclared parameter as sent, stripped; None if absent or empty."""
        value = self.params.get(name)
        text = None if value is None else str(value).strip()
        return text or None

    def elids(self) -> list[str]:
        """`elid`, which may name several ids separated by `, `; each once."""
        raw = self.args.get("elid") or ""
        return list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))

    def addons(self) -> dict[int, str]:
        """Every `addon_<id>=value` sent, by add-on id."""
        values = {}
        for key, raw in self.params.items():
            if key.startswith("addon_"):
                digits = key[6:]
                if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
                    raise SellerError("value", key, f"'{key}' does not name an add-on id")
                values[int(digits)] = raw
        return values

    def page(self) -> tuple[int, int] | None:
        """The page asked for (first row, rows), or None: a list is paged only on request."""
        sent = {name: self.raw(name) for name in ("p_cnt", "p_num")}
        if sent == {"p_cnt": None, "p_num": None}:
            return None
        count = whole_number(sent["p_cnt"], "p_cnt") if sent["p_cnt"] else DEFAULT_PAGE
        number = whole_number(sent["p_num"], "p_num") if sent["p_num"] else 1
        for name, value in (("p_cnt", count), ("p_num", number)):
            if value < 1:
                raise SellerError("value", name, f"{name} must be 1 or more, not {value}")
        return (number - 1) * count, count


REGISTRY: dict[str, Function] = {}


def declare(
    name: str,
    *,
    access: str = CLIENT,
    params: tuple[Param, ...] = (),
    changes: str = NEVER,
    types: tuple[str, ...] = (),
):
    """Declare a function (once per product type in `types` if `name` has `{type}`)."""

    def register(build: Callable[[Call], Document]):
        names = [(name.format(type=t), t) for t in types] if types else [(name, None)]
        for func, type in names:
            if func in REGISTRY:
                raise ValueError(f"the function {func} is declared twice")
            REGISTRY[func] = Function(func, build, access, tuple(params), changes, type)
        return build

    return register


def resolve(func: str) -> Function:
    """The declared function `func`; SellerError `unknown_func` naming it if there is none."""
    fn = REGISTRY.get(func)
    if fn is None:
        raise SellerError("unknown_func", func, f"unknown function '{func}'")
    return fn
