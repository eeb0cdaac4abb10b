"""What `expect` steps check: views of both sides' state, and how values compare.

Numbers compare as decimals, dates by day, booleans as on/off, lists as sets; a map under a
service checks only the keys it names.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from reseller.model import CLOSE, OPEN, SETPARAM
from scenarios.harness import Harness, StepFailure

KIND_ALIASES = {"order": OPEN, "delete": CLOSE, "set_addons": SETPARAM}


class Mismatch(StepFailure):
    """A check that found another value than expected: what it checked, expected and actual."""

    def __init__(self, subject: str, expected, actual, note: str = ""):
        text = f"{subject} expected {expected!r}, got {actual!r}"
        super().__init__(f"{text} ({note})" if note else text)
        self.subject, self.expected, self.actual = subject, expected, actual


# -- comparisons ----------------------------------------------------------------------------


def same(expected, actual) -> bool:
    """Numbers compare as decimals, dates by day, booleans as on/off, lists as sets."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list | set) and sorted(map(str, expected)) == sorted(
            map(str, actual)
        )
    if isinstance(expected, bool):
        return str(actual).lower() in (("on", "true", "1") if expected else ("off", "false", "0"))
    try:
        return Decimal(str(expected)) == Decimal(str(actual))
    except (InvalidOperation, ValueError):
        return (
            str(expected)[:10] == str(actual)[:10]
            if _looks_like_date(expected)
            else str(expected) == str(actual)
        )


def _looks_like_date(value) -> bool:
    return hasattr(value, "year") or (
        isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-"
    )


def compare(what: str, expected: dict, actual: dict) -> None:
    """Each expected key against the actual view; a map checks only the keys it names."""
    for key, want in expected.items():
        have = actual.get(key)
        if not same(want, have):
            raise Mismatch(f"{what}: {key}", want, have)


def compare_whole(what: str, key: str, expected: dict, actual: dict) -> None:
    if set(map(str, expected)) != set(map(str, actual)) or not same(expected, actual):
        raise Mismatch(f"{what}: {key}", expected, actual)


# -- the views checks compare with ----------------------------------------------------------


def service_view(h: Harness, alias) -> dict:
    item = h.store.item(h.item(alias))
    return {
        "status": item.status_name,
        "expires": item.expiredate,
        "period": item.period,
        "tariff": h.store.tariff_by_id(item.pricelist).intname,
        "addons": item.addons,
        "params": item.params,
        "ips": len(item.ips),
    }


def seller_service_view(h: Harness, alias) -> dict:
    service = h.side.service(h.remote(alias))
    return {
        **service,
        "tariff": service["tariff_intname"],
        "ips": len(service["ips"]),
        "expires": service["expires"] or None,  # a lifetime service never expires, as here
    }


def operation_view(h: Harness, alias) -> dict:
    operation = h.store.latest_operation(h.item(alias))
    if operation is None:
        raise StepFailure(f"service {alias!r} has no operation")
    return {
        "state": operation.state,
        "error": operation.error_type,
        "kind": operation.kind,
        "message": operation.error_msg,
    }


def tariff_view(h: Harness, intname: str) -> dict:
    plan = h.engine.tariff(intname)
    specs = plan.addons
    return {
        "prices": {p: str(v) for p, v in plan.prices.items()},
        "addons": {n: "enabled" if s.enabled else "disabled" for n, s in specs.items()},
        "enumeration": {
            n: list(s.items or {}) for n, s in specs.items() if s.type == "enumeration"
        },
        "ostempl": plan.ostempl,
        "recipes": plan.recipes,
        "addon_prices": {
            n: (
                {i: str(p) for i, p in s.items.items()} if s.type == "enumeration" else str(s.price)
            )
            for n, s in specs.items()
        },
    }


def expect(h: Harness, arg: dict) -> None:
    if "service" in arg:
        compare(f"service {arg['service']}", _rest(arg, "service"), service_view(h, arg["service"]))
    elif "seller_service" in arg:
        compare(
            f"seller service {arg['seller_service']}",
            _rest(arg, "seller_service"),
            seller_service_view(h, arg["seller_service"]),
        )
    elif "operation" in arg:
        want = _rest(arg, "operation")
        if "kind" in want:
            want["kind"] = KIND_ALIASES.get(want["kind"], want["kind"])
        view = operation_view(h, arg["operation"])
        try:
            compare(f"operation of {arg['operation']}", want, view)
        except Mismatch as failure:
            note = view["message"] or "no error message"
            raise Mismatch(failure.subject, failure.expected, failure.actual, note) from None
    elif "tariff" in arg:
        view = tariff_view(h, arg["tariff"])
        for key, want in _rest(arg, "tariff").items():
            if key == "addon_prices":
                compare(f"tariff {arg['tariff']}", {key: want}, view)
            elif key in ("ostempl", "recipes"):
                if not same(want, view[key]):
                    raise Mismatch(f"tariff {arg['tariff']}: {key}", want, view[key])
            else:
                compare_whole(f"tariff {arg['tariff']}", key, want, view[key])
    elif "seller_balance" in arg:
        balance = str(h.side.balance(str(arg["seller_balance"])))
        compare(
            f"seller balance of {arg['seller_balance']}",
            {"equals": arg["equals"]},
            {"equals": balance},
        )
    elif "client_balance" in arg:
        balance = str(h.engine.client(str(arg["client_balance"])).balance)
        compare(
            f"client balance of {arg['client_balance']}",
            {"equals": arg["equals"]},
            {"equals": balance},
        )
    counts = {}
    if "services" in arg:
        counts["services"] = len(h.store.items())
    if "seller_services" in arg:
        counts["seller_services"] = len(h.side.services())
    compare("counts", {k: arg[k] for k in counts}, counts)


def _rest(arg: dict, subject: str) -> dict:
    return {k: v for k, v in arg.items() if k != subject}
