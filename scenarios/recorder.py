"""What a report shows of a scenario run, gathered as it runs: the runner feeds an observer.

`Recorder` keeps plain data only (strings, numbers, lists, dicts), so records cross process
boundaries (pytest-xdist's workers) and render without the harness that made them. It keeps each
file's last run in full (a property's last run is its shrunk example, replayed last) and the
coverage of every run.
"""

from __future__ import annotations

from datetime import datetime

from scenarios import coverage
from scenarios.checks import Mismatch
from scenarios.demo import describe, reseller_view
from scenarios.harness import Harness
from scenarios.observer import Observer
from simulator.overview import overview, period_name

SHOWN_CALLS = 60  # per step; a month's wait polls thousands of times


def stamp(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M:%S}"


def _text(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in sorted(value.items()))
    return "" if value is None else str(value)


def seller_state(h: Harness) -> dict:
    """The seller's side as tables: `{table: {row: {column: text}}}`."""
    seller = h.seller
    with seller.lock:
        accounts = {
            a.login: {
                "balance": f"{a.balance} {seller.currency}",
                "events waiting": str(len(seller.feeds.get(a.login, []))),
            }
            for a in seller.accounts.values()
        }
        services = {}
        for s in seller.services.values():
            tariff = seller.tariffs.get(s.tariff)
            services[f"#{s.id}"] = {
                "account": s.account,
                "tariff": tariff.intname if tariff else str(s.tariff),
                "period": period_name(s.period),
                "status": coverage.SELLER_STATUS.get(s.status, str(s.status)),
                "expires": f"{s.expires:%Y-%m-%d}" if s.expires else "",
                "ips": _text(s.ips),
                "addons": _text(s.addons),
            }
        faults = {
            f"fault {f['id']}": {
                "kind": f["kind"],
                "left": str(f["times"]),
                "aimed at": " ".join(x for x in (f.get("func"), f.get("account")) if x) or "any",
            }
            for f in seller.faults.to_list()
        }
    return {"accounts": accounts, "services": services, "faults queued": faults}


def reseller_state(h: Harness) -> dict:
    """The reseller engine's side as tables: clients, services (by scenario name), operations."""
    store = h.store
    names = {item_id: alias for alias, item_id in h.services.items()}
    clients = {c.name: {"balance": str(c.balance)} for c in store.clients()}
    services = {}
    for item in store.items():
        tariff = store.tariff_by_id(item.pricelist)
        operation = store.latest_operation(item.id)
        row = f"{names[item.id]} (#{item.id})" if item.id in names else f"#{item.id}"
        services[row] = {
            "tariff": tariff.intname if tariff else "",
            "period": period_name(item.period),
            "status": item.status_name,
            "expires": (item.expiredate or "")[:10],
            "seller service": "" if item.remote_id is None else f"#{item.remote_id}",
            "ips": _text(item.ips),
            "addons": _text(item.addons),
            "operation": (
                " ".join(x for x in (operation.kind, operation.state, operation.error_type) if x)
                if operation
                else ""
            ),
        }
    return {"clients": clients, "services": services}


def failure_view(step, failure: BaseException) -> dict:
    """A failure as the report shows it: its message, and what was expected and what happened."""
    message = str(failure).strip() or type(failure).__name__
    if isinstance(failure, Mismatch):
        return {
            "message": message,
            "subject": failure.subject,
            "expected": repr(failure.expected),
            "actual": repr(failure.actual),
        }
    if step is None:
        expected = "every invariant holds at the end"
    elif step.fails:
        expected = f"the step fails with {step.fails}, changing nothing"
    elif step.crash:
        expected = f"the engine dies at {step.crash} and a new one carries on"
    else:
        expected = "the step succeeds and every invariant holds after it"
    if not isinstance(failure, AssertionError):
        message = f"the run crashed: {type(failure).__name__}: {message}"
    return {"message": message, "subject": "", "expected": expected, "actual": message}


class Recorder(Observer):
    """Records runs for a report and their coverage; `files` holds one record per file."""

    def __init__(self):
        self.files: list[dict] = []
        self._runs: dict[str, dict] = {}  # path -> its last run, until the file's result comes
        self._covered: dict[str, coverage.Coverage] = {}
        self._run: dict | None = None
        self._tracker: coverage.Tracker | None = None

    # -- the runner's calls ------------------------------------------------------------------

    def started(self, h: Harness, scenario) -> None:
        self._tracker = coverage.Tracker(h)
        self._last_call = max((c["id"] for c in h.seller.calls), default=0)
        self._notes = len(h.notes)
        self._crashes = h.crashes
        self._state = {"seller": seller_state(h), "reseller": reseller_state(h)}
        self._run = {
            "start": stamp(h.now),
            "values": {k: _text(v) for k, v in sorted(scenario.values.items())},
            "initial": self._state,
            "steps": [],
            "failure": None,
            "charts": {},
        }
        self._runs[scenario.path] = self._run

    def stepped(self, h: Harness, step, failure: BaseException | None) -> None:
        run = self._run
        if run is None:
            return
        started = run["steps"][-1]["ended"] if run["steps"] else run["start"]
        calls, total, counts = self._new_calls(h)
        state = {"seller": seller_state(h), "reseller": reseller_state(h)}
        run["steps"].append(
            {
                "number": step.number,
                "action": step.action,
                "text": describe(step),
                "note": step.note,
                "fails": step.fails,
                "crash": step.crash,
                "died": h.crashes > self._crashes,
                "started": started,
                "ended": stamp(h.now),
                "passed": failure is None,
                "failure": failure_view(step, failure) if failure is not None else None,
                "calls": calls,
                "calls_total": total,
                "call_counts": counts,
                "state": state,
                "changed": changes(self._state, state),
            }
        )
        self._state = state
        self._crashes = h.crashes
        self._tracker.stepped(h, step)
        if failure is not None:
            run["failure"] = run["steps"][-1]["failure"] | {"where": step.where()}
            self._end(h)

    def ended(self, h: Harness, failure: BaseException | None) -> None:
        if self._run is None:
            return
        if failure is not None:
            self._run["failure"] = failure_view(None, failure) | {"where": "at the end"}
        self._end(h)

    def finished(self, result) -> None:
        run = self._runs.pop(result.path, None)
        covered = self._covered.pop(result.path, None)
        self.files.append(
            {
                "path": str(result.path),
                "name": result.name,
                "tags": list(result.tags),
                "passed": result.passed,
                "message": result.message,
                "examples": result.examples,
                "written": result.written,
                "seconds": round(result.seconds, 3),
                "steps": result.steps,
                "run": run,
                "coverage": (covered or coverage.Coverage()).to_dict(),
            }
        )

    # -- the parts ---------------------------------------------------------------------------

    def _end(self, h: Harness) -> None:
        """The run is over: its plots, and its coverage added to its file's."""
        run, self._run = self._run, None
        seller = h.seller
        engine_side = reseller_view(h.store)
        with seller.lock:
            run["charts"] = overview(seller, engine_side)["charts"]
        path = next(p for p, r in self._runs.items() if r is run)
        found = self._tracker.finish(h, path)
        self._covered.setdefault(path, coverage.Coverage()).add(found)

    def _new_calls(self, h: Harness) -> tuple[list[dict], int, dict[str, int]]:
        """The calls between the two sides since the last step (and the idle time skipped)."""
        new = []
        for call in reversed(h.seller.calls):
            if call["id"] <= self._last_call:
                break
            new.append(call)
        new.reverse()
        if new:
            self._last_call = new[-1]["id"]
        counts: dict[str, int] = {}
        for call in new:
            counts[call["func"] or "-"] = counts.get(call["func"] or "-", 0) + 1
        rows = [
            {
                "at": call["at"],
                "func": call["func"] or "-",
                "account": call["account"] or "",
                "elid": str(call["params"].get("elid", "")),
                "result": call["result"],
                "status": call["status"],
            }
            for call in new
        ]
        rows += [{"at": stamp(when), "note": note} for when, note in h.notes[self._notes :]]
        self._notes = len(h.notes)
        rows.sort(key=lambda row: row["at"])
        if len(rows) > SHOWN_CALLS:  # the first and the last, where a step's story usually is
            half = SHOWN_CALLS // 2
            gap = {"at": "", "note": f"{len(rows) - SHOWN_CALLS} more calls not shown"}
            rows = rows[:half] + [gap] + rows[-half:]
        return rows, len(new), dict(sorted(counts.items()))


def changes(before: dict, after: dict) -> dict:
    """What differs: `{side: {table: {row: [column, ...] or "new" or "gone"}}}`."""
    found: dict = {}
    for side, tables in after.items():
        for table, rows in tables.items():
            old = before.get(side, {}).get(table, {})
            marks: dict = {}
            for row, cells in rows.items():
                if row not in old:
                    marks[row] = "new"
                else:
                    moved = [c for c, v in cells.items() if old[row].get(c) != v]
                    if moved:
                        marks[row] = moved
            for row in old:
                if row not in rows:
                    marks[row] = "gone"
            if marks:
                found.setdefault(side, {})[table] = marks
    return found
