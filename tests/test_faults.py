"""The engine survives every fault of the seller, at every call, and the event feed's tricks.

A fault is put on exactly one call: the n-th call of an action (and of the retries and polls
that follow it), for every n. Down, 500 and too slow may hit any call; a lost reply hits the
calls that change the seller's state. Whatever call it hits: no order placed twice, no money
taken twice, every operation ends done or failed with a reason, nothing waits forever, and a
synchronous step either works or fails with `unavailable` having changed nothing.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reseller.client import SellerClient
from reseller.engine import Engine
from reseller.errors import ResellerError
from scenarios import invariants
from scenarios.harness import Harness, changes_seller_state
from tests.end_to_end import PASSWORD, assert_invariants, digest, harness

CALL_FAULTS = ("down", "error", "slow")
AFTERWARDS = timedelta(minutes=10)  # the retries and polls an action's faults may also meet


class FaultAtCall:
    """The engine's HTTP session, putting one simulator fault on exactly its n-th counted call."""

    def __init__(self, h: Harness, kind: str, n: int, span: int = 1):
        """`n` counts from 1 (0 only counts the calls); `span` calls in a row from there."""
        self.h, self.kind, self.n, self.span = h, kind, n, span
        self.counted = 0
        self.hit = False

    def post(self, url, data=None, **kwargs):
        counts = self.kind != "lose_reply" or changes_seller_state(data or {})
        self.counted += counts
        armed = counts and self.n >= 1 and self.n <= self.counted < self.n + self.span
        faults = self.h.seller.faults
        if armed:
            faults.add(self.kind, 1)
        try:
            return self.h.session.post(url, data=data, **kwargs)
        finally:
            if armed:
                self.hit = faults.counts[self.kind] == 0
                faults.clear()

    def __getattr__(self, name):
        return getattr(self.h.session, name)


def engine_through(h: Harness, http: FaultAtCall) -> None:
    """Give the harness an engine (on the same database) whose calls go through `http`."""
    h.engine = Engine(
        h.store, lambda url, login, password: SellerClient(url, login, password, http, h.timeout)
    )


# -- the actions, each from a state set up through the engine ----------------------------


def linked_service(h: Harness, **order) -> int:
    """A service of alice's, ordered, set up and known to be active."""
    if not h.store.tariff("5-vds-1"):
        h.engine.import_tariff("seller", 5, h.now)
    item = h.engine.order(
        "alice", "5-vds-1", order.pop("period", 1), h.now, ostempl="debian-12", **order
    )
    h.wait(timedelta(minutes=5))
    return item


def order_service(h):
    h.engine.import_tariff("seller", 5, h.now)
    return lambda: h.engine.order(
        "alice", "5-vds-1", 3, h.now, ostempl="debian-12", addons={"ram": 2048}
    )


def prolong_service(h):
    item = linked_service(h)
    return lambda: h.engine.prolong(item, 12, h.now)


def suspend_service(h):
    item = linked_service(h)
    return lambda: h.engine.change_status(item, "suspend", h.now)


def resume_service(h):
    item = linked_service(h)
    h.engine.change_status(item, "suspend", h.now)
    h.wait(timedelta(minutes=5))
    return lambda: h.engine.change_status(item, "resume", h.now)


def delete_service(h):
    item = linked_service(h)
    return lambda: h.engine.change_status(item, "close", h.now)


def change_addons(h):
    item = linked_service(h)
    return lambda: h.engine.set_addons(item, {"ram": 4096, "backup": "on"}, h.now)


def restart_refused_order(h):
    h.seller.accounts["reseller"].balance = 0  # as if the reseller had spent it
    h.initial_seller_balances["reseller"] = 0
    h.engine.import_tariff("seller", 5, h.now)
    item = h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12")
    h.side.act("topup", {"account": "reseller", "amount": 50})
    return lambda: h.engine.restart(item, h.now)


OPERATIONS = {
    "order": order_service,
    "prolong": prolong_service,
    "suspend": suspend_service,
    "resume": resume_service,
    "delete": delete_service,
    "set_addons": change_addons,
    "restart": restart_refused_order,
}


def import_tariff(h):
    return lambda: h.engine.import_tariff("seller", 5, h.now)


def sync_tariff(h):
    h.engine.import_tariff("seller", 5, h.now)
    h.side.act(
        "edit_tariff",
        {"id": 5, "ostempl": ["ubuntu-24"], "addons": {"disk": {"id": 14, "included": 20}}},
    )
    return lambda: h.engine.sync_tariff("5-vds-1", h.now)


def poll_events(h):
    item = linked_service(h)
    h.side.act("add_ip", {"service": h.store.item(item).remote_id})
    h.side.act("suspend", {"service": h.store.item(item).remote_id})
    return lambda: h.engine.checkevent("seller", h.now)


def reconcile(h):
    first, second = linked_service(h), linked_service(h)
    for item in (first, second):
        h.side.act("add_ip", {"service": h.store.item(item).remote_id})
    h.side.fault("drop_events", 1)
    h.drop_events_used = True
    h.engine.checkevent("seller", h.now)
    return lambda: h.engine.reconcile("seller", h.now)


def list_services(h):
    h.side.act("create_service", {"account": "reseller", "tariff": 5, "period": 1})
    return lambda: h.engine.import_services("seller", "vds", "*", h.now)


def assign_service(h):
    list_services(h)()
    remote = max(h.seller.services)
    return lambda: h.engine.assign(remote, "alice", h.now)


def connect_module(h):
    return lambda: h.engine.connect("second", h.url, "shop", "pw-other-SECRET", [], h.now)


SYNCHRONOUS = {
    "import": import_tariff,
    "sync": sync_tariff,
    "checkevent": poll_events,
    "reconcile": reconcile,
    "import_services": list_services,
    "assign": assign_service,
    "connect": connect_module,
}


def run_with_fault(setup, kind: str, n: int, span: int = 1) -> tuple[Harness, FaultAtCall, object]:
    """Set up, then run the action and ten minutes of cron with the fault from the n-th call."""
    h = harness()
    action = setup(h)
    http = FaultAtCall(h, kind, n, span)
    engine_through(h, http)
    try:
        outcome = action()
    except ResellerError as error:
        outcome = error
    h.wait(AFTERWARDS)
    http.span = 0  # the drain that checks the outcome meets no fault
    return h, http, outcome


def calls_made(setup, kind: str) -> int:
    """How many calls the action and its aftermath make that a `kind` fault could hit."""
    h, http, _ = run_with_fault(setup, kind, 0)
    h.close()
    return http.counted


def settled(h: Harness) -> None:
    """After a drain: the named invariants, every operation ended, both sides agree."""
    for name in ("converged", "operations_settle"):
        problems = invariants.CHECKS[name](h)
        assert not problems, f"{name}: {problems}"
    assert_invariants(h)
    ordered = [s for s in h.seller.services.values() if s.remoteid]
    assert len(ordered) == len({s.remoteid for s in ordered}), "an order was placed twice"


@pytest.mark.parametrize("span", [1, 3], ids=["one call", "three calls in a row"])
@pytest.mark.parametrize("kind", [*CALL_FAULTS, "lose_reply"])
@pytest.mark.parametrize("action", sorted(OPERATIONS))
def test_an_operation_ends_once_whatever_call_the_fault_hits(action, kind, span):
    setup = OPERATIONS[action]
    total = calls_made(setup, kind)
    assert total >= 1
    hits = 0
    for n in range(1, total + 1):
        h, http, outcome = run_with_fault(setup, kind, n, span)
        try:
            assert not isinstance(outcome, ResellerError), f"call {n}: refused {outcome}"
            hits += http.hit
            settled(h)
        except AssertionError as failure:
            raise AssertionError(
                f"{action} with {kind} at call {n} of {total}: {failure}"
            ) from None
        finally:
            h.close()
    assert hits >= 1, f"no {kind} fault ever hit a call of {action}"


@pytest.mark.parametrize("kind", CALL_FAULTS)
@pytest.mark.parametrize("action", sorted(SYNCHRONOUS))
def test_a_synchronous_step_works_or_changes_nothing_whatever_call_the_fault_hits(action, kind):
    setup = SYNCHRONOUS[action]
    total = calls_made(setup, kind)
    failures = 0
    for n in range(1, total + 1):
        h = harness()
        try:
            act = setup(h)
            http = FaultAtCall(h, kind, n)
            engine_through(h, http)
            before = digest(h)
            try:
                act()
            except ResellerError as error:
                failures += 1
                assert error.type == "unavailable", f"call {n}: {error.type}: {error.message}"
                assert digest(h) == before, f"call {n}: failed, but changed state"
            h.wait(AFTERWARDS)
            http.span = 0
            settled(h)
        finally:
            h.close()
    assert failures >= 1, f"no {kind} fault ever made {action} fail"


def test_an_operation_the_seller_never_answers_gives_up_after_a_day_with_its_reason():
    h = harness()
    try:
        h.engine.import_tariff("seller", 5, h.now)
        h.side.fault("down", 100_000)
        item = h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12")
        h.wait(timedelta(hours=23))
        assert h.store.latest_operation(item).state == "running"
        h.wait(timedelta(hours=2))
        operation = h.store.latest_operation(item)
        assert operation.state == "failed"
        assert operation.error_type == "unavailable"
        assert "24 hours" in operation.error_msg
        assert not h.seller.services
        settled(h)
    finally:
        h.close()


def test_a_slow_seller_over_a_socket_is_retried_and_the_order_placed_once():
    h = harness(http=True)
    try:
        h.timeout, h.seller.slow_seconds = 0.3, 0.5  # the engine's client is opened after this
        h.engine.import_tariff("seller", 5, h.now)
        h.side.fault("slow", 2)
        item = h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12")
        assert h.store.latest_operation(item).state == "running"
        h.wait(timedelta(minutes=10))
        assert h.store.latest_operation(item).state == "done"
        assert len(h.seller.services) == 1
        settled(h)
    finally:
        time.sleep(h.seller.slow_seconds)  # let the slow replies finish before the server stops
        h.close()


# -- the event feed -------------------------------------------------------------------------

SELLER_CHANGES = st.sampled_from(
    ["suspend", "resume", "add_ip", "remove_ip", "ram", "hostname", "delete"]
)


def seller_change(h: Harness, remote: int, change: str, step: int) -> None:
    """One change by the seller's staff; refusals (resume an active one, say) are fine."""
    body: dict = {"service": remote}
    name = change
    if change == "ram":
        name, body = "set_addon", {**body, "addon": "ram", "value": 1024 * (1 + step % 4)}
    elif change == "hostname":
        name, body = "set_param", {**body, "name": "hostname", "value": f"web{step}"}
    reply = h.session.post(f"{h.url}/_sim/actions/{name}", json=body)
    assert reply.status_code in (200, 409), reply.text


@given(
    changes=st.lists(
        st.tuples(SELLER_CHANGES, st.sampled_from(["duplicate_events", "reorder_events", None])),
        min_size=1,
        max_size=12,
    )
)
def test_duplicated_and_reordered_events_each_change_state_once_in_the_sellers_order(changes):
    h = harness()
    try:
        item = linked_service(h)
        remote = h.store.item(item).remote_id
        statuses = []
        for step, (change, fault) in enumerate(changes):
            seller_change(h, remote, change, step)
            if fault:
                h.side.fault(fault, 1)
            if step % 3 == 2:
                h.engine.checkevent("seller", h.now)
                statuses.append(h.store.item(item).status)
        h.engine.checkevent("seller", h.now)
        applied = [e.event_id for e in h.store.applied_events()]
        assert applied == sorted(applied), "events were applied out of the seller's order"
        assert len(applied) == len(set(applied)), "an event was applied twice"
        assert not any(h.seller.feeds.values())
        problems = invariants.converged(h) + invariants.statuses_move_legally(h)
        assert not problems, problems
    finally:
        h.close()


@given(
    changes=st.lists(SELLER_CHANGES, min_size=1, max_size=8),
    drops=st.integers(1, 3),
)
def test_reconcile_repairs_what_dropped_events_lost(changes, drops):
    h = harness()
    try:
        item = linked_service(h)
        remote = h.store.item(item).remote_id
        h.side.fault("drop_events", drops)
        for step, change in enumerate(changes):
            seller_change(h, remote, change, step)
            h.engine.checkevent("seller", h.now)
        h.engine.reconcile("seller", h.now)
        local, seller = h.store.item(item), h.seller.services[remote]
        assert local.status == seller.status
        assert sorted(local.ips) == sorted(seller.ips)
        assert local.addons["ram"] == str(seller.addons["ram"])
        assert not invariants.converged(h)
        assert not invariants.operations_settle(h)
    finally:
        h.close()


# -- two modules on one seller account ----------------------------------------------------


def test_two_modules_on_one_seller_account_lose_each_others_events_at_the_seller():
    """The simulator shows why the set-up is refused: a feed read by one is empty for the other."""
    h = harness()
    other = Engine(type(h.store)(), h.open_client)
    try:
        other.configure("USD", {"EUR": 1.1})
        other.add_client("carol", 100)
        other.connect("seller", h.url, "reseller", PASSWORD, [], h.now)
        other.import_tariff("seller", 5, h.now)
        h.engine.import_tariff("seller", 5, h.now)
        mine = h.engine.order("alice", "5-vds-1", 1, h.now, ostempl="debian-12")
        remote = h.store.item(mine).remote_id
        h.side.act("suspend", {"service": remote})
        report = other.checkevent("seller", h.now)  # the other reseller polls first
        assert report.fetched >= 2
        assert h.engine.checkevent("seller", h.now).fetched == 0
        assert h.store.item(mine).status == 1, "the events reached the wrong reseller"
        assert h.seller.services[remote].status == 3
    finally:
        h.close()


@pytest.mark.parametrize(
    "url", ["{url}", "{url}/", "{url}/billmgr", "{url}/billmgr/", "{upper}"], ids=str
)
def test_the_engine_refuses_a_second_module_on_one_seller_account_and_changes_nothing(url):
    h = harness()
    try:
        before = digest(h)
        address = url.format(url=h.url, upper=h.url.upper().replace("HTTP://", "http://"))
        with pytest.raises(ResellerError) as refused:
            h.engine.connect("second", address, "reseller", PASSWORD, [], h.now)
        assert refused.value.type == "duplicate_connection"
        assert digest(h) == before
    finally:
        h.close()
