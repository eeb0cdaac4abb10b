"""Run a scenario: each step's action on the harness, its checks, and the named invariants.

A scenario with generated `let` values runs as a Hypothesis property; a failure is shrunk and
written out as a concrete scenario file that reproduces it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from reseller.errors import ResellerError
from reseller.model import OPEN
from scenarios import invariants
from scenarios.harness import EngineDied, Harness, SellerRefused, StepFailure
from scenarios.spec import Scenario, ScenarioError, Step, build, concrete, generated, load_document
from simulator.world import parse_duration

KIND_ALIASES = {"order": OPEN, "delete": "close", "set_addons": "setparam"}


@dataclass
class Result:
    """How a scenario file ran: passed or not, where it failed, and how long it took."""

    path: str
    name: str
    steps: int
    passed: bool
    seconds: float
    message: str = ""
    examples: int = 1
    written: str | None = None
    tags: list[str] = field(default_factory=list)


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
            raise StepFailure(f"{what}: {key} expected {want!r}, got {have!r}")


def compare_whole(what: str, key: str, expected: dict, actual: dict) -> None:
    if set(map(str, expected)) != set(map(str, actual)) or not same(expected, actual):
        raise StepFailure(f"{what}: {key} expected {expected!r}, got {actual!r}")


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
    service = h.control.get(f"/services/{h.remote(alias)}")
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
        except StepFailure as failure:
            raise StepFailure(f"{failure} ({view['message'] or 'no error message'})") from None
    elif "tariff" in arg:
        view = tariff_view(h, arg["tariff"])
        for key, want in _rest(arg, "tariff").items():
            if key == "addon_prices":
                compare(f"tariff {arg['tariff']}", {key: want}, view)
            elif key in ("ostempl", "recipes"):
                if not same(want, view[key]):
                    raise StepFailure(
                        f"tariff {arg['tariff']}: {key} expected {want!r}, got {view[key]!r}"
                    )
            else:
                compare_whole(f"tariff {arg['tariff']}", key, want, view[key])
    elif "seller_balance" in arg:
        balance = h.control.get(f"/accounts/{arg['seller_balance']}")["balance"]
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
        counts["seller_services"] = len(h.control.get("/services")["services"])
    compare("counts", {k: arg[k] for k in counts}, counts)


def _rest(arg: dict, subject: str) -> dict:
    return {k: v for k, v in arg.items() if k != subject}


# -- actions --------------------------------------------------------------------------------


def seller_action(name: str):
    def run(h: Harness, arg) -> None:
        body = dict(arg) if isinstance(arg, dict) else {"service": arg}
        if "service" in body:
            body["service"] = h.remote(body["service"])
        h.control.post(f"/actions/{name}", body)

    return run


def fault(h: Harness, arg: dict) -> None:
    if arg["kind"] == "drop_events" and arg["times"]:
        h.drop_events_used = True
    aim = {key: str(arg[key]) for key in ("func", "account") if arg.get(key) is not None}
    h.control.post("/faults", {"kind": arg["kind"], "times": arg["times"], **aim})


def create_service(h: Harness, arg: dict, step: Step) -> None:
    reply = h.control.post("/actions/create_service", arg)
    if step.name:
        h.remotes[step.name] = reply["result"]["id"]


def order(h: Harness, arg: dict, step: Step) -> None:
    item = h.engine.order(
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
    if step.name:
        h.services[step.name] = item


def assign(h: Harness, arg: dict, step: Step) -> None:
    remote = h.remote(arg["remote"])
    item = h.engine.assign(remote, str(arg["client"]), h.now)
    if step.name:
        h.services[step.name] = item


ACTIONS = {
    "connect": lambda h, a: h.connect(str(a["module"]), a),
    "import": lambda h, a: h.engine.import_tariff(str(a["module"]), int(a["tariff"]), h.now),
    "sync": lambda h, a: h.engine.sync_tariff(str(a), h.now),
    "prolong": lambda h, a: h.engine.prolong(h.item(a["service"]), int(a["period"]), h.now),
    "suspend": lambda h, a: h.engine.change_status(h.item(a), "suspend", h.now),
    "resume": lambda h, a: h.engine.change_status(h.item(a), "resume", h.now),
    "delete": lambda h, a: h.engine.change_status(h.item(a), "close", h.now),
    "set_addons": lambda h, a: h.engine.set_addons(h.item(a["service"]), a["addons"], h.now),
    "restart": lambda h, a: h.engine.restart(h.item(a), h.now),
    "checkevent": lambda h, a: h.engine.checkevent(str(a), h.now),
    "import_services": lambda h, a: h.engine.import_services(
        str(a["module"]), str(a["type"]), str(a.get("mask", "*")), h.now
    ),
    "reconcile": lambda h, a: h.engine.reconcile(str(a), h.now),
    "topup": lambda h, a: h.engine.topup(str(a["client"]), a["amount"], h.now),
    "set_price": lambda h, a: h.engine.set_price(
        str(a["tariff"]), a.get("prices"), a.get("addons")
    ),
    "change_tariff": lambda h, a: h.engine.change_tariff(
        h.item(a["service"]), str(a["tariff"]), h.now
    ),
    "set_module": lambda h, a: h.engine.set_module(h.item(a["service"]), str(a["module"])),
    "seller.activate": seller_action("activate"),
    "seller.suspend": seller_action("suspend"),
    "seller.resume": seller_action("resume"),
    "seller.delete": seller_action("delete"),
    "seller.add_ip": seller_action("add_ip"),
    "seller.remove_ip": seller_action("remove_ip"),
    "seller.set_addon": seller_action("set_addon"),
    "seller.set_param": seller_action("set_param"),
    "seller.topup": seller_action("topup"),
    "seller.edit_tariff": seller_action("edit_tariff"),
    "seller.fault": fault,
    "wait": lambda h, a: h.wait(parse_duration(a)),
    "expect": expect,
}
NAMING_ACTIONS = {"order": order, "assign": assign, "seller.create_service": create_service}


def state_digest(h: Harness) -> tuple:
    """Everything a refused step must leave as it was: the engine's tables (its own
    bookkeeping aside: claims, the poll's mark) and the seller."""
    seller = h.seller
    return (
        h.store.digest(),
        tuple((a.login, a.balance) for a in seller.accounts.values()),
        tuple(
            (s.id, s.status, s.expires, tuple(s.ips), tuple(s.addons.items()))
            for s in seller.services.values()
        ),
        len(seller.ledger),
    )


# Steps that change nothing at the seller: their crash points hit their first call.
READ_ONLY_STEPS = {
    "connect",
    "import",
    "sync",
    "checkevent",
    "import_services",
    "assign",
    "reconcile",
}


def run_step(h: Harness, step: Step) -> None:
    action = NAMING_ACTIONS.get(step.action)
    run = (
        (lambda: action(h, step.arg, step))
        if action
        else (lambda: ACTIONS[step.action](h, step.arg))
    )
    if step.crash is not None:
        run_crashing(h, step, run)
        return
    if step.fails is None:
        try:
            run()
        except ResellerError as error:
            raise StepFailure(f"refused with {error.type}: {error.message}") from None
        return
    before = state_digest(h)
    try:
        run()
    except (ResellerError, SellerRefused) as error:
        if error.type != step.fails:
            raise StepFailure(
                f"expected to fail with {step.fails}, failed with {error.type}: {error.message}"
            ) from None
        if state_digest(h) != before:
            raise StepFailure(f"refused with {error.type} as expected, but changed state") from None
        return
    raise StepFailure(f"expected to fail with {step.fails}, but it succeeded")


def run_crashing(h: Harness, step: Step, run) -> None:
    """Run a step whose engine dies at its crash point; a new engine takes over the database
    (and carries on a `wait` to its end). Never fails for the crash itself."""
    h.watch.arm(step.crash, any_call=step.action in READ_ONLY_STEPS)
    target = h.now + parse_duration(step.arg) if step.action == "wait" else None
    known = {item.id for item in h.store.items()}
    try:
        run()
    except EngineDied:
        h.watch.disarm()
        h.restart_engine()
        created = [item.id for item in h.store.items() if item.id not in known]
        if step.name and created and step.action in ("order", "assign"):
            h.services[step.name] = created[-1]  # what it had committed before it died
        if target is not None:
            h.advance(target)
        return
    except ResellerError:
        pass  # refused before it reached the point: the engine did not die
    finally:
        reached = h.watch.disarm()
    if not reached:
        what = "call" if step.action in READ_ONLY_STEPS else "call that changes the seller's state"
        if step.crash == "after_read":
            what = "read of the event feed or of services"
        raise StepFailure(f"crash point {step.crash} never reached: the step made no {what}")


def check_invariants(h: Harness, names: list[str], final: bool) -> None:
    for name in names:
        if name in invariants.FINAL_ONLY and not final:
            continue
        problems = invariants.CHECKS[name](h)
        if problems:
            raise StepFailure(f"invariant {name} broken: " + "; ".join(problems[:5]))


def execute(scenario: Scenario, http: bool = False) -> None:
    """Run a concrete scenario once; raise `StepFailure` naming the step that failed."""
    folder = tempfile.mkdtemp(prefix="scenario-") if scenario.crashes else None
    db_path = str(Path(folder) / "reseller.db") if folder else None
    try:
        h = Harness(scenario.seller, scenario.reseller, scenario.start, http=http, db_path=db_path)
    except ResellerError as error:
        raise StepFailure(f"{scenario.path}: setup: {error.type}: {error.message}") from None
    try:
        for step in scenario.steps:
            try:
                run_step(h, step)
                check_invariants(h, scenario.invariants, final=False)
            except StepFailure as failure:
                calls = "\n    ".join(h.recent_calls())
                raise StepFailure(
                    f"{scenario.path}: {step.where()}: {failure}\n  last calls "
                    f"between the two sides:\n    {calls}"
                ) from None
        try:
            check_invariants(h, scenario.invariants, final=True)
        except StepFailure as failure:
            raise StepFailure(f"{scenario.path}: at the end: {failure}") from None
    finally:
        h.close()
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def strategy(spec):
    if not generated(spec):
        return st.just(spec)
    if "any" in spec:
        return st.sampled_from(spec["any"])
    low, high = spec["between"]
    if isinstance(low, int) and isinstance(high, int):
        return st.integers(low, high)
    return st.decimals(Decimal(str(low)), Decimal(str(high)), places=2)


def is_property(document: dict) -> bool:
    return any(generated(spec) for spec in (document.get("let") or {}).values())


def run_file(
    path: str,
    *,
    examples: int = 100,
    seed: int | None = None,
    http: bool = False,
    failures_dir: str = "failures",
) -> Result:
    """Run one scenario file, as a property if it has generated values."""
    started = time.perf_counter()
    try:
        document = load_document(path)
        scenario = build(document, path)
    except ScenarioError as error:
        return Result(path, str(path), 0, False, time.perf_counter() - started, str(error))
    result = Result(path, scenario.name, len(scenario.steps), True, 0.0, tags=scenario.tags)
    try:
        if is_property(document):
            result.examples, result.written = run_property(
                document, path, examples, seed, http, failures_dir
            )
        else:
            execute(scenario, http)
    except (StepFailure, ScenarioError) as failure:
        result.passed, result.message = False, str(failure)
    except PropertyFailure as failure:
        result.passed, result.message, result.written = False, str(failure), failure.written
    result.seconds = time.perf_counter() - started
    return result


class PropertyFailure(AssertionError):
    def __init__(self, message: str, written: str | None):
        super().__init__(message)
        self.written = written


def run_property(
    document: dict, path: str, examples: int, seed: int | None, http: bool, failures_dir: str
) -> tuple[int, None]:
    let = document.get("let") or {}
    names = sorted(let)
    count = {"examples": 0}
    failing: dict = {}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(st.fixed_dictionaries({name: strategy(let[name]) for name in names}))
    def prop(values):
        count["examples"] += 1
        scenario = build(document, path, values)
        try:
            execute(scenario, http)
        except StepFailure:
            failing.clear()
            failing.update(values=values, scenario=scenario)
            raise

    if seed is not None:
        prop = hypothesis_seed(seed)(prop)
    try:
        prop()
    except StepFailure as failure:
        written = write_failure(failing["scenario"], failures_dir) if failing else None
        shown = ", ".join(f"{k}={v}" for k, v in failing.get("values", {}).items())
        raise PropertyFailure(
            f"smallest failing example: {shown}\n{failure}\nreproduce with: "
            f"python run.py scenarios {written}",
            written,
        ) from None
    return count["examples"], None


class ScenarioDumper(yaml.SafeDumper):
    """Writes amounts (Decimal) as plain YAML numbers, exactly as drawn."""


ScenarioDumper.add_representer(
    Decimal, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:float", str(value))
)


def write_failure(scenario: Scenario, folder: str) -> str:
    """Write the failing example as a concrete scenario file and return its path."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    document = concrete(scenario)
    document["name"] = f"Regression: {scenario.name}"
    stem = Path(scenario.path).stem
    suffix = "-".join(f"{k}{v}" for k, v in sorted(scenario.values.items()))
    target = Path(folder) / f"{stem}-{suffix}.yaml"
    target.write_text(
        yaml.dump(document, Dumper=ScenarioDumper, sort_keys=False, allow_unicode=True)
    )
    return str(target)
