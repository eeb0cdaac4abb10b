"""The reseller engine and the simulated seller, driven together by Hypothesis.

Every rule is something one side really does: the reseller's operator, clients and cron; the
seller's staff and automation; the clock, from minutes to months; every simulator fault; and
the engine's process dying at a crash point and starting again on its SQLite file. After
every step the named invariants hold; `converged` and `tariff_sync_converges` are checked by a
rule that drains first, and at the end. The same machine runs in-process and over a socket.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)

from reseller.engine import Engine
from reseller.errors import ResellerError
from reseller.model import FAILED, MANUAL, RUNNING, SETPARAM, UNKNOWN
from reseller.store import Store
from scenarios import invariants
from scenarios.harness import CRASH_POINTS as CALL_CRASH_POINTS
from scenarios.harness import EngineDied
from tests.end_to_end import (
    ADDON_CHOICES,
    Crash,
    assert_invariants,
    crash_at,
    digest,
    harness,
    restart_engine,
)

TARIFFS = {5: "5-vds-1", 7: "7-vds-m", 8: "8-web-1"}
CALL_FAULTS = ("down", "error", "slow", "lose_reply")
FEED_FAULTS = ("drop_events", "duplicate_events", "reorder_events")
CRASH_POINTS = (
    "after_seller_accepted",
    "order_accepted_before_link",
    "events_saved",
    "applying_events",
    "syncing_tariff",
)
ADDON_VALUES = {
    "ram": st.sampled_from([0, 1024, 2048, 4096, 8192, 9000, "lots"]),
    "backup": st.sampled_from(["on", "off", True, "maybe"]),
    "panel": st.sampled_from(["none", "ispmanager", "plesk", "cpanel"]),
    "disk": st.sampled_from([20, 50, 500]),
    "ipv6": st.sampled_from(["on", "off"]),
}
addon_choices = st.dictionaries(
    st.sampled_from(sorted(ADDON_VALUES)), st.just(None), max_size=3
).flatmap(lambda keys: st.fixed_dictionaries({k: ADDON_VALUES[k] for k in keys}))

# What each reseller action may be refused with, at once and changing nothing.
ORDER_REFUSALS = {"insufficient_funds", "period", "value", "unknown"}
OPERATION_REFUSALS = {"not_linked", "value", "insufficient_funds", "period", "unknown"}
SYNC_REFUSALS = {"unavailable"}


def mostly(usual, unusual):
    """`usual` four times in five, `unusual` (something to be refused) otherwise."""
    return st.one_of(usual, usual, usual, usual, unusual)


def scaled(**factors) -> settings:
    """The loaded profile's budget scaled for this machine (HYPOTHESIS_PROFILE picks it)."""
    base = settings()
    return settings(
        base,
        max_examples=max(2, int(base.max_examples * factors.get("examples", 1))),
        stateful_step_count=max(5, int(base.stateful_step_count * factors.get("steps", 1))),
    )


class ResellingMachine(RuleBasedStateMachine):
    """One seller, one reseller with one module, two clients, and everything that can happen."""

    http = False
    faults = CALL_FAULTS + FEED_FAULTS
    services = Bundle("services")
    remotes = Bundle("remotes")

    def __init__(self):
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="machine-")
        self.db_path = str(Path(self.folder) / "reseller.db")
        self.h = None

    @initialize(
        target=services,
        seller_balance=st.sampled_from([0, 15, 60, 200, 1000]),
        alice=st.sampled_from([0, 30, 400]),
        period=st.sampled_from([1, 3, 12, -50]),
        autoprolong=st.booleans(),
    )
    def start(self, seller_balance, alice, period, autoprolong):
        """A seller, a reseller with tariff 5 imported, and a client's order (if they can pay)."""
        self.h = harness(
            http=self.http,
            db_path=self.db_path,
            seller_balance=seller_balance,
            client_balances={"alice": alice},
        )
        self.h.engine.import_tariff("seller", 5, self.h.now)
        self.crashes = 0
        self.second = None
        self.known: set[int] = set()
        client = "alice" if alice else "bob"
        item = self.act(
            lambda: self.h.engine.order(
                client,
                "5-vds-1",
                period,
                self.h.now,
                ostempl="debian-12",
                autoprolong=autoprolong,
            ),
            {"insufficient_funds"},
        )
        if item is None:
            return multiple()
        self.known.add(item)
        return item

    def teardown(self):
        try:
            if self.h is not None:
                self.check_converged_after_drain()
        finally:
            if getattr(self, "second", None) is not None:
                self.second.store.close()
            if self.h is not None:
                self.h.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------------

    def imported(self) -> list[str]:
        return [n for n in TARIFFS.values() if self.h.store.tariff(n)]

    def act(self, what, refusals: set[str], *, changes_on_refusal: bool = False):
        """Run a reseller action; a refusal must be of an expected type and change nothing."""
        before = digest(self.h)
        name = sys._getframe(1).f_code.co_name
        try:
            result = what()
        except ResellerError as error:
            event(f"{name}: refused ({error.type})")
            assert error.type in refusals, f"unexpected refusal {error.type}: {error.message}"
            if not changes_on_refusal:
                assert digest(self.h) == before, f"refused with {error.type} but changed state"
            return None
        except (Crash, EngineDied) as crash:
            event(f"{name}: the engine died at {crash}")
            self.restart()
            return None
        event(f"{name}: done")
        return result

    def restart(self) -> None:
        """The engine died at its crash point: start a new one on the same database file."""
        self.crashes += 1
        self.h.watch.disarm()
        restart_engine(self.h)

    def seller_action(self, name: str, body: dict) -> None:
        """A seller-side action by its staff; refusals (409) are fine, anything else is not."""
        reply = self.h.session.post(f"{self.h.url}/_sim/actions/{name}", json=body, timeout=30)
        assert reply.status_code in (200, 409), (name, body, reply.status_code, reply.text)

    def unknown_outcome_addons(self, item_id: int) -> set[str]:
        """Add-ons with a change whose outcome is unknown (its reply lost, or the engine died
        after sending it).

        Not simulated: the seller's staff setting such an add-on, or dropping it from the
        tariff, before the retry. No one could then tell whether the seller made the change:
        its form shows the staff's value, or no longer the add-on, and the retry resends.
        """
        return {
            name
            for op in self.h.store.operations(item_id)
            if op.kind == SETPARAM and op.state == RUNNING and op.outcome == UNKNOWN
            for name in op.params["addons"]
        }

    def remote_of(self, item_id: int) -> int | None:
        return self.h.store.item(item_id).remote_id

    # -- the reseller's operator and clients -------------------------------------------------

    @rule(tariff=st.sampled_from(sorted(TARIFFS)))
    def import_tariff(self, tariff):
        self.act(
            lambda: self.h.engine.import_tariff("seller", tariff, self.h.now),
            {"exists", "unavailable"},
        )

    @rule(tariff=st.sampled_from(sorted(TARIFFS.values())))
    def sync(self, tariff):
        if tariff not in self.imported():
            return
        changes = self.act(lambda: self.h.engine.sync_tariff(tariff, self.h.now), SYNC_REFUSALS)
        if changes is not None and not self.h.seller.faults.pending():
            again = self.act(lambda: self.h.engine.sync_tariff(tariff, self.h.now), set())
            assert again in ([], None), f"a second sync of {tariff} still changed {again}"

    @rule(
        tariff=st.sampled_from(sorted(TARIFFS.values())),
        period=st.sampled_from([2, 3, 24]),
        price=st.sampled_from([5, 19, "29.90"]),
    )
    def set_price(self, tariff, period, price):
        if tariff in self.imported():
            self.act(lambda: self.h.engine.set_price(tariff, {period: price}), {"value"})

    @rule(
        target=services,
        client=st.sampled_from(["alice", "bob"]),
        autoprolong=st.booleans(),
        data=st.data(),
    )
    def order(self, client, autoprolong, data):
        """Mostly what the tariff offers; now and then a period, add-on or template it lacks."""
        imported = self.imported()
        if not imported:
            return multiple()
        tariff = data.draw(st.sampled_from(imported), label="tariff")
        plan = self.h.store.tariff(tariff)
        periods = sorted(plan.prices)
        period = data.draw(mostly(st.sampled_from(periods), st.sampled_from([2, 24])), "period")
        addons = data.draw(self.addons_for(plan.id), label="addons")
        templates = plan.ostempl
        ostempl = data.draw(
            mostly(st.sampled_from([None, *templates]), st.just("windows")), label="ostempl"
        )
        item = self.act(
            lambda: self.h.engine.order(
                client,
                tariff,
                period,
                self.h.now,
                ostempl=ostempl,
                addons=addons,
                autoprolong=autoprolong,
            ),
            ORDER_REFUSALS,
        )
        if item is None:
            item = self._crashed_order()
        if item is None:
            return multiple()
        self.known.add(item)
        return item

    def addons_for(self, pricelist_id: int):
        """Add-on values for a tariff: its enabled ones, valid or (less often) not."""
        specs = self.h.store.tariff_by_id(pricelist_id).addons
        valid = {}
        for name, spec in specs.items():
            if not spec.enabled:
                continue
            if spec.type == "integer":
                high = spec.max if spec.max is not None else spec.included * 4
                valid[name] = st.sampled_from([spec.included, high, (spec.included + high) // 2])
            elif spec.type == "boolean":
                valid[name] = st.sampled_from(["on", "off"])
            else:
                valid[name] = st.sampled_from(sorted(spec.items or {}) or ["none"])
        good = (
            st.lists(st.sampled_from(sorted(valid)), unique=True).map(lambda names: names)
            if valid
            else st.just([])
        )
        chosen = good.flatmap(lambda names: st.fixed_dictionaries({n: valid[n] for n in names}))
        return mostly(chosen, addon_choices)

    def _crashed_order(self) -> int | None:
        """After a crash inside an order, the service it created (if its write committed)."""
        fresh = [i.id for i in self.h.store.items() if i.id not in self.known]
        return fresh[-1] if fresh else None

    @rule(service=services, period=st.sampled_from([1, 2, 3, 12, -50]))
    def prolong(self, service, period):
        self.act(lambda: self.h.engine.prolong(service, period, self.h.now), OPERATION_REFUSALS)

    @rule(service=services, kind=st.sampled_from(["suspend", "resume", "close"]))
    def change_status(self, service, kind):
        self.act(lambda: self.h.engine.change_status(service, kind, self.h.now), OPERATION_REFUSALS)

    @rule(service=services, data=st.data())
    def set_addons(self, service, data):
        addons = data.draw(self.addons_for(self.h.store.item(service).pricelist))
        self.act(lambda: self.h.engine.set_addons(service, addons, self.h.now), OPERATION_REFUSALS)

    @rule(service=services)
    def restart_operation(self, service):
        self.act(lambda: self.h.engine.restart(service, self.h.now), {"not_failed"})

    @rule()
    def checkevent(self):
        self.act(lambda: self.h.engine.checkevent("seller", self.h.now), SYNC_REFUSALS)

    @rule()
    def reconcile(self):
        self.act(lambda: self.h.engine.reconcile("seller", self.h.now), SYNC_REFUSALS)

    @rule(client=st.sampled_from(["alice", "bob"]), amount=st.sampled_from([1, 25, "100.50"]))
    def topup(self, client, amount):
        self.act(lambda: self.h.engine.topup(client, amount, self.h.now), set())

    @rule(target=services, remote=consumes(remotes), client=st.sampled_from(["alice", "bob"]))
    def import_and_assign(self, remote, client):
        itemtype = self.h.seller.services[remote].type
        listed = self.act(
            lambda: self.h.engine.import_services("seller", itemtype, "*", self.h.now),
            SYNC_REFUSALS,
        )
        if listed is None:
            return multiple()
        item = self.act(
            lambda: self.h.engine.assign(remote, client, self.h.now),
            {"exists", "unavailable", "unknown", "period"},
        )
        if item is None:
            return multiple()
        self.known.add(item)
        return item

    # -- the seller's staff and automation ---------------------------------------------------

    @rule(target=remotes, tariff=st.sampled_from([5, 8]), period=st.sampled_from([1, 12]))
    def seller_creates_service(self, tariff, period):
        reply = self.h.session.post(
            f"{self.h.url}/_sim/actions/create_service",
            json={"account": "reseller", "tariff": tariff, "period": period},
            timeout=30,
        )
        assert reply.status_code in (200, 409), reply.text
        return reply.json()["result"]["id"] if reply.status_code == 200 else multiple()

    @rule(
        service=services,
        action=st.sampled_from(["activate", "suspend", "resume", "delete", "add_ip", "remove_ip"]),
    )
    def seller_staff(self, service, action):
        remote = self.remote_of(service)
        if remote is not None:
            self.seller_action(action, {"service": remote})

    @rule(service=services, addon=st.sampled_from(["ram", "backup", "panel"]), data=st.data())
    def seller_sets_addon(self, service, addon, data):
        remote = self.remote_of(service)
        if remote is None or addon in self.unknown_outcome_addons(service):
            return
        value = data.draw(
            {
                "ram": st.sampled_from([512, 2048, 4096]),
                "backup": st.booleans(),
                "panel": st.sampled_from(["none", "ispmanager"]),
            }[addon]
        )
        self.seller_action("set_addon", {"service": remote, "addon": addon, "value": value})

    @rule(service=services, value=st.sampled_from(["web1", "db.example", "ünïcode"]))
    def seller_sets_param(self, service, value):
        remote = self.remote_of(service)
        if remote is not None:
            self.seller_action("set_param", {"service": remote, "name": "hostname", "value": value})

    @rule(amount=st.sampled_from([5, 50, 300]))
    def seller_topup(self, amount):
        self.seller_action("topup", {"account": "reseller", "amount": amount})

    @rule(
        addons=st.lists(st.sampled_from(sorted(ADDON_CHOICES)), max_size=4, unique=True),
        ostempl=st.lists(st.sampled_from(["debian-12", "centos-7", "ubuntu-24"]), unique=True),
        recipes=st.lists(st.sampled_from(["lamp", "docker"]), unique=True),
    )
    def seller_edits_tariff(self, addons, ostempl, recipes):
        chosen = {}
        for name in addons:
            real = name.rstrip("+")
            if real not in chosen:
                chosen[real] = ADDON_CHOICES[name]
        for item in self.known:
            for name in self.unknown_outcome_addons(item):
                chosen.setdefault(name, ADDON_CHOICES[name])
        self.seller_action(
            "edit_tariff", {"id": 5, "addons": chosen, "ostempl": ostempl, "recipes": recipes}
        )

    @rule(
        kind=st.sampled_from(CALL_FAULTS + FEED_FAULTS),
        times=st.integers(1, 3),
        func=st.sampled_from([None, None, "itemevent", "*.order.param", "service.prolong", "vds*"]),
        account=st.sampled_from([None, None, "reseller", "shop"]),
    )
    def seller_fault(self, kind, times, func, account):
        """A fault, now and then aimed at one function (the event feed among them: a lost
        feed reply loses that read's events) or at one account."""
        if kind not in self.faults or (kind in FEED_FAULTS and func not in (None, "itemevent")):
            return
        if kind == "drop_events":
            self.h.drop_events_used = True
        aim = {key: value for key, value in (("func", func), ("account", account)) if value}
        self.h.side.fault(kind, times, **aim)

    # -- the engine's process ----------------------------------------------------------------

    @rule(point=st.sampled_from(CRASH_POINTS), after=st.integers(0, 2))
    def arm_crash(self, point, after):
        crash_at(self.h.engine, point, after)

    @rule(point=st.sampled_from(CALL_CRASH_POINTS))
    def arm_call_crash(self, point):
        """The engine dies at the next call that changes the seller's state (before it goes
        out, or right after its reply came), or right after its next read of the feed or of
        services, as a scenario's `crash:` does."""
        self.h.watch.arm(point, any_call=False)

    @rule()
    def a_second_engine_runs_the_cron(self):
        """Another engine process on the same database (a CLI beside the daemon) runs a tick:
        it must leave alone what the first has claimed, and never send anything twice."""
        if self.second is None:
            self.second = Engine(Store(self.db_path), self.h.open_client)
        try:
            self.second.cron(self.h.now)
        except (Crash, EngineDied) as crash:
            event(f"second engine: died at {crash}")
            self.second.store.close()
            self.second = None

    # -- the clock ---------------------------------------------------------------------------

    @rule(minutes=st.sampled_from([1, 4, 5, 15, 45, 180]))
    def wait_minutes(self, minutes):
        self.wait(timedelta(minutes=minutes))

    @rule(days=st.sampled_from([1, 3, 10, 31, 95, 370]))
    def wait_days(self, days):
        self.wait(timedelta(days=days))

    def wait(self, duration: timedelta) -> None:
        until = self.h.now + duration
        for _ in range(20):
            try:
                self.h.advance(until)  # the harness skips the idle ticks itself
                return
            except (Crash, EngineDied) as crash:
                event(f"wait: the engine died at {crash}")
                self.restart()
        raise AssertionError("the engine kept crashing")

    # -- checks ------------------------------------------------------------------------------

    @rule()
    def drain_and_check_converged(self):
        self.check_converged_after_drain()

    def check_converged_after_drain(self) -> None:
        self.h.engine.crash_point = lambda name: None
        self.h.watch.disarm()
        found = invariants.converged(self.h)
        assert not found, "\n".join(found)
        found = invariants.operations_settle(self.h)
        assert not found, "\n".join(found)
        found = invariants.tariff_sync_converges(self.h)
        assert not found, "\n".join(found)
        assert_invariants(self.h)

    @invariant()
    def named_invariants_hold(self):
        if self.h is not None:
            assert_invariants(self.h)

    @invariant()
    def every_operation_is_in_a_known_state_with_its_reason(self):
        if self.h is None:
            return
        for op in self.h.store.operations():
            assert op.state in (RUNNING, MANUAL, FAILED, "done"), op
            if op.state == FAILED:
                assert op.error_type, f"operation {op.id} failed without a reason"
            if op.state == RUNNING:
                due = op.due_at()
                assert due is not None and due <= self.h.now + timedelta(minutes=30), op

    @invariant()
    def no_balance_is_negative(self):
        if self.h is None:
            return
        for client in self.h.store.clients():
            assert client.balance >= 0, client
        for account in self.h.seller.accounts.values():
            assert account.balance >= 0, account


ResellingMachine.TestCase.settings = scaled(examples=3, steps=1)
test_the_engine_and_the_seller_agree_in_process = ResellingMachine.TestCase


class ResellingOverSocket(ResellingMachine):
    """The same machine over a real local socket (waitress); slow replies cost real seconds."""

    http = True
    faults = ("down", "error", "lose_reply") + FEED_FAULTS


ResellingOverSocket.TestCase.settings = scaled(examples=1, steps=1)
test_the_engine_and_the_seller_agree_over_a_socket = ResellingOverSocket.TestCase
