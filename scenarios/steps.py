"""The step vocabulary, declared once: what each action's argument looks like (read by the
loader), what it does (run by the runner), whether it reaches the seller (where `crash:` may
kill the engine) and what `as:` names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reseller.model import CLOSE, RESUME, STATUS_NAMES, SUSPEND
from scenarios.checks import expect
from scenarios.harness import Harness
from simulator.world import parse_duration

NAME, MAP, NAME_OR_MAP, DURATION, EXPECT = "name", "map", "name or map", "duration", "expect"
CRASH_POINTS = ("before_send", "after_send", "after_read")
STEP_MODIFIERS = ("fails", "as", "note", "crash")
STATUS_WORDS = tuple(STATUS_NAMES.values())
OPERATION_STATES = ("running", "failed", "manual", "done")
# The error types a `fails:` or an operation's `error` may name: the seller's (BILLmanager's
# own), then the reseller engine's refusals.
SELLER_ERRORS = (
    "auth",
    "access",
    "value",
    "missed",
    "exists",
    "not_enough_money",
    "unknown_func",
    "internal",
)
RESELLER_ERRORS = (
    "insufficient_funds",
    "unknown",
    "period",
    "no_rate",
    "duplicate_connection",
    "not_failed",
    "unavailable",
    "not_linked",
    "manual_module",
)
ERROR_TYPES = SELLER_ERRORS + RESELLER_ERRORS


@dataclass(frozen=True)
class Action:
    """One action a step may name."""

    run: Callable  # (harness, argument) -> what `as:` names, or None
    shape: str = MAP
    required: frozenset = frozenset()
    optional: frozenset = frozenset()
    whole: frozenset = frozenset()  # keys that are whole numbers ("5" is taken as 5)
    maps: frozenset = frozenset()  # keys that are mappings
    reaches_seller: bool = False  # the engine calls the seller: `crash:` may kill it there
    changes_seller: bool = True  # ... and may change its state (else a crash hits any call)
    names: str | None = None  # what `as:` names: "service" (ours) or "remote" (the seller's)

    def keys(self) -> frozenset:
        return self.required | self.optional


def _set(*keys: str) -> frozenset:
    return frozenset(keys)


# -- what the actions do --------------------------------------------------------------------


def _order(h: Harness, arg: dict) -> int:
    return h.engine.order(
        str(arg["client"]),
        str(arg["tariff"]),
        int(arg["period"]),
        h.now,
        ostempl=arg.get("ostempl"),
        recipe=arg.get("recipe"),
        domain_name=arg.get("domain"),
        addons=arg.get("addons") or {},
        autoprolong=bool(arg.get("autoprolong", False)),
        ip=arg.get("ip"),
        licname=arg.get("licname"),
    )


def _status(kind: str):
    return lambda h, a: h.engine.change_status(h.item(a), kind, h.now)


def _seller(name: str):
    """A seller-side action by its staff, through the seller side."""

    def run(h: Harness, arg):
        body = dict(arg) if isinstance(arg, dict) else {"service": arg}
        if "service" in body:
            body["service"] = h.remote(body["service"])
        return h.side.act(name, body)

    return run


def _create_service(h: Harness, arg: dict) -> int:
    return _seller("create_service")(h, arg)["id"]


def _fault(h: Harness, arg: dict) -> None:
    if arg["kind"] == "drop_events" and arg["times"]:
        h.drop_events_used = True
    aim = {key: str(arg[key]) for key in ("func", "account") if arg.get(key) is not None}
    h.side.fault(arg["kind"], arg["times"], **aim)


# -- the table ------------------------------------------------------------------------------

SELLER_READS = dict(reaches_seller=True, changes_seller=False)
OPERATION = dict(reaches_seller=True)

STEPS: dict[str, Action] = {
    # the reseller's operator, its clients and its cron
    "connect": Action(
        lambda h, a: h.connect(str(a["module"]), a),
        required=_set("module", "account", "password"),
        optional=_set("url", "periods"),
        **SELLER_READS,
    ),
    "import": Action(
        lambda h, a: h.engine.import_tariff(str(a["module"]), int(a["tariff"]), h.now),
        required=_set("module", "tariff"),
        whole=_set("tariff"),
        **SELLER_READS,
    ),
    "sync": Action(lambda h, a: h.engine.sync_tariff(str(a), h.now), NAME, **SELLER_READS),
    "order": Action(
        _order,
        required=_set("client", "tariff", "period"),
        optional=_set("ostempl", "recipe", "domain", "addons", "autoprolong", "ip", "licname"),
        whole=_set("period"),
        maps=_set("addons"),
        names="service",
        **OPERATION,
    ),
    "prolong": Action(
        lambda h, a: h.engine.prolong(h.item(a["service"]), int(a["period"]), h.now),
        required=_set("service", "period"),
        whole=_set("period"),
        **OPERATION,
    ),
    "suspend": Action(_status(SUSPEND), NAME, **OPERATION),
    "resume": Action(_status(RESUME), NAME, **OPERATION),
    "delete": Action(_status(CLOSE), NAME, **OPERATION),
    "set_addons": Action(
        lambda h, a: h.engine.set_addons(h.item(a["service"]), a["addons"], h.now),
        required=_set("service", "addons"),
        maps=_set("addons"),
        **OPERATION,
    ),
    "restart": Action(lambda h, a: h.engine.restart(h.item(a), h.now), NAME, **OPERATION),
    "checkevent": Action(lambda h, a: h.engine.checkevent(str(a), h.now), NAME, **SELLER_READS),
    "import_services": Action(
        lambda h, a: h.engine.import_services(
            str(a["module"]), str(a["type"]), str(a.get("mask", "*")), h.now
        ),
        required=_set("module", "type"),
        optional=_set("mask"),
        **SELLER_READS,
    ),
    "assign": Action(
        lambda h, a: h.engine.assign(h.remote(a["remote"]), str(a["client"]), h.now),
        required=_set("remote", "client"),
        names="service",
        **SELLER_READS,
    ),
    "reconcile": Action(lambda h, a: h.engine.reconcile(str(a), h.now), NAME, **SELLER_READS),
    "topup": Action(
        lambda h, a: h.engine.topup(str(a["client"]), a["amount"], h.now),
        required=_set("client", "amount"),
    ),
    "set_price": Action(
        lambda h, a: h.engine.set_price(str(a["tariff"]), a.get("prices"), a.get("addons")),
        required=_set("tariff"),
        optional=_set("prices", "addons"),
        maps=_set("prices", "addons"),
    ),
    "change_tariff": Action(
        lambda h, a: h.engine.change_tariff(h.item(a["service"]), str(a["tariff"]), h.now),
        required=_set("service", "tariff"),
    ),
    "set_module": Action(
        lambda h, a: h.engine.set_module(h.item(a["service"]), str(a["module"])),
        required=_set("service", "module"),
    ),
    # the seller's staff and automation
    "seller.activate": Action(_seller("activate"), NAME),
    "seller.suspend": Action(_seller("suspend"), NAME),
    "seller.resume": Action(_seller("resume"), NAME),
    "seller.delete": Action(_seller("delete"), NAME),
    "seller.add_ip": Action(
        _seller("add_ip"), NAME_OR_MAP, required=_set("service"), optional=_set("ip")
    ),
    "seller.remove_ip": Action(
        _seller("remove_ip"), NAME_OR_MAP, required=_set("service"), optional=_set("ip")
    ),
    "seller.set_addon": Action(_seller("set_addon"), required=_set("service", "addon", "value")),
    "seller.set_param": Action(_seller("set_param"), required=_set("service", "name", "value")),
    "seller.topup": Action(_seller("topup"), required=_set("account", "amount")),
    "seller.edit_tariff": Action(
        _seller("edit_tariff"),
        required=_set("id"),
        optional=_set("intname", "name", "prices", "addons", "ostempl", "recipes", "setup"),
        whole=_set("id"),
    ),
    "seller.create_service": Action(
        _create_service,
        required=_set("account", "tariff"),
        optional=_set(
            "period", "ip", "name", "domain", "hostname", "licname", "username", "remoteid"
        ),
        whole=_set("tariff", "period"),
        names="remote",
    ),
    "seller.fault": Action(
        _fault,
        required=_set("kind", "times"),
        optional=_set("func", "account"),
        whole=_set("times"),
    ),
    # time and checks
    "wait": Action(lambda h, a: h.wait(parse_duration(a)), DURATION, **OPERATION),
    "expect": Action(expect, EXPECT),
}
