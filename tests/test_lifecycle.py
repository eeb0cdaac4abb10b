"""The operation lifecycle (`reseller.model.Operation`) on values alone: every named transition,
what it leaves, the transitions it refuses, and the one rule that tells from the seller's
service whether an operation's work is done. No store, no HTTP."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from reseller.client import RemoteService
from reseller.model import (
    ACCEPTED,
    ACTIVE,
    CLOSE,
    DELETED,
    DONE,
    FAILED,
    KINDS,
    MANUAL,
    NOTHING,
    OPEN,
    ORDERED,
    PROLONG,
    RESUME,
    RUNNING,
    SETPARAM,
    SUSPEND,
    SUSPENDED,
    TRANSITIONS,
    UNKNOWN,
    LifecycleError,
    Operation,
    Tariff,
)
from tests.test_model import RAM, TARIFF

NOW = datetime(2026, 1, 1, 12)
MINUTE = timedelta(minutes=1)
LEASE = timedelta(minutes=3)

# -- which test exercises which transition of `model.TRANSITIONS` ----------------------------

# The method of `Operation` that carries each transition the lifecycle's table names.
CARRIED_BY = {
    "claim": "claim",
    "send": "send",
    "reply unknown": "reply_unknown",
    "look up": "shown_sent_by",
    "accepted": "accept",
    "refused": "refuse",
    "confirmed by event": "confirm",
    "confirmed by reconcile": "confirm",
    "given up": "reply_unknown",
    "restart": "restart",
}
EXERCISED: dict[str, list[str]] = {}


def exercises(name: str):
    """Mark a test as exercising the transition `name`, and fail it if it never calls the
    method that carries it: the table check below then counts only tests that really do."""
    method = CARRIED_BY[name]

    def mark(test):
        EXERCISED.setdefault(name, []).append(test.__name__)

        @functools.wraps(test)
        def run(*args, **kwargs):
            calls = []
            original = getattr(Operation, method)

            def counted(self, *a, **k):
                calls.append(method)
                return original(self, *a, **k)

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(Operation, method, counted)
                test(*args, **kwargs)
            assert calls, f"{test.__name__} is marked as exercising {name!r} but never calls it"

        return run

    return mark


def test_every_transition_the_lifecycle_table_names_is_exercised_by_a_test():
    assert sorted(EXERCISED) == sorted(TRANSITIONS)
    assert all(callable(getattr(Operation, m)) for m in CARRIED_BY.values())


# -- values ------------------------------------------------------------------------------------


def operation(kind: str = OPEN, **fields) -> Operation:
    """A new operation as the store hands it out: running, due at once, never attempted."""
    return Operation(1, 7, kind, **({"next_try": NOW, "created": NOW, "updated": NOW} | fields))


def claimed(kind: str = OPEN, owner: str = "engine-a", now: datetime = NOW, **fields):
    return operation(kind, **fields).claim(owner, now)


def sent(kind: str = OPEN, now: datetime = NOW, **params) -> Operation:
    """An operation claimed and marked sent: its call is going out."""
    return claimed(kind, now=now).send(now, **params)


def service(
    status: int = ACTIVE, expires: date | None = date(2026, 3, 1), addons=None
) -> RemoteService:
    """The seller's service as `vds.edit` reads it back."""
    return RemoteService(
        id=50,
        type="vds",
        name="vds50",
        tariff=5,
        period=1,
        status=status,
        expires=expires,
        remoteid="7",
        addons={11: "1024", 12: "off", 13: "1301"} if addons is None else addons,
        ips=["10.0.0.1"],
    )


def released(op: Operation) -> bool:
    return op.owner is None and op.lease_until is None


# -- claim -----------------------------------------------------------------------------------


@exercises("claim")
def test_a_claim_takes_the_operation_for_its_owner_for_three_minutes_and_counts_an_attempt():
    new = operation()

    taken = new.claim("engine-a", NOW)

    assert (taken.owner, taken.lease_until) == ("engine-a", NOW + LEASE)
    assert (taken.state, taken.outcome, taken.attempts) == (RUNNING, NOTHING, 1)
    assert released(new) and new.attempts == 0, "a transition changed the value in place"


@exercises("claim")
def test_a_claimed_operation_cannot_be_claimed_again_before_its_lease_ends():
    taken = claimed(owner="engine-a")

    for when in (NOW, NOW + LEASE - timedelta(seconds=1)):
        assert not taken.claimable(when)
        with pytest.raises(LifecycleError):
            taken.claim("engine-b", when)
        with pytest.raises(LifecycleError):
            taken.claim("engine-a", when)  # nor by its own owner's retry job
    taken_over = taken.claim("engine-b", NOW + LEASE)
    assert (taken_over.owner, taken_over.attempts) == ("engine-b", 2)
    assert taken_over.lease_until == NOW + 2 * LEASE


@exercises("claim")
def test_an_operation_not_yet_due_cannot_be_claimed_until_its_retry_time():
    waiting = operation(next_try=NOW + 5 * MINUTE)

    assert not waiting.claimable(NOW + 4 * MINUTE)
    with pytest.raises(LifecycleError):
        waiting.claim("engine-a", NOW + 4 * MINUTE)
    assert waiting.claim("engine-a", NOW + 5 * MINUTE).owner == "engine-a"


@exercises("claim")
@pytest.mark.parametrize("state", [FAILED, MANUAL, DONE])
def test_an_operation_that_is_not_running_cannot_be_claimed(state):
    ended = operation(state=state)

    assert not ended.claimable(NOW + timedelta(days=1))
    with pytest.raises(LifecycleError):
        ended.claim("engine-a", NOW + timedelta(days=1))


def test_a_running_operation_is_claimable_once_due_and_not_claimed_by_a_live_owner():
    assert operation(next_try=None).claimable(NOW)
    assert operation(next_try=NOW).claimable(NOW)
    assert not operation(next_try=NOW + MINUTE).claimable(NOW)
    # a claim whose lease ran out: its owner died mid-attempt
    assert operation(owner="dead", lease_until=NOW).claimable(NOW)
    assert not operation(owner="alive", lease_until=NOW + MINUTE).claimable(NOW)


# -- send ------------------------------------------------------------------------------------


@exercises("send")
def test_sending_leaves_the_outcome_unknown_keeps_the_claim_and_adds_what_a_look_up_needs():
    taken = claimed(PROLONG, params={"period": 1})

    going = taken.send(NOW, before="2026-02-01")

    assert (going.state, going.outcome) == (RUNNING, UNKNOWN)
    assert (going.owner, going.lease_until) == (taken.owner, taken.lease_until)
    assert going.params == {"period": 1, "before": "2026-02-01"}
    assert going.must_look_up and not taken.must_look_up


@exercises("send")
def test_sending_without_a_claim_is_refused():
    unclaimed = operation()
    after_reply = sent().reply_unknown("timeout", NOW)

    for op in (unclaimed, after_reply, operation(state=FAILED, owner="engine-a")):
        with pytest.raises(LifecycleError):
            op.send(NOW)


# -- reply unknown, its backoff, given up --------------------------------------------------------


@exercises("reply unknown")
def test_a_reply_that_proves_nothing_leaves_the_outcome_unknown_releases_and_retries_a_minute_on():
    after = sent().reply_unknown("no reply within 10s", NOW)

    assert (after.state, after.outcome) == (RUNNING, UNKNOWN)
    assert released(after)
    assert (after.failures, after.first_failure, after.next_try) == (1, NOW, NOW + MINUTE)
    assert (after.error_type, after.error_msg) == ("unavailable", "no reply within 10s")
    assert after.must_look_up and after.due_at() == NOW + MINUTE


@exercises("reply unknown")
def test_a_read_that_failed_before_anything_was_sent_leaves_the_outcome_nothing():
    after = claimed(PROLONG).reply_unknown("cannot reach the seller", NOW)

    assert (after.state, after.outcome) == (RUNNING, NOTHING)
    assert not after.must_look_up


@exercises("reply unknown")
def test_retries_after_unknown_replies_wait_one_minute_doubling_to_thirty():
    op, now, waits = sent(), NOW, []
    for _ in range(8):
        op = op.reply_unknown("down", now)
        waits.append((op.next_try - now) // MINUTE)
        now = op.next_try
        op = op.claim("engine-a", now)

    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
    assert op.first_failure == NOW, "the first failure of the run is kept"


@exercises("given up")
def test_an_operation_gives_up_after_24_hours_of_unknown_replies_with_its_outcome_unknown():
    failing = sent().reply_unknown("down", NOW)
    almost = NOW + timedelta(hours=23, minutes=58)

    still = failing.claim("engine-a", almost).reply_unknown("down", almost)
    over = still.claim("engine-a", NOW + timedelta(hours=24))
    given_up = over.reply_unknown("down", NOW + timedelta(hours=24))

    assert (still.state, still.outcome) == (RUNNING, UNKNOWN)
    assert (given_up.state, given_up.outcome) == (FAILED, UNKNOWN)
    assert given_up.error_type == "unavailable"
    assert given_up.error_msg == "gave up after 24 hours: down"
    assert released(given_up) and given_up.due_at() is None
    assert not given_up.claimable(NOW + timedelta(days=2))
    assert given_up.must_look_up, "what it may have done is still to be looked up"


# -- accepted, refused ---------------------------------------------------------------------------


@exercises("accepted")
def test_an_accepted_operation_waits_for_the_sellers_word_in_manual_with_its_errors_cleared():
    retried = sent().reply_unknown("down", NOW).claim("engine-a", NOW + MINUTE)

    yes = retried.accept(NOW + MINUTE)

    assert (yes.state, yes.outcome, yes.accepted) == (MANUAL, ACCEPTED, True)
    assert (yes.error_type, yes.error_msg, yes.failures) == (None, None, 0)
    assert released(yes) and yes.awaiting_seller and yes.due_at() is None


@exercises("refused")
def test_a_refusal_of_a_call_that_was_sent_proves_the_seller_did_nothing():
    no = sent().refuse("not_enough_money", "insufficient funds", NOW)

    assert (no.state, no.outcome) == (FAILED, NOTHING)
    assert (no.error_type, no.error_msg) == ("not_enough_money", "insufficient funds")
    assert released(no) and not no.awaiting_seller and not no.must_look_up


@exercises("refused")
def test_a_refusal_before_sending_keeps_what_an_earlier_attempt_may_have_done_unknown():
    maybe_done = sent(SETPARAM).reply_unknown("lost reply", NOW).claim("engine-a", NOW + MINUTE)
    never_sent = claimed(SETPARAM)

    refused_again = maybe_done.refuse("value", "add-on gone", NOW + MINUTE, sent=False)
    refused_first = never_sent.refuse("value", "add-on gone", NOW, sent=False)

    assert (refused_again.state, refused_again.outcome) == (FAILED, UNKNOWN)
    assert (refused_first.state, refused_first.outcome) == (FAILED, NOTHING)
    assert released(refused_again) and released(refused_first)


# -- confirmed by event, confirmed by reconcile --------------------------------------------------


@exercises("confirmed by event")
def test_an_expire_event_confirms_the_prolongation_sent_from_the_expiry_before_it():
    waiting = sent(PROLONG, period=1, before="2026-02-01").accept(NOW)

    assert waiting.completes_prolongation("2026-03-01", 1)
    done = waiting.confirm(NOW + 5 * MINUTE)

    assert (done.state, done.outcome) == (DONE, ACCEPTED)
    assert released(done) and not done.awaiting_seller
    assert not done.completes_prolongation("2026-03-01", 1), "an event confirms it once"


@exercises("confirmed by event")
def test_an_event_confirms_an_operation_whose_reply_was_lost():
    lost = sent().reply_unknown("connection reset", NOW)

    done = lost.confirm(NOW + 5 * MINUTE)

    assert (done.state, done.outcome, done.error_type) == (DONE, ACCEPTED, None)
    assert done.next_try is not None and done.due_at() is None


@exercises("confirmed by reconcile")
@pytest.mark.parametrize("kind", [OPEN, SUSPEND])
def test_reconcile_confirms_what_the_sellers_service_shows_done(kind):
    waiting = sent(kind).accept(NOW)
    seller = service(SUSPENDED)

    assert waiting.shown_done_by(seller, TARIFF)
    assert waiting.confirm(NOW).state == DONE


@exercises("confirmed by reconcile")
def test_confirming_an_operation_never_sent_or_already_ended_is_refused():
    for op in (
        operation(),  # new
        claimed(),  # claimed, not yet sent
        sent().refuse("value", "bad", NOW),  # refused
        sent().accept(NOW).confirm(NOW),  # confirmed already
        operation().hold_by_hand(NOW),  # held for staff: nothing was sent
    ):
        with pytest.raises(LifecycleError):
            op.confirm(NOW)


# -- restart ---------------------------------------------------------------------------------


@exercises("restart")
def test_a_restart_of_a_refused_operation_runs_it_again_at_once_to_be_sent():
    refused = sent().reply_unknown("down", NOW).claim("a", NOW + MINUTE)
    refused = refused.refuse("not_enough_money", "no money", NOW + MINUTE)

    again = refused.restart(NOW + timedelta(hours=2))

    assert (again.state, again.outcome) == (RUNNING, NOTHING)
    assert (again.failures, again.first_failure, again.error_type, again.error_msg) == (
        0,
        None,
        None,
        None,
    )
    assert again.next_try == NOW + timedelta(hours=2) and again.claimable(NOW + timedelta(hours=2))
    assert not again.must_look_up


@exercises("restart")
def test_a_restart_of_an_operation_that_gave_up_unknown_looks_it_up_before_sending():
    op = sent().reply_unknown("down", NOW)
    op = op.claim("a", NOW + timedelta(hours=24)).reply_unknown("down", NOW + timedelta(hours=24))
    assert op.state == FAILED

    again = op.restart(NOW + timedelta(days=2))

    assert (again.state, again.outcome, again.must_look_up) == (RUNNING, UNKNOWN, True)
    # the next 24 hours of unknown replies are counted afresh
    later = NOW + timedelta(days=2)
    assert again.claim("a", later).reply_unknown("down", later).state == RUNNING


@exercises("restart")
@pytest.mark.parametrize("state", [RUNNING, MANUAL, DONE])
def test_a_restart_of_an_operation_that_has_not_failed_is_refused(state):
    with pytest.raises(LifecycleError):
        operation(state=state).restart(NOW)


# -- held by hand, waiting behind another -------------------------------------------------------


def test_under_the_manual_module_an_operation_is_held_for_staff_with_nothing_sent():
    held = operation().hold_by_hand(NOW)
    # a claim whose owner died, on a service moved to the manual module since
    abandoned = operation(owner="dead", lease_until=NOW).hold_by_hand(NOW)

    assert (held.state, held.outcome) == (MANUAL, NOTHING)
    assert released(held) and not held.awaiting_seller and held.due_at() is None
    assert abandoned.state == MANUAL and released(abandoned)


def test_an_operation_behind_a_running_one_waits_until_that_one_is_due():
    behind = operation().wait_behind(NOW + 4 * MINUTE, NOW)
    overdue = operation().wait_behind(NOW - MINUTE, NOW)

    assert (behind.state, behind.next_try, behind.attempts) == (RUNNING, NOW + 4 * MINUTE, 0)
    assert not behind.claimable(NOW + 3 * MINUTE) and behind.claimable(NOW + 4 * MINUTE)
    assert overdue.next_try == NOW, "never scheduled in the past"


# -- due_at, must_look_up, awaiting_seller -------------------------------------------------------


def test_an_operation_falls_due_at_its_retry_time_or_when_a_live_claim_runs_out():
    assert operation(next_try=NOW + MINUTE).due_at() == NOW + MINUTE
    assert claimed().due_at() == NOW + LEASE
    assert claimed(next_try=None).due_at() == NOW + LEASE
    later = operation(next_try=NOW + 10 * MINUTE, owner="a", lease_until=NOW + LEASE)
    assert later.due_at() == NOW + 10 * MINUTE
    for state in (FAILED, MANUAL, DONE):
        assert operation(state=state).due_at() is None


@pytest.mark.parametrize(
    ("state", "outcome", "awaiting"),
    [
        (RUNNING, NOTHING, False),
        (RUNNING, UNKNOWN, True),
        (RUNNING, ACCEPTED, True),
        (MANUAL, NOTHING, False),
        (MANUAL, ACCEPTED, True),
        (FAILED, UNKNOWN, False),
        (FAILED, NOTHING, False),
        (DONE, ACCEPTED, False),
    ],
)
def test_an_operation_awaits_the_sellers_word_only_while_sent_or_maybe_sent_and_not_ended(
    state, outcome, awaiting
):
    op = operation(state=state, outcome=outcome)

    assert op.awaiting_seller is awaiting
    assert op.must_look_up is (outcome == UNKNOWN)
    assert op.accepted is (outcome == ACCEPTED)


# -- the seller's service read back: the one rule behind look-ups and reconcile ----------------


@pytest.mark.parametrize(
    ("status", "shown"),
    [(ORDERED, False), (ACTIVE, True), (SUSPENDED, True), (DELETED, True)],
)
def test_an_order_is_shown_done_once_the_seller_has_set_the_service_up(status, shown):
    order = sent(OPEN)

    assert order.shown_done_by(service(status), TARIFF) is shown
    assert order.shown_sent_by(service(status), TARIFF) is shown


@pytest.mark.parametrize(
    ("kind", "status", "shown"),
    [
        (SUSPEND, SUSPENDED, True),
        (SUSPEND, ACTIVE, False),
        (RESUME, ACTIVE, True),
        (RESUME, SUSPENDED, False),
        (CLOSE, DELETED, True),
        (CLOSE, ACTIVE, False),
        (CLOSE, SUSPENDED, False),
    ],
)
def test_a_status_change_is_shown_done_by_the_status_it_asks_for(kind, status, shown):
    change = sent(kind)

    assert change.shown_done_by(service(status), TARIFF) is shown
    assert change.shown_sent_by(service(status), TARIFF) is shown


@pytest.mark.parametrize("kind", [k for k in KINDS if k != OPEN])
def test_a_deleted_service_ends_every_change_the_seller_accepted_since_nothing_more_can_happen(
    kind,
):
    change = sent(kind, before="2026-03-01", addons={"backup": "on"}).accept(NOW)

    assert change.shown_done_by(service(DELETED, expires=date(2026, 3, 1)), TARIFF)


@pytest.mark.parametrize("kind", [PROLONG, SETPARAM, SUSPEND, RESUME])
def test_a_deleted_service_does_not_show_a_change_of_unknown_outcome_done(kind):
    """The seller refuses every change of a deleted service: one whose reply was lost may
    never have been done (nor debited), so only its own work can show it."""
    change = sent(kind, before="2026-03-01", addons={"backup": "on"})
    deleted = service(DELETED, expires=date(2026, 3, 1), addons={12: "off"})

    assert not change.ended_by_deletion()
    assert not change.shown_done_by(deleted, TARIFF)
    assert not change.shown_sent_by(deleted, TARIFF)


@pytest.mark.parametrize(
    ("kind", "event", "presupposed"),
    [
        (RESUME, "suspend", True),
        (SUSPEND, "resume", True),
        (RESUME, "resume", False),
        (SUSPEND, "suspend", False),
        (RESUME, "close", False),
        (PROLONG, "suspend", False),
    ],
)
def test_a_status_event_shows_done_the_accepted_change_the_seller_needed_before_it(
    kind, event, presupposed
):
    """The seller suspends only an active service, resumes only a suspended one: its event
    after a change it accepted shows that change took effect, its own event lost."""
    accepted = sent(kind).accept(NOW)

    assert accepted.presupposed_by(event) is presupposed
    assert not sent(kind).presupposed_by(event)  # never accepted: it proves nothing


@pytest.mark.parametrize(
    ("before", "expires", "shown"),
    [
        ("2026-02-01", date(2026, 3, 1), True),
        ("2026-02-01", date(2026, 2, 1), False),
        (None, date(2026, 3, 1), False),  # never marked sent: nothing to compare with
    ],
)
def test_a_prolongation_is_shown_done_by_an_expiry_other_than_the_one_it_was_sent_from(
    before, expires, shown
):
    params = {"period": 1} | ({"before": before} if before else {})
    prolongation = operation(PROLONG, outcome=UNKNOWN, params=params)

    assert prolongation.shown_done_by(service(expires=expires), TARIFF) is shown
    assert prolongation.shown_sent_by(service(expires=expires), TARIFF) is shown


@pytest.mark.parametrize(
    ("asked", "seller_addons", "shown"),
    [
        ({"panel": "ispmanager"}, {11: "1024", 12: "off", 13: "1302"}, True),
        ({"panel": "ispmanager"}, {11: "1024", 12: "off", 13: "1301"}, False),
        ({"ram": "2048", "backup": "on"}, {11: "2048", 12: "on", 13: "1301"}, True),
        ({"ram": "2048", "backup": "on"}, {11: "2048", 12: "off", 13: "1301"}, False),
    ],
)
def test_an_addon_change_is_shown_done_when_the_seller_has_every_value_it_asked_for(
    asked, seller_addons, shown
):
    change = sent(SETPARAM, addons=asked)

    assert change.shown_done_by(service(addons=seller_addons), TARIFF) is shown
    assert change.shown_sent_by(service(addons=seller_addons), TARIFF) is shown


def test_an_addon_a_later_accepted_change_set_again_does_not_count_against_an_earlier_one():
    change = sent(SETPARAM, addons={"ram": "2048", "backup": "on"})
    seller = service(addons={11: "4096", 12: "on", 13: "1301"})  # a later change set ram 4096

    assert not change.shown_done_by(seller, TARIFF)
    assert change.shown_done_by(seller, TARIFF, overwritten={"ram"})


@exercises("look up")
def test_a_look_up_does_not_take_an_addon_change_for_sent_when_no_value_it_names_can_tell():
    """Reconcile may finish a change the seller can no longer show (its add-on dropped since);
    a look-up must not, or a change never sent would be taken for sent and never go out."""
    change = sent(SETPARAM, addons={"panel": "ispmanager"})
    without_panel = service(addons={11: "1024", 12: "off"})
    panel_gone = Tariff(1, "5-vds-1", "VDS-1", "vds", 1, 5, "EUR", addons={"ram": RAM})

    assert change.shown_done_by(without_panel, TARIFF)
    assert not change.shown_sent_by(without_panel, TARIFF)
    assert change.shown_done_by(service(addons={13: "1302"}), panel_gone)
    assert not change.shown_sent_by(service(addons={13: "1302"}), panel_gone)
    assert change.shown_sent_by(service(addons={13: "1302"}), TARIFF)


@exercises("look up")
def test_a_look_up_after_an_unknown_reply_finds_the_work_and_accepts_it_without_sending_again():
    lost = sent(SUSPEND).reply_unknown("connection reset", NOW)
    retry = lost.claim("engine-b", NOW + MINUTE)

    assert retry.must_look_up and retry.shown_sent_by(service(SUSPENDED), TARIFF)
    assert retry.accept(NOW + MINUTE).state == MANUAL
    assert not retry.shown_sent_by(service(ACTIVE), TARIFF), "not there: the retry sends it"
    assert retry.send(NOW + MINUTE).outcome == UNKNOWN


@pytest.mark.parametrize(
    ("before", "months", "event_expiry", "completes"),
    [
        ("2026-02-01", 1, "2026-03-01", True),
        ("2026-02-01", 3, "2026-05-01", True),
        ("2026-02-01", 1, "2026-05-01", False),  # another prolongation's event
        ("2026-01-31", 1, "2026-02-28", True),  # a month on from the 31st, as the seller counts
        ("2026-02-01", 0, "2026-02-01", False),  # a period of no months moves no expiry
        ("2026-02-01", 1, None, False),
    ],
)
def test_an_expire_event_completes_only_the_prolongation_whose_period_gives_its_expiry(
    before, months, event_expiry, completes
):
    prolongation = sent(PROLONG, period=months, before=before).accept(NOW)

    assert prolongation.completes_prolongation(event_expiry, months) is completes


def test_an_expire_event_completes_no_prolongation_that_is_not_awaiting_the_seller():
    params = {"period": 1, "before": "2026-02-01"}
    not_sent = operation(PROLONG, params=params)
    refused = sent(PROLONG, **params).refuse("value", "no", NOW)
    suspension = sent(SUSPEND, **params)

    for op in (not_sent, refused, suspension):
        assert not op.completes_prolongation("2026-03-01", 1)


# -- any sequence of transitions, as the engine drives them ------------------------------------


class OneOperation(RuleBasedStateMachine):
    """One operation driven as the engine and the seller drive it: attempts by two engines
    (one may die holding its claim, the other takes over once its lease ends), replies of
    every kind, the seller's word at any time, restarts, staff, and the clock."""

    def __init__(self):
        super().__init__()
        self.now = NOW
        self.op = operation(SUSPEND)
        self.sending = False  # the attempt in flight has sent its call
        self.claims = 0
        self.confirmed = False

    def apply(self, transition: str, after: Operation) -> None:
        before = self.op
        if before.outcome != NOTHING and after.outcome == NOTHING:
            assert transition == "refuse a sent call", (
                f"{transition} took an outcome {before.outcome} back to nothing"
            )
        if after.state == DONE:
            assert transition == "confirm" or before.state == DONE, f"{transition} made it done"
        self.op = after

    def in_flight(self) -> bool:
        return self.op.state == RUNNING and self.op.owner is not None

    @rule(minutes=st.sampled_from([1, 2, 3, 5, 30, 60 * 25]))
    def time_passes(self, minutes):
        self.now += timedelta(minutes=minutes)

    @precondition(lambda self: self.op.claimable(self.now))
    @rule(owner=st.sampled_from(["engine-a", "engine-b"]))
    def claim(self, owner):
        self.apply("claim", self.op.claim(owner, self.now))
        self.claims += 1
        self.sending = False

    @precondition(lambda self: self.in_flight() and not self.sending)
    @rule()
    def send(self):
        self.apply("send", self.op.send(self.now))
        self.sending = True

    @precondition(lambda self: self.in_flight() and (self.sending or self.op.must_look_up))
    @rule()
    def reply_unknown(self):
        """A lost reply, a timeout, a 5xx, an error that proves nothing, a failed look-up."""
        self.apply("reply unknown", self.op.reply_unknown("no reply", self.now))
        self.sending = False

    @precondition(lambda self: self.in_flight() and (self.sending or self.op.must_look_up))
    @rule()
    def accept(self):
        """The seller said yes, or a look-up found the work."""
        self.apply("accept", self.op.accept(self.now))
        self.sending = False

    @precondition(lambda self: self.in_flight() and (self.sending or self.op.must_look_up))
    @rule(error=st.sampled_from(["auth", "value", "not_enough_money"]))
    def refuse(self, error):
        """The seller refused the call sent, or the engine refused to send a retry of one
        that may have gone out (an add-on removed since, say)."""
        transition = "refuse a sent call" if self.sending else "refuse before sending"
        self.apply(transition, self.op.refuse(error, "no", self.now, sent=self.sending))
        self.sending = False

    @precondition(lambda self: self.op.awaiting_seller)
    @rule()
    def confirm(self):
        """An event or reconcile, at any time, even while an attempt is in flight."""
        self.apply("confirm", self.op.confirm(self.now))
        self.confirmed = True
        self.sending = False

    @precondition(lambda self: self.op.state == FAILED)
    @rule()
    def restart(self):
        self.apply("restart", self.op.restart(self.now))

    @precondition(lambda self: self.op.claimable(self.now) and self.op.outcome == UNKNOWN)
    @rule()
    def hold_by_hand(self):
        """The service moved to the manual module while its operation's outcome was unknown."""
        self.apply("hold", self.op.hold_by_hand(self.now))

    @invariant()
    def what_the_lifecycle_does_not_allow_from_here_it_refuses(self):
        refused = []
        if not self.op.claimable(self.now):
            refused.append(lambda: self.op.claim("engine-c", self.now))
        if not self.in_flight():
            refused.append(lambda: self.op.send(self.now))
        if not self.op.awaiting_seller:
            refused.append(lambda: self.op.confirm(self.now))
        if self.op.state != FAILED:
            refused.append(lambda: self.op.restart(self.now))
        for transition in refused:
            with pytest.raises(LifecycleError):
                transition()

    @invariant()
    def a_released_operation_has_no_owner_and_no_lease(self):
        assert (self.op.owner is None) == (self.op.lease_until is None)
        if self.op.state != RUNNING:
            assert released(self.op)

    @invariant()
    def done_only_after_the_sellers_word_and_for_good(self):
        assert (self.op.state == DONE) == self.confirmed
        if self.confirmed:
            assert self.op.outcome == ACCEPTED and not self.op.awaiting_seller

    @invariant()
    def an_unknown_outcome_is_always_looked_up_first(self):
        assert self.op.must_look_up == (self.op.outcome == UNKNOWN)

    @invariant()
    def only_a_running_operation_falls_due(self):
        assert (self.op.due_at() is None) == (self.op.state != RUNNING)
        if self.op.claimable(self.now):
            assert self.op.due_at() <= self.now

    @invariant()
    def every_claim_counts_one_attempt(self):
        assert self.op.attempts == self.claims

    @invariant()
    def a_failed_operation_says_why_and_gives_up_only_after_a_day(self):
        if self.op.state == FAILED:
            assert self.op.error_type and self.op.error_msg
        if self.op.error_msg and self.op.error_msg.startswith("gave up"):
            assert self.now - self.op.first_failure >= timedelta(hours=24)


OneOperation.TestCase.settings = settings(
    settings(), max_examples=max(30, settings().max_examples * 3)
)
TestOneOperation = OneOperation.TestCase
