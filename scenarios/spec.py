"""Scenario files: load the YAML, fill in `let` values, and validate every step before a run.

A bad file raises `ScenarioError` naming the file, the step, the key and what was expected.
"""

from __future__ import annotations

import copy
import math
import random
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from scenarios.steps import (
    CRASH_POINTS,
    DURATION,
    ERROR_TYPES,
    EXPECT,
    NAME,
    NAME_OR_MAP,
    OPERATION_STATES,
    STATUS_WORDS,
    STEP_MODIFIERS,
    STEPS,
)
from simulator.faults import KINDS as FAULT_KINDS
from simulator.faults import Faults
from simulator.world import WorldError, parse_duration, parse_time, seller_from_world

DEFAULT_START = "2026-01-01T00:00:00Z"
TOP_KEYS = {"name", "tags", "start", "include", "seller", "reseller", "let", "steps", "invariants"}
INCLUDED_KEYS = ("start", "seller", "reseller", "let")
INVARIANTS = (
    "converged",
    "money_conserved",
    "one_remote_per_service",
    "events_applied_once",
    "balances_within_limits",
    "statuses_move_legally",
    "tariff_sync_converges",
    "operations_settle",
)
VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
SCALAR = (str, int)


class ScenarioError(ValueError):
    """A scenario file that cannot run: where (file, step, key) and what was expected."""

    def __init__(self, file: str, where: str, problem: str):
        super().__init__(f"{file}: {where}: {problem}" if where else f"{file}: {problem}")
        self.file, self.where, self.problem = file, where, problem


@dataclass
class Step:
    """One step: its number (from 1), action, argument, optional `fails`, `as`, `note` and
    `crash`."""

    number: int
    action: str
    arg: object
    fails: str | None = None
    name: str | None = None
    note: str = ""
    crash: str | None = None

    def where(self) -> str:
        return f"step {self.number} ({self.action})"


@dataclass
class Scenario:
    """A validated scenario with every `let` value fixed."""

    path: str
    name: str
    tags: list[str]
    start: datetime
    seller: dict
    reseller: dict
    steps: list[Step]
    invariants: list[str]
    values: dict = field(default_factory=dict)
    document: dict = field(default_factory=dict)

    @property
    def crashes(self) -> bool:
        """Whether a step kills the engine, which then needs its database in a file."""
        return any(step.crash for step in self.steps)


EXPECT_SUBJECTS = {
    "service": {"status", "expires", "period", "tariff", "addons", "params", "ips"},
    "seller_service": {"status", "expires", "period", "tariff", "addons", "params", "ips"},
    "operation": {"state", "error", "kind"},
    "tariff": {"prices", "addons", "enumeration", "ostempl", "addon_prices", "recipes"},
    "seller_balance": {"equals"},
    "client_balance": {"equals"},
}
COUNTS = {"services", "seller_services"}
SERVICE_ARGS = {"service", "remote"}


def substitute(node, values: dict, where: str, file: str):
    """`node` with every `$name` replaced: a whole-string `$name` keeps the value's type."""
    if isinstance(node, dict):
        return {k: substitute(v, values, f"{where}.{k}", file) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v, values, f"{where}[{i}]", file) for i, v in enumerate(node)]
    if isinstance(node, str) and "$" in node:
        whole = VARIABLE.fullmatch(node)
        for name in VARIABLE.findall(node):
            if name not in values:
                raise ScenarioError(file, where, f"${name} is not defined under let")
        if whole:
            return values[whole.group(1)]
        return VARIABLE.sub(lambda m: str(values[m.group(1)]), node)
    return node


def check_finite(node, where: str, file: str) -> None:
    """No number in the file is infinite or not a number (YAML's `.inf`, `.nan`)."""
    if isinstance(node, dict):
        for key, value in node.items():
            check_finite(value, f"{where}.{key}" if where else str(key), file)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            check_finite(value, f"{where}[{index}]", file)
    elif isinstance(node, float) and not math.isfinite(node):
        raise ScenarioError(file, where, f"expected a finite number, got {node!r}")


def generated(spec) -> bool:
    return isinstance(spec, dict) and set(spec) in ({"any"}, {"between"})


def check_let(let, file: str) -> None:
    if not isinstance(let, dict):
        raise ScenarioError(file, "let", f"expected a mapping of names, got {let!r}")
    for name, spec in let.items():
        if isinstance(spec, dict) and not generated(spec):
            raise ScenarioError(
                file,
                f"let.{name}",
                f"expected a value, {{any: [...]}} or {{between: [low, high]}}, got {spec!r}",
            )
        if (
            isinstance(spec, dict)
            and "any" in spec
            and (not isinstance(spec["any"], list) or not spec["any"])
        ):
            raise ScenarioError(file, f"let.{name}.any", "expected a non-empty list")
        if isinstance(spec, dict) and "between" in spec:
            bounds = spec["between"]
            if (
                not isinstance(bounds, list)
                or len(bounds) != 2
                or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
                or bounds[0] > bounds[1]
            ):
                raise ScenarioError(
                    file,
                    f"let.{name}.between",
                    f"expected [low, high] numbers with low <= high, got {bounds!r}",
                )


def sample_values(let: dict) -> dict:
    """One valid value per `let` name (the first choice, the low bound), for validation."""
    return {
        name: (spec["any"][0] if "any" in spec else spec["between"][0]) if generated(spec) else spec
        for name, spec in let.items()
    }


def is_fragment(path: str | Path) -> bool:
    """Whether a YAML file is a fragment for `include`, not a scenario: a mapping with neither
    `name` nor `steps`. A file that cannot be read or parsed is not one (the run reports it)."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(document, dict) and not {"name", "steps"} & set(document)


def load_document(path: str | Path) -> dict:
    """A scenario file's document, with what it `include`s merged under it."""
    return _with_includes(_read_document(path), str(path), [])


def _with_includes(document: dict, file: str, chain: list[str]) -> dict:
    """`document` over the sections its `include` names (which may include in turn)."""
    if "include" not in document:
        return document
    name = document["include"]
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError(file, "include", f"expected the path of a YAML file, got {name!r}")
    target = (Path(file).parent / name).resolve()
    here = str(Path(file).resolve())
    if str(target) in (*chain, here):
        cycle = " -> ".join([*chain, here, str(target)])
        raise ScenarioError(file, "include", f"includes itself: {cycle}")
    if not target.exists():
        raise ScenarioError(file, "include", f"{name}: no such file ({target})")
    included = _with_includes(_read_document(target), str(target), [*chain, here])
    base = {key: included[key] for key in INCLUDED_KEYS if key in included}
    return merge(base, {k: v for k, v in document.items() if k != "include"})


def merge(base, over):
    """`over` on top of `base`: maps merge key by key at every depth; anything else is
    replaced whole."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return copy.deepcopy(over)
    merged = copy.deepcopy(base)
    for key, value in over.items():
        merged[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
    return merged


def _read_document(path: str | Path) -> dict:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(file, "", f"cannot read the file: {error.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise ScenarioError(
            file, where, f"not valid YAML: {getattr(error, 'problem', error)}"
        ) from None
    if not isinstance(document, dict):
        raise ScenarioError(file, "", "expected a mapping with name and steps at the top")
    return document


def build(document: dict, file: str, values: dict | None = None) -> Scenario:
    """Validate a scenario document, with `values` for its `let` names (samples if None)."""
    extra = sorted(set(map(str, document)) - TOP_KEYS)
    if extra:
        raise ScenarioError(file, extra[0], f"unknown key; expected one of {sorted(TOP_KEYS)}")
    for key in ("name", "steps"):
        if key not in document:
            raise ScenarioError(file, key, "missing (every scenario needs name and steps)")
    let = document.get("let") or {}
    check_let(let, file)
    fixed = {n: v for n, v in sample_values(let).items()}
    fixed.update(values or {})
    doc = substitute({k: v for k, v in document.items() if k != "let"}, fixed, "", file)
    check_finite(doc, "", file)
    if not isinstance(doc["name"], str):
        raise ScenarioError(file, "name", f"expected one line of text, got {doc['name']!r}")
    tags = doc.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ScenarioError(file, "tags", f"expected a list of words, got {tags!r}")
    try:
        start = parse_time(doc.get("start", DEFAULT_START), "start")
        seller_from_world(doc.get("seller") or {}, start)
    except WorldError as error:
        raise ScenarioError(file, error.path, error.problem) from None
    reseller = check_reseller(doc.get("reseller") or {}, file)
    invariants = doc.get("invariants") or []
    if not isinstance(invariants, list):
        raise ScenarioError(file, "invariants", f"expected a list, got {invariants!r}")
    for name in invariants:
        if name not in INVARIANTS:
            raise ScenarioError(
                file,
                "invariants",
                f"unknown invariant {name!r}; expected one of {list(INVARIANTS)}",
            )
    if not isinstance(doc["steps"], list) or not doc["steps"]:
        raise ScenarioError(file, "steps", "expected a non-empty list of steps")
    steps = [parse_step(i + 1, raw, file) for i, raw in enumerate(doc["steps"])]
    check_names(steps, doc.get("seller") or {}, reseller, file)
    return Scenario(
        file,
        doc["name"],
        tags,
        start,
        doc.get("seller") or {},
        reseller,
        steps,
        invariants,
        fixed,
        document,
    )


CURRENCY = re.compile(r"[A-Z]{3}")


def check_currency(code, where: str, file: str) -> None:
    """An ISO 4217 code: three capitals (`EUR`)."""
    if not isinstance(code, str) or not CURRENCY.fullmatch(code):
        raise ScenarioError(file, where, f"expected a currency code like EUR, got {code!r}")


def check_reseller(section, file: str) -> dict:
    if not isinstance(section, dict):
        raise ScenarioError(file, "reseller", f"expected a mapping, got {section!r}")
    if section.get("currency") is not None:
        check_currency(section["currency"], "reseller.currency", file)
    for code in (section.get("rates") or {}) if isinstance(section.get("rates"), dict) else {}:
        check_currency(code, f"reseller.rates.{code}", file)
    allowed = {"currency", "rates", "order_periods", "clients", "modules"}
    extra = sorted(set(section) - allowed)
    if extra:
        raise ScenarioError(
            file, f"reseller.{extra[0]}", f"unknown key; expected one of {sorted(allowed)}"
        )
    for key in ("rates", "clients", "modules"):
        if not isinstance(section.get(key) or {}, dict):
            raise ScenarioError(file, f"reseller.{key}", "expected a mapping")
    for name, spec in (section.get("modules") or {}).items():
        where = f"reseller.modules.{name}"
        if not isinstance(spec, dict):
            raise ScenarioError(file, where, "expected a mapping with account and password")
        for key in ("account", "password"):
            if key not in spec:
                raise ScenarioError(file, f"{where}.{key}", "missing")
        check_periods(spec.get("periods"), f"{where}.periods", file)
    for name, spec in (section.get("clients") or {}).items():
        if spec is not None and not isinstance(spec, dict):
            raise ScenarioError(file, f"reseller.clients.{name}", "expected {balance: N}")
    periods = section.get("order_periods")
    if periods is not None and (
        not isinstance(periods, list) or not all(isinstance(p, int) for p in periods)
    ):
        raise ScenarioError(
            file, "reseller.order_periods", f"expected a list of period codes, got {periods!r}"
        )
    return section


def check_periods(rules, where: str, file: str) -> None:
    if rules is None:
        return
    if not isinstance(rules, list):
        raise ScenarioError(file, where, "expected a list of {from, to, tariff?}")
    for i, rule in enumerate(rules):
        if (
            not isinstance(rule, dict)
            or not {"from", "to"} <= set(rule)
            or not set(rule) <= {"from", "to", "tariff"}
        ):
            raise ScenarioError(
                file, f"{where}[{i}]", f"expected {{from: N, to: N, tariff?: NAME}}, got {rule!r}"
            )
        for key in ("from", "to"):
            if not isinstance(rule[key], int) or isinstance(rule[key], bool):
                raise ScenarioError(
                    file, f"{where}[{i}].{key}", f"expected a period code, got {rule[key]!r}"
                )


def parse_step(number: int, raw, file: str) -> Step:
    where = f"step {number}"
    if not isinstance(raw, dict):
        raise ScenarioError(file, where, f"expected a mapping with one action, got {raw!r}")
    fails, name, crash = raw.get("fails"), raw.get("as"), raw.get("crash")
    actions = [k for k in raw if k not in STEP_MODIFIERS]
    if len(actions) != 1:
        raise ScenarioError(file, where, f"expected exactly one action, got {actions or 'none'}")
    action = actions[0]
    if action not in STEPS:
        raise ScenarioError(
            file, f"{where}.{action}", f"unknown action; expected one of {sorted(STEPS)}"
        )
    if fails is not None and fails not in ERROR_TYPES:
        raise ScenarioError(
            file,
            f"{where}.fails",
            f"unknown error type {fails!r}; expected one of {list(ERROR_TYPES)}",
        )
    if name is not None and not isinstance(name, str):
        raise ScenarioError(file, f"{where}.as", f"expected a name, got {name!r}")
    if crash is not None:
        if crash not in CRASH_POINTS:
            raise ScenarioError(
                file,
                f"{where}.crash",
                f"unknown crash point {crash!r}; expected one of {list(CRASH_POINTS)}",
            )
        if not STEPS[action].reaches_seller:
            raise ScenarioError(
                file,
                f"{where}.crash",
                f"'{action}' does not make the engine reach the seller, so it cannot crash there",
            )
    step = Step(number, action, raw[action], fails, name, str(raw.get("note") or ""), crash)
    check_arg(step, file)
    return step


def check_arg(step: Step, file: str) -> None:
    """The step's argument against its action's shape; whole numbers given as text
    (`period: "5"`) are taken as numbers."""
    where, arg, action = step.where(), step.arg, STEPS[step.action]
    if action.shape == NAME or (action.shape == NAME_OR_MAP and not isinstance(arg, dict)):
        if not isinstance(arg, SCALAR) or isinstance(arg, bool):
            raise ScenarioError(file, where, f"expected a name, got {arg!r}")
        return
    if action.shape == DURATION:
        try:
            parse_duration(arg, "wait")
        except WorldError as error:
            raise ScenarioError(file, where, error.problem) from None
        return
    if action.shape == EXPECT:
        check_expect(step, file)
        return
    if not isinstance(arg, dict):
        raise ScenarioError(
            file, where, f"expected a mapping with {sorted(action.required)}, got {arg!r}"
        )
    for key in sorted(action.required):
        if key not in arg:
            raise ScenarioError(file, f"{where}.{key}", "missing")
    extra = sorted(set(arg) - action.keys())
    if extra:
        raise ScenarioError(
            file, f"{where}.{extra[0]}", f"unknown key; expected one of {sorted(action.keys())}"
        )
    for key in sorted(action.maps & set(arg)):
        if not isinstance(arg[key], dict):
            raise ScenarioError(file, f"{where}.{key}", f"expected a mapping, got {arg[key]!r}")
    for key in sorted(action.whole & set(arg)):
        arg[key] = whole_number(arg[key], f"{where}.{key}", file)
    if step.action == "seller.fault":
        if arg["kind"] not in FAULT_KINDS:
            raise ScenarioError(
                file,
                f"{where}.kind",
                f"unknown fault {arg['kind']!r}; expected one of {list(FAULT_KINDS)}",
            )
        if arg["times"] < 0:
            raise ScenarioError(file, f"{where}.times", f"expected >= 0, got {arg['times']}")
        try:
            Faults(random.Random(0)).add(
                arg["kind"], arg["times"], _text(arg.get("func")), _text(arg.get("account"))
            )
        except ValueError as error:
            key, _, problem = str(error).partition(": ")
            raise ScenarioError(file, f"{where}.{key}", problem) from None
    if step.action == "connect":
        check_periods(arg.get("periods"), f"{where}.periods", file)
    if "autoprolong" in arg and not isinstance(arg["autoprolong"], bool):
        raise ScenarioError(file, f"{where}.autoprolong", "expected true or false")


def whole_number(value, where: str, file: str) -> int:
    """A whole number, given as one or as its digits in text (`"5"`)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise ScenarioError(file, where, f"expected a whole number, got {value!r}")
    return value


def _text(value):
    """A name given in the file, as text (YAML may read `7` as a number); None stays None."""
    return None if value is None else str(value)


def check_expect(step: Step, file: str) -> None:
    where, arg = step.where(), step.arg
    if not isinstance(arg, dict) or not arg:
        raise ScenarioError(file, where, f"expected a mapping naming what to check, got {arg!r}")
    subjects = [k for k in arg if k in EXPECT_SUBJECTS]
    if {"service", "seller_service"} & set(subjects):  # a service check may name its tariff
        subjects = [k for k in subjects if k in ("service", "seller_service")]
    if len(subjects) > 1:
        raise ScenarioError(file, where, f"check one thing per expect, got {subjects}")
    allowed = EXPECT_SUBJECTS[subjects[0]] | {subjects[0]} if subjects else COUNTS
    extra = sorted(set(arg) - allowed)
    if extra:
        raise ScenarioError(
            file, f"{where}.{extra[0]}", f"unknown key; expected one of {sorted(allowed)}"
        )
    if subjects and len(arg) == 1:
        raise ScenarioError(
            file,
            where,
            f"name what to check about {subjects[0]}: {sorted(EXPECT_SUBJECTS[subjects[0]])}",
        )
    for key in ("addons", "params", "prices", "enumeration", "addon_prices"):
        if key in arg and not isinstance(arg[key], dict):
            raise ScenarioError(file, f"{where}.{key}", f"expected a mapping, got {arg[key]!r}")
    words = {"status": STATUS_WORDS, "state": OPERATION_STATES, "error": ERROR_TYPES}
    for key, allowed_words in words.items():
        if key in arg and arg[key] is not None and arg[key] not in allowed_words:
            raise ScenarioError(
                file,
                f"{where}.{key}",
                f"unknown {key} {arg[key]!r}; expected one of {list(allowed_words)}",
            )
    if arg.get("expires") is not None:
        check_date(arg["expires"], f"{where}.expires", file)
    for key in ("services", "seller_services", "ips", "period"):
        if key in arg:
            arg[key] = whole_number(arg[key], f"{where}.{key}", file)


def check_date(value, where: str, file: str) -> None:
    """A day as YAML reads it (a date) or as text (`2026-02-01`, a time after it allowed)."""
    if hasattr(value, "year"):
        return
    try:
        datetime.strptime(str(value)[:10], "%Y-%m-%d")
    except ValueError:
        raise ScenarioError(
            file, where, f"expected a date like 2026-02-01, got {value!r}"
        ) from None


def check_names(steps: list[Step], seller: dict, reseller: dict, file: str) -> None:
    """Names of clients, modules and services must exist by the step that uses them."""
    clients = set(map(str, reseller.get("clients") or {}))
    modules = set(map(str, reseller.get("modules") or {}))
    services: set[str] = set()
    remotes: set[str] = set()
    named: dict[str, str] = {}
    for step in steps:
        arg = step.arg if isinstance(step.arg, dict) else {}
        where = step.where()
        # A step expected to fail with `unknown` may name a client or module that does not exist.
        lenient = step.fails == "unknown"
        if (
            step.action in ("order", "topup", "assign")
            and str(arg.get("client")) not in clients
            and not lenient
        ):
            raise ScenarioError(
                file,
                f"{where}.client",
                f"unknown client {arg.get('client')!r}; the reseller has {sorted(clients)}",
            )
        module = arg.get("module") if step.action != "set_module" else None
        if step.action in ("checkevent", "reconcile"):
            module = step.arg
        if (
            module is not None
            and step.action != "connect"
            and str(module) not in modules
            and not lenient
        ):
            raise ScenarioError(
                file,
                f"{where}.module",
                f"unknown module {module!r}; the reseller has {sorted(modules)}",
            )
        service, key = arg.get("service"), f"{where}.service"
        if step.action in ("suspend", "resume", "delete", "restart") or (
            step.action.startswith("seller.")
            and not isinstance(step.arg, dict)
            and step.action != "seller.fault"
        ):
            service, key = step.arg, where
        if step.action == "expect":
            subject = next((k for k in ("service", "seller_service", "operation") if k in arg), "")
            service, key = arg.get(subject), f"{where}.{subject}"
        known = (
            services | remotes
            if step.action.startswith("seller.") or "seller_service" in arg
            else services
        )
        if service is not None and str(service) not in known:
            raise ScenarioError(
                file, key, f"unknown service {service!r}; named so far: {sorted(known)}"
            )
        if step.action == "connect":
            modules.add(str(arg.get("module")))
        if step.name:
            kind = STEPS[step.action].names
            if kind is None:
                raise ScenarioError(file, f"{where}.as", f"'{step.action}' creates nothing to name")
            if step.name in named:
                raise ScenarioError(
                    file, f"{where}.as", f"{step.name!r} already names what {named[step.name]} made"
                )
            named[step.name] = where
            (remotes if kind == "remote" else services).add(step.name)


def load(path: str | Path, values: dict | None = None) -> Scenario:
    """Load and validate a scenario file (with `values` for generated `let` names)."""
    return build(load_document(path), str(path), values)


def concrete(scenario: Scenario) -> dict:
    """The scenario's document with every `let` value fixed, for writing a regression file."""
    document = copy.deepcopy(scenario.document)
    document["let"] = dict(scenario.values)
    return document
