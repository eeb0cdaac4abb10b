"""Exactly once, tried from outside as a user's own faults and processes would (issue 9, "Why"):
nothing ordered or charged twice, no event lost for good, nothing `done` without the seller's
word, nothing of ours given away. Engines keep their database in a file here, so a second
engine (another process, or the one started after a crash) can open it."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
from werkzeug.wrappers import Request, Response

from reseller.client import SellerClient
from reseller.engine import Engine
from reseller.errors import SellerUnavailable
from reseller.model import Operation
from reseller.store import Store
from simulator.app import seller_of
from simulator.transport import in_process_session
from tests.end_to_end import Crash, crash_at
from tests.helpers import PASSWORD, URL, active, order, refused, remote_of

LEASE = timedelta(minutes=3)


class SellerFailingAfterWork:
    """The simulator, except that a call of an armed function is carried out and then answered
    with a `doc.error` (`internal` unless told): a seller that fails after it moved money."""

    def __init__(self, app):
        self.app = app
        self.armed: dict[str, str] = {}

    def arm(self, func: str, error_type: str = "internal") -> None:
        """The next call of `func` (one) does its work and is answered with the error."""
        self.armed[func] = error_type

    def __call__(self, environ, start_response):
        body = Request(environ).get_data()
        environ["wsgi.input"] = io.BytesIO(body)  # the simulator reads the body again
        params = dict(parse_qsl(body.decode())) | Request(environ).args.to_dict()
        error_type = self.armed.pop(params.get("func", ""), None)
        if error_type is None:
            return self.app(environ, start_response)
        Response.from_app(self.app, environ)  # the work is done; its reply never leaves
        failed = (
            f'<?xml version="1.0" encoding="UTF-8"?><doc><error type="{error_type}" object="">'
            "<msg>Internal error: the request could not be completed</msg></error></doc>"
        )
        return Response(failed, mimetype="text/xml")(environ, start_response)


class Gate:
    """Where a held seller call waits: `reached` once it is there, `opened` lets it go on."""

    def __init__(self):
        self.reached, self.opened = threading.Event(), threading.Event()

    def hold(self) -> None:
        self.reached.set()
        if not self.opened.wait(10):
            raise TimeoutError("the test never let the held call go")

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc) -> None:
        self.opened.set()  # a test that failed while holding a call lets it go


def slow_orders(gate: Gate, when: str) -> type[SellerClient]:
    """A seller client whose orders are slow to answer: held at `gate` before the seller has
    the call (`before`), or after the seller carried it out, its reply on the way (`after`)."""

    class SlowOrders(SellerClient):
        def order(self, *args, **kwargs) -> int:
            if when == "before":
                gate.hold()
            remote_id = super().order(*args, **kwargs)
            if when == "after":
                gate.hold()
            return remote_id

    return SlowOrders


def feed_read_then(failure: BaseException) -> type[SellerClient]:
    """A seller client that reads the event feed (the seller empties it as it answers) and
    then fails with `failure` before the engine has the events: it died, or the read timed out
    after the seller had answered."""

    class ReadThenFails(SellerClient):
        def events(self):
            super().events()
            raise failure

    return ReadThenFails


@pytest.fixture
def seller_failing_after_work(sim_app) -> SellerFailingAfterWork:
    return SellerFailingAfterWork(sim_app)


@pytest.fixture
def http(seller_failing_after_work):
    with in_process_session(seller_failing_after_work, URL) as session:
        yield session


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "reseller.db"))
    yield store
    store.close()


@pytest.fixture
def another_engine(store, seller_failing_after_work):
    """`another_engine(client)`: one more engine process on the same database file, with its
    own connection, HTTP session and owner name, talking through a `client` class."""
    started = []

    def start(client: type[SellerClient] = SellerClient) -> Engine:
        session = in_process_session(seller_failing_after_work, URL)
        other = Engine(Store(store.path), lambda url, login, pw: client(url, login, pw, session))
        started.append((other, session))
        return other

    yield start
    for other, session in started:
        other.store.close()
        session.close()


def latest(store, item: int) -> Operation:
    return store.latest_operation(item)


def retry(engine, sim, item: int) -> Operation:
    """Move the clocks to the operation's next try and run the retry job; the operation."""
    sim.to(max(sim.now, latest(engine.store, item).next_try))
    engine.run_due(sim.now)
    return latest(engine.store, item)


def retry_until_it_stops_running(engine, sim, item: int) -> Operation:
    for _ in range(200):
        operation = retry(engine, sim, item)
        if operation.state != "running":
            return operation
    raise AssertionError(f"service {item}'s operation is still running after 200 tries")


def change_password(sim, password: str) -> None:
    """The seller account's password changed at the seller (its owner changed it)."""
    seller_of(sim.app).accounts["reseller"].password = password


def debit_reasons(sim) -> list[str]:
    return [entry["reason"] for entry in sim.debits()]


# -- 1. a lost reply whose look-ups are refused: unknown until looked up, even by restart -------


def test_a_lost_order_whose_look_ups_are_refused_gives_up_unknown_and_its_restart_links_it(
    engine, tariff, sim, store
):
    sim.fault("lose_reply")
    ordered = sim.now
    item = order(engine, sim)
    change_password(sim, "changed-by-its-owner")
    sim.advance("2h")  # the engine's session idles out: every call must log in again

    first = retry(engine, sim, item)
    assert (first.state, first.outcome) == ("running", "unknown")
    assert first.error_msg.startswith("auth: ")
    gave_up = retry_until_it_stops_running(engine, sim, item)

    assert (gave_up.state, gave_up.outcome, gave_up.error_type) == (
        "failed",
        "unknown",
        "unavailable",
    )
    assert gave_up.error_msg.startswith("gave up after 24 hours: auth: ")
    assert sim.now - ordered >= timedelta(hours=24)
    change_password(sim, PASSWORD)
    engine.restart(item, sim.now)

    # its look-up read the service set up: the seller's word, so done (the event still comes)
    assert latest(store, item).state == "done"
    (remote,) = sim.services()
    assert (remote["remoteid"], store.item(item).remote_id) == (str(item), remote["id"])
    assert len(sim.calls("vds.order.param")) == 1
    assert debit_reasons(sim) == ["order"]
    assert [e.reason for e in store.expenses()] == ["order"]
    engine.checkevent("seller", sim.now)
    assert (latest(store, item).state, store.item(item).status) == ("done", 2)


def test_a_lost_prolongation_whose_look_ups_are_refused_is_found_by_its_restart_not_sent_again(
    engine, tariff, sim, store
):
    item = active(engine, sim)
    sim.fault("lose_reply")
    engine.prolong(item, 1, sim.now)
    change_password(sim, "changed-by-its-owner")
    sim.advance("2h")

    gave_up = retry_until_it_stops_running(engine, sim, item)

    assert (gave_up.kind, gave_up.state, gave_up.outcome) == ("prolong", "failed", "unknown")
    change_password(sim, PASSWORD)
    engine.restart(item, sim.now)
    assert latest(store, item).state == "done"  # its look-up read the new expiry
    assert len(sim.calls("service.prolong")) == 1
    assert debit_reasons(sim) == ["order", "prolong"]
    assert sim.service(remote_of(engine, item))["expires"] == "2026-03-01"
    assert [e.reason for e in store.expenses()] == ["order", "prolong"]
    engine.checkevent("seller", sim.now)
    assert (latest(store, item).state, store.item(item).expiredate) == ("done", "2026-03-01")


# -- 2. two engines on one database never send one operation ------------------------------------


def test_an_order_another_engine_is_sending_is_left_alone_by_the_retry_job_and_sent_once(
    engine, tariff, sim, store, another_engine
):
    gate = Gate()
    cli = another_engine(slow_orders(gate, "before"))
    with ThreadPoolExecutor(1) as pool, gate:
        ordering = pool.submit(cli.order, "alice", tariff, 1, sim.now, ostempl="debian-12")
        assert gate.reached.wait(10), ordering.exception(0.1)
        (operation,) = store.operations()
        assert (operation.outcome, operation.owner) == ("unknown", cli.owner)

        assert engine.run_due(sim.now) == []
        assert engine.run_due(sim.now + LEASE - timedelta(seconds=1)) == []
        assert engine.run_operation(operation.id, sim.now) == "running"
        engine.checkevent("seller", sim.now)  # the daemon's poll is not blocked meanwhile
        assert sim.calls("vds.order.param") == []
        gate.opened.set()
        item = ordering.result(timeout=10)

    assert latest(store, item).state == "manual"
    assert len(sim.services()) == 1 and len(sim.calls("vds.order.param")) == 1
    assert debit_reasons(sim) == ["order"]


def test_an_order_whose_engine_died_mid_attempt_is_looked_up_once_its_lease_ends_not_resent(
    engine, tariff, sim, store, another_engine
):
    cli = another_engine()
    crash_at(cli, "after_seller_accepted")
    with pytest.raises(Crash):
        cli.order("alice", tariff, 1, sim.now, ostempl="debian-12")
    cli.store.close()
    (operation,) = store.operations()
    assert (operation.state, operation.owner) == ("running", cli.owner)

    assert engine.run_due(sim.now) == []
    assert engine.next_due() == operation.lease_until == sim.now + LEASE
    sim.to(operation.lease_until - timedelta(seconds=1))
    assert engine.run_due(sim.now) == []
    sim.to(operation.lease_until)
    assert engine.run_due(sim.now) == [operation.id]

    taken_over = store.operation(operation.id)
    assert (taken_over.state, taken_over.owner, taken_over.attempts) == ("done", None, 2)
    (remote,) = sim.services()
    assert store.item(operation.item).remote_id == remote["id"]
    assert len(sim.calls("vds.order.param")) == 1
    assert debit_reasons(sim) == ["order"]


def test_a_claim_taken_over_after_its_lease_is_looked_up_and_the_late_reply_changes_nothing(
    engine, tariff, sim, store, another_engine
):
    gate = Gate()
    cli = another_engine(slow_orders(gate, "after"))
    with ThreadPoolExecutor(1) as pool, gate:
        ordering = pool.submit(cli.order, "alice", tariff, 1, sim.now, ostempl="debian-12")
        assert gate.reached.wait(10), ordering.exception(0.1)
        (operation,) = store.operations()
        sim.to(operation.lease_until)
        assert engine.run_due(sim.now) == [operation.id]
        (remote,) = sim.services()
        assert store.item(operation.item).remote_id == remote["id"]
        gate.opened.set()
        assert ordering.result(timeout=10) == operation.item

    after = store.operation(operation.id)
    assert (after.state, after.owner) == ("done", None)
    assert store.item(operation.item).remote_id == remote["id"]
    assert len(sim.calls("vds.order.param")) == 1 and len(store.tasks()) == 1


def test_two_engines_autoprolonging_at_once_prolong_a_service_once_for_its_expiry(
    engine, tariff, sim, store, another_engine
):
    """Two daemons on one database (one started by hand beside the service's): the second's
    autoprolong comes just after the first decided the service needs a prolongation."""
    item = active(engine, sim, autoprolong=True)
    sim.to(datetime(2026, 1, 31))
    other = another_engine()
    with ThreadPoolExecutor(1) as pool:
        others_run = []

        def the_other_autoprolongs(point: str) -> None:
            if point == "autoprolong_decided" and not others_run:
                others_run.append(pool.submit(other.autoprolong, sim.now))
                wait(others_run, timeout=0.3)  # done by then, unless this engine holds it off

        engine.crash_point = the_other_autoprolongs
        mine = engine.autoprolong(sim.now)
        theirs = others_run[0].result(timeout=10)

    assert sorted(mine + theirs) == [item]
    assert [op.kind for op in store.operations(item)] == ["open", "prolong"]
    assert debit_reasons(sim) == ["order", "prolong"]
    assert [e.reason for e in store.expenses()] == ["order", "prolong"]
    assert sim.service(remote_of(engine, item))["expires"] == "2026-03-01"


# -- 3. a poll lost after the seller emptied its feed is reconciled, not lost for good --------


@pytest.mark.parametrize(
    "failure",
    [Crash("after the feed answered"), SellerUnavailable("no reply from the seller within 10s")],
    ids=["engine killed", "timed out"],
)
def test_a_poll_cut_off_between_the_sellers_reply_and_its_commit_is_reconciled_by_the_next(
    engine, tariff, sim, store, another_engine, failure
):
    item = order(engine, sim)  # its `open` event waits in the feed
    polling = another_engine(feed_read_then(failure))
    with pytest.raises(type(failure)):
        polling.checkevent("seller", sim.now)
    assert store.poll_is_open(store.module("seller").id)
    assert engine.checkevent("seller", sim.now).busy, "its mark's lease still runs"

    sim.advance("5m")
    report = engine.checkevent("seller", sim.now)

    assert report.fetched == 0, "the seller's feed was emptied by the cut-off read"
    assert f"service {item}: status ordered -> active" in report.reconciled
    assert store.item(item).status == 2 and store.item(item).ips
    assert latest(store, item).state == "done"
    assert not store.poll_is_open(store.module("seller").id)


def test_a_lost_poll_after_a_lost_order_reply_links_the_service_once_and_activates_it(
    engine, tariff, sim, store
):
    sim.fault("lose_reply")
    item = order(engine, sim)
    sim.post("/faults", {"kind": "lose_reply", "times": 1, "func": "itemevent"})
    with pytest.raises(SellerUnavailable):
        engine.checkevent("seller", sim.now)

    report = engine.checkevent("seller", sim.now)

    (remote,) = sim.services()
    assert f"service {item}: linked to seller service {remote['id']}" in report.reconciled
    assert (store.item(item).remote_id, store.item(item).status) == (remote["id"], 2)
    assert latest(store, item).state == "done"
    sim.advance("1h")
    assert engine.run_due(sim.now) == []
    assert len(sim.calls("vds.order.param")) == 1 and debit_reasons(sim) == ["order"]


# -- 4. done only on the seller's word ----------------------------------------------------------


def suspended_with_its_event_lost(engine, sim) -> tuple[int, int]:
    """An active service the seller suspended at our asking, whose suspend event was lost:
    here it still looks active. The service and its suspension."""
    item = active(engine, sim)
    suspension = engine.change_status(item, "suspend", sim.now)
    sim.fault("drop_events")
    engine.checkevent("seller", sim.now)
    assert engine.store.item(item).status == 2
    assert sim.service(remote_of(engine, item))["status"] == "suspended"
    return item, suspension


def test_a_resume_that_local_state_already_looks_done_for_is_sent_and_done_only_by_its_event(
    engine, tariff, sim, store
):
    item, _ = suspended_with_its_event_lost(engine, sim)

    resume = engine.change_status(item, "resume", sim.now)

    assert len(sim.calls("vds.resume")) == 1
    assert store.operation(resume).state == "manual"
    assert sim.service(remote_of(engine, item))["status"] == "active"
    engine.checkevent("seller", sim.now)
    assert store.operation(resume).state == "done"


@pytest.mark.parametrize("resume_event", ["applied", "lost too"])
def test_reconcile_completes_a_suspension_whose_event_was_lost_though_a_resume_followed_it(
    engine, tariff, sim, store, resume_event
):
    """The seller resumes only a suspended service: its accepting the resume is its word that
    the suspension happened, though the service shows active again."""
    item, suspension = suspended_with_its_event_lost(engine, sim)
    resume = engine.change_status(item, "resume", sim.now)
    if resume_event == "lost too":
        sim.fault("drop_events")
    engine.checkevent("seller", sim.now)

    report = engine.reconcile("seller", sim.now)

    # by the resume's event, or else by reconcile, which then says so
    assert [store.operation(op).state for op in (suspension, resume)] == ["done", "done"], report
    if resume_event == "lost too":
        assert f"service {item}: operation {suspension} (suspend) done" in report
    assert store.item(item).status == 2
    assert sim.service(remote_of(engine, item))["status"] == "active"
    assert engine.reconcile("seller", sim.now) == []


# -- 5. nothing of ours is given to anyone else -------------------------------------------------


def ours_made_by(engine, sim, store, state: str) -> int:
    """One of our services whose order ended in `state`: done (set up), manual (accepted,
    awaiting its event) or failed (the seller refused it for lack of money)."""
    if state == "failed":
        seller_of(sim.app).accounts["reseller"].balance = Decimal(0)
        item = order(engine, sim)
        seller_of(sim.app).accounts["reseller"].balance = Decimal(100)
    else:
        item = order(engine, sim)
        if state == "done":
            engine.checkevent("seller", sim.now)
    assert latest(store, item).state == state
    return item


@pytest.mark.parametrize("state", ["done", "manual", "failed"])
def test_a_seller_service_carrying_our_remoteid_is_refused_whatever_became_of_our_order(
    engine, tariff, sim, store, state
):
    item = ours_made_by(engine, sim, store, state)
    copy = sim.act("create_service", account="reseller", tariff=5, remoteid=str(item))["id"]

    assert [row["remote_id"] for row in engine.import_services("seller", "vds", "*", sim.now)] == []
    with refused(store, "exists") as caught:
        engine.assign(copy, "bob", sim.now)

    assert f"ordered by this reseller for service {item}" in caught.value.message


def test_a_copy_of_a_hosting_account_whose_events_were_lost_is_refused_once_reconciled(
    engine, module, sim, store
):
    """The username is learnt from the seller: by its set-up event, or, that lost, by reconcile."""
    engine.import_tariff("seller", 8, sim.now)
    item = order(engine, sim, tariff="8-web-1", domain_name="shop.example")
    sim.fault("drop_events")
    engine.checkevent("seller", sim.now)
    engine.reconcile("seller", sim.now)
    username = sim.service(remote_of(engine, item))["params"]["username"]
    copy = sim.act("create_service", account="reseller", tariff=8, domain="copy.example")["id"]
    sim.act("set_param", service=copy, name="username", value=username)

    assert store.item(item).params["username"] == username
    assert engine.import_services("seller", "vhost", "*", sim.now) == []
    with refused(store, "exists") as caught:
        engine.assign(copy, "bob", sim.now)

    assert f"service {item} already has username {username}" in caught.value.message


def test_a_copy_of_a_licence_we_ordered_is_refused_before_the_seller_said_anything_of_it(
    engine, module, sim, store
):
    """A licence's IP and name are what our own order sent: no event is needed to know them."""
    engine.import_tariff("seller", 9, sim.now)
    sim.fault("lose_reply")
    item = order(engine, sim, tariff="9-isp-lite", ip="10.0.0.5", licname="isp-1")
    copy = sim.act("create_service", account="reseller", tariff=9, ip="10.0.0.5", licname="isp-1")
    assert store.item(item).remote_id is None

    with refused(store, "exists") as caught:
        engine.assign(copy["id"], "bob", sim.now)

    assert f"service {item} already has licence isp-1 on 10.0.0.5" in caught.value.message
    assert retry(engine, sim, item).state == "done"
    assert len(sim.calls("soft.order.param")) == 1


# -- 6. an error reply after the seller moved money is not a refusal -----------------------------


def sent_to_change(sim, func: str) -> int:
    """How many calls of `func` asked the seller to change something (an edit's reads don't)."""
    return len(
        [c for c in sim.calls(func) if func.endswith(".order.param") or c["params"].get("sok")]
    )


def test_an_order_answered_with_an_internal_error_is_looked_up_and_found_not_refused(
    engine, tariff, sim, store, seller_failing_after_work
):
    seller_failing_after_work.arm("vds.order.param", "internal")

    item = order(engine, sim)

    operation = latest(store, item)
    assert (operation.state, operation.outcome) == ("running", "unknown")
    assert operation.error_msg.startswith("internal: ")
    assert retry(engine, sim, item).state == "done"
    (remote,) = sim.services()
    assert store.item(item).remote_id == remote["id"]
    assert sent_to_change(sim, "vds.order.param") == 1
    assert debit_reasons(sim) == ["order"]


@pytest.mark.parametrize(
    ("func", "do", "reason"),
    [
        ("service.prolong", lambda e, item, now: e.prolong(item, 1, now), "prolong"),
        ("vds.edit", lambda e, item, now: e.set_addons(item, {"backup": "on"}, now), "addon"),
    ],
    ids=["prolong", "add-on change"],
)
def test_a_change_answered_with_an_internal_error_is_looked_up_and_found_not_refused(
    engine, tariff, sim, store, seller_failing_after_work, func, do, reason
):
    item = active(engine, sim)
    seller_failing_after_work.arm(func, "internal")

    do(engine, item, sim.now)

    operation = latest(store, item)
    assert (operation.state, operation.outcome) == ("running", "unknown")
    assert retry(engine, sim, item).state == "done"
    assert sent_to_change(sim, func) == 1
    assert debit_reasons(sim) == ["order", reason]
