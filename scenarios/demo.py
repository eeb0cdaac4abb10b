"""`python run.py demo`: a reselling story against the simulator over a real socket.

Without `--keep` it plays itself, narrated. With `--keep` it serves the dashboard with the
reseller engine's state beside the seller's, and a person drives the story from the browser.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from reseller.store import Store, stamp
from scenarios import invariants
from scenarios.harness import Harness, StepFailure
from scenarios.runner import run_step
from scenarios.spec import Step, load
from simulator import dashboard

DEMO = Path(__file__).with_name("demo.yaml")
OWNER_TIMEOUT = 120  # seconds a request waits for the demo's thread (a `slow` fault sleeps)


def reseller_view(store: Store) -> dict:
    """The reseller engine's state as the dashboard shows it, in `simulator.overview`'s shape.

    The one place that reads the store for the dashboard: adapt it when the store changes.
    """
    clients = {c.id: c for c in store.clients()}
    movements: dict[int, list] = {}
    for expense in store.expenses():
        movements.setdefault(expense.account, []).append(
            {"at": expense.date, "amount": str(expense.amount), "reason": expense.reason}
        )
    services = []
    for item in store.items():
        operation = store.latest_operation(item.id)
        tariff = store.tariff_by_id(item.pricelist)
        services.append(
            {
                "id": item.id,
                "client": clients[item.account].name,
                "tariff": tariff.intname if tariff else "",
                "status": item.status_name,
                "expires": item.expiredate or "",
                "seller_service": item.remote_id,
                "operation": operation
                and {
                    "kind": operation.kind,
                    "state": operation.state,
                    "error": operation.error_type or "",
                },
            }
        )
    events = [
        {"id": e.event_id, "service": e.item, "applied": e.applied} for e in store.applied_events()
    ]
    for module in store.modules():
        pending = store.pending_events(module.id)
        events += [{"id": e.event_id, "fetched": e.fetched} for e in pending]
    return {
        "name": "the reseller engine",
        "currency": store.setting("currency", ""),
        "services": services,
        "operations": [
            {
                "id": op.id,
                "service": op.item,
                "kind": op.kind,
                "state": op.state,
                "attempts": op.attempts,
                "error": op.error_type or "",
                "created": stamp(op.created),
                "updated": stamp(op.updated),
            }
            for op in store.operations()
        ],
        "clients": [
            {"name": c.name, "balance": str(c.balance), "movements": movements.get(c.id, [])}
            for c in clients.values()
        ],
        "events": events,
    }


def both_sides(h: Harness) -> str:
    """One line per side: the reseller's services and operations, the seller's services."""
    mine = []
    for alias, item_id in h.services.items():
        item = h.store.item(item_id)
        operation = h.store.latest_operation(item_id)
        error = f", {operation.error_type}" if operation.error_type else ""
        mine.append(
            f"{alias}={item.status_name} (operation {operation.kind} {operation.state}{error})"
        )
    clients = ", ".join(f"{c.name} {c.balance}" for c in h.store.clients())
    seller = h.side.services()
    account = h.side.account("reseller")
    theirs = [f"#{s['id']}={s['status']} {','.join(s['ips'])}" for s in seller]
    return (
        f"  reseller: {'; '.join(mine) or 'no services'} | clients: {clients}\n"
        f"  seller:   {'; '.join(theirs) or 'no services'} | reseller's balance: "
        f"{account['balance']} {account['currency']}"
    )


def describe(step: Step) -> str:
    """A step as one line: its action and argument, as the scenario file says it."""
    arg = step.arg
    if isinstance(arg, dict):
        arg = ", ".join(f"{k}: {v}" for k, v in arg.items())
    text = f"{step.action}: {arg}" if arg not in (None, "") else step.action
    return f"{text} (as {step.name})" if step.name else text


def narrate(console: Console, h: Harness, step: Step) -> None:
    if step.note:
        console.print(f"[cyan]{h.now:%H:%M}[/] {step.note}")
    run_step(h, step)
    if step.action != "expect":
        console.print(f"[dim]  step {step.number}: {step.action}[/]")
        console.print(both_sides(h), markup=False, highlight=False)


def play(console: Console, keep: bool, stop: threading.Event | None = None) -> int:
    """Play the demo story; with `keep`, serve the dashboard and let a person drive it instead."""
    if keep:
        return drive(console, stop)
    scenario = load(DEMO)
    h = Harness(scenario.seller, scenario.reseller, scenario.start, http=True)
    console.print(f"[bold]{scenario.name}[/]")
    console.print(
        f"The simulated seller listens on {h.url}/billmgr; the reseller engine talks "
        "to it over HTTP.\n"
    )
    try:
        for step in scenario.steps:
            narrate(console, h, step)
        for name in scenario.invariants:
            problems = invariants.CHECKS[name](h)
            console.print(f"invariant {name}: {'holds' if not problems else problems}")
    finally:
        h.close()
    return 0


class BrowserStory:
    """The demo's two sides, driven from the dashboard: its `Driver`, and its reseller provider.

    The engine's SQLite connection belongs to the thread that built the harness, so every
    request's work is queued to that thread (`serve`), one job at a time.
    """

    def __init__(self, console: Console):
        self.console = console
        self.scenario = load(DEMO)
        self.h = Harness(
            self.scenario.seller, self.scenario.reseller, self.scenario.start, http=True
        )
        self.jobs: queue.Queue = queue.Queue()
        self.ran = 0
        self.outcomes: dict[int, tuple[bool, str]] = {}
        self.checked: list[str] = []

    def serve(self, stop: threading.Event) -> None:
        """Run queued jobs on this thread until `stop` is set."""
        while not stop.is_set():
            try:
                future, job, args = self.jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job(*args))
                except BaseException as error:  # handed to the waiting request, not lost
                    future.set_exception(error)
        while not self.jobs.empty():  # requests still waiting learn the demo has stopped
            future, _, _ = self.jobs.get()
            future.set_exception(RuntimeError("the demo has stopped"))

    def _on_owner(self, job: Callable, *args):
        future: Future = Future()
        self.jobs.put((future, job, args))
        return future.result(timeout=OWNER_TIMEOUT)

    # -- what the dashboard calls --------------------------------------------------------

    def reseller(self) -> dict:
        return self._on_owner(reseller_view, self.h.store)

    def advance(self, duration: timedelta) -> None:
        self._on_owner(self._advance, duration)

    def story(self) -> dict:
        return self._on_owner(self._story)

    def next_step(self) -> dict:
        return self._on_owner(self._next_step)

    # -- on the owning thread ------------------------------------------------------------

    def _advance(self, duration: timedelta) -> None:
        self.h.wait(duration)
        self.console.print(f"[cyan]{self.h.now:%m-%d %H:%M}[/] the clock moved on {duration}")
        self.console.print(both_sides(self.h), markup=False, highlight=False)

    def _story(self) -> dict:
        steps = []
        for index, step in enumerate(self.scenario.steps):
            ok, outcome = self.outcomes.get(step.number, (True, ""))
            state = "done" if index < self.ran else "next" if index == self.ran else "todo"
            steps.append(
                {
                    "number": step.number,
                    "text": describe(step),
                    "note": step.note,
                    "state": state,
                    "ok": ok,
                    "outcome": outcome,
                }
            )
        return {"title": self.scenario.name, "steps": steps, "invariants": self.checked}

    def _next_step(self) -> dict:
        steps = self.scenario.steps
        if self.ran == len(steps):
            return {"step": len(steps), "ok": False, "outcome": "the story is over", "last": True}
        step = steps[self.ran]
        try:
            narrate(self.console, self.h, step)
            ok, outcome = True, "holds" if step.action == "expect" else "done"
        except StepFailure as error:
            ok, outcome = False, str(error)
            self.console.print(f"[red]  step {step.number}: {error}[/]")
        self.outcomes[step.number] = (ok, outcome)
        self.ran += 1
        if self.ran == len(steps):
            for name in self.scenario.invariants:
                problems = invariants.CHECKS[name](self.h)
                self.checked.append(f"{name}: {'holds' if not problems else '; '.join(problems)}")
        return {"step": step.number, "ok": ok, "outcome": outcome, "last": self.ran == len(steps)}


def drive(
    console: Console,
    stop: threading.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> int:
    """Serve the demo's world with the dashboard until `stop` (or Ctrl-C); a person drives it."""
    story = BrowserStory(console)
    dashboard.attach(story.h.app, reseller_view=story.reseller, driver=story)
    console.print(f"[bold]{story.scenario.name}[/]")
    console.print(
        f"Open {story.h.url}/ in a browser to drive the story: run its steps, move the clock, "
        "act as the seller's staff, queue faults.\n"
        f"The seller's API is at {story.h.url}/billmgr, its control API at {story.h.url}/_sim. "
        "Press Ctrl-C to stop."
    )
    if on_ready is not None:
        on_ready(story.h.url)
    try:
        story.serve(stop or threading.Event())
    finally:
        story.h.close()
    return 0
