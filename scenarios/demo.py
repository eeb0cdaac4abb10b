"""`python run.py demo`: a narrated reselling story against the simulator over a real socket."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.console import Console

from scenarios import invariants
from scenarios.harness import Harness
from scenarios.runner import run_step
from scenarios.spec import load

DEMO = Path(__file__).with_name("demo.yaml")


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
    seller = h.control.get("/services")["services"]
    balance = h.control.get("/accounts/reseller")["balance"]
    theirs = [f"#{s['id']}={s['status']} {','.join(s['ips'])}" for s in seller]
    return (
        f"  reseller: {'; '.join(mine) or 'no services'} | clients: {clients}\n"
        f"  seller:   {'; '.join(theirs) or 'no services'} | reseller's balance: {balance} "
        f"{h.seller.currency}"
    )


def play(console: Console, keep: bool, stop: threading.Event | None = None) -> int:
    """Play the demo story; with `keep`, leave the simulator serving until `stop` is set."""
    scenario = load(DEMO)
    h = Harness(scenario.seller, scenario.reseller, scenario.start, http=True)
    console.print(f"[bold]{scenario.name}[/]")
    console.print(
        f"The simulated seller listens on {h.url}/billmgr; the reseller engine talks "
        "to it over HTTP.\n"
    )
    try:
        for step in scenario.steps:
            if step.note:
                console.print(f"[cyan]{h.now:%H:%M}[/] {step.note}")
            run_step(h, step)
            if step.action != "expect":
                console.print(f"[dim]  step {step.number}: {step.action}[/]")
                console.print(both_sides(h), markup=False, highlight=False)
        for name in scenario.invariants:
            problems = invariants.CHECKS[name](h)
            console.print(f"invariant {name}: {'holds' if not problems else problems}")
        if keep:
            console.print(
                f"\nThe simulator keeps serving at {h.url} (control API at "
                f"{h.url}/_sim). Press Ctrl-C to stop."
            )
            (stop or threading.Event()).wait()
    finally:
        h.close()
    return 0
