"""Run a scenario: each step's action on the harness, its checks, and the named invariants.

A scenario with generated `let` values runs as a Hypothesis property; a failure is shrunk and
written out as a concrete scenario file that reproduces it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from reseller.errors import ResellerError
from scenarios import invariants
from scenarios.harness import EngineDied, Harness, SellerRefused, StepFailure
from scenarios.spec import Scenario, ScenarioError, Step, build, concrete, generated, load_document
from scenarios.steps import STEPS
from simulator.world import parse_duration


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


def run_step(h: Harness, step: Step) -> None:
    action = STEPS[step.action]

    def run() -> None:
        made = action.run(h, step.arg)
        if step.name and action.names:
            (h.services if action.names == "service" else h.remotes)[step.name] = made

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
    read_only = not STEPS[step.action].changes_seller
    h.watch.arm(step.crash, any_call=read_only)
    target = h.now + parse_duration(step.arg) if step.action == "wait" else None
    known = {item.id for item in h.store.items()}
    try:
        run()
    except EngineDied:
        h.watch.disarm()
        h.restart_engine()
        created = [item.id for item in h.store.items() if item.id not in known]
        if step.name and created and STEPS[step.action].names == "service":
            h.services[step.name] = created[-1]  # what it had committed before it died
        if target is not None:
            h.advance(target)
        return
    except ResellerError:
        pass  # refused before it reached the point: the engine did not die
    finally:
        reached = h.watch.disarm()
    if not reached:
        what = "call" if read_only else "call that changes the seller's state"
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
    except Exception as failure:  # a crash of the code under test: reported, and the run goes on
        result.passed, result.message = False, f"{path}: {described(failure)}"
    result.seconds = time.perf_counter() - started
    return result


class PropertyFailure(AssertionError):
    def __init__(self, message: str, written: str | None):
        super().__init__(message)
        self.written = written


def run_property(
    document: dict, path: str, examples: int, seed: int | None, http: bool, failures_dir: str
) -> tuple[int, None]:
    """Run a property; PropertyFailure reporting each distinct failure Hypothesis found, each
    shrunk and written out as a concrete scenario."""
    let = document.get("let") or {}
    names = sorted(let)
    count = {"examples": 0}
    # Each failure by its message, with the example that last gave it: Hypothesis replays
    # every distinct failure's smallest example last, just before it raises.
    failing: dict[str, tuple[dict, Scenario]] = {}

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
        except Exception as failure:  # a check that failed, or a crash of the code under test
            failing[failure_key(failure)] = (values, scenario)
            raise

    if seed is not None:
        prop = hypothesis_seed(seed)(prop)
    try:
        prop()
    except ExceptionGroup as group:  # several distinct failures, each shrunk
        raise property_failure(list(group.exceptions), failing, failures_dir) from None
    except Exception as failure:
        raise property_failure([failure], failing, failures_dir) from None
    return count["examples"], None


def failure_key(failure: BaseException) -> str:
    return f"{type(failure).__name__}: {failure}"


def described(failure: BaseException) -> str:
    """A failure as a report shows it: a check's own message, or a crash with where it was."""
    if isinstance(failure, StepFailure):
        return str(failure)
    frames = traceback.extract_tb(failure.__traceback__)[-3:]
    where = "; ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames)
    return f"the run crashed: {type(failure).__name__}: {failure} (at {where})"


def property_failure(found: list, failing: dict, failures_dir: str) -> PropertyFailure:
    """One report of every failure a property found: its smallest example, what failed, and
    the file written to reproduce it."""
    parts, written = [], []
    for failure in found:
        values, scenario = failing.get(failure_key(failure), ({}, None))
        target = write_failure(scenario, failures_dir) if scenario else None
        written.append(target)
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        parts.append(
            f"smallest failing example: {shown}\n{described(failure)}\nreproduce with: "
            f"python run.py scenarios {target}"
        )
    heading = f"{len(found)} different failures:\n" if len(found) > 1 else ""
    return PropertyFailure(heading + "\n\n".join(parts), written[0] if written else None)


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
