"""Orders, prolongations, status and add-on changes: the operations that carry them out."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from reseller.model import Operation, PeriodRule
from simulator.app import seller_of
from tests.helpers import active, connect, order, refused, remote_of


def balance(engine, name: str = "alice") -> Decimal:
    return engine.client(name).balance


def set_balance(store, sim, value: str, name: str = "alice") -> None:
    """Set a client's balance, as an operator's correction with its expense row."""
    client = store.client(name)
    store.move_money(client.id, Decimal(value) - client.balance, "correction", sim.now)


def latest(engine, item: int) -> Operation:
    return engine.store.latest_operation(item)


def retry(engine, sim, item: int) -> str:
    """Move both clocks to the operation's next try and run what is due; its new state."""
    sim.to(latest(engine, item).next_try)
    engine.run_due(sim.now)
    return latest(engine, item).state


@pytest.fixture
def funded(sim):
    """The reseller's seller account with plenty of money."""
    sim.act("topup", account="reseller", amount=1000)


# -- ordering --------------------------------------------------------------------------------


def test_an_order_charges_the_client_and_is_sent_at_once_with_its_remoteid(
    engine,
    tariff,
    sim,
    store,
):
    item = order(engine, sim)

    remote = sim.service(remote_of(engine, item))
    assert (remote["remoteid"], remote["tariff"], remote["period"]) == (str(item), 5, 1)
    assert remote["params"]["ostempl"] == "debian-12"
    assert balance(engine) == Decimal("489.00")
    assert sim.balance() == Decimal(90)
    assert latest(engine, item).state == "manual"
    assert [t["status"] for t in store.tasks()] == ["open"]


def test_an_order_stays_ordered_until_the_sellers_event_says_otherwise(engine, tariff, sim, store):
    item = order(engine, sim)

    assert store.item(item).status == 1
    assert sim.service(remote_of(engine, item))["status"] == "active"


def test_chosen_addons_reach_the_seller_and_are_charged_for_each_month(engine, tariff, sim):
    item = order(
        engine,
        sim,
        period=3,
        addons={"ram": 2048, "backup": "on", "panel": "ispmanager"},
    )

    remote = sim.service(remote_of(engine, item))
    assert remote["addons"] == {"ram": 2048, "backup": True, "panel": "ispmanager"}
    monthly = Decimal("0.0022") * 1024 + Decimal("2.20") + Decimal("5.50")
    assert balance(engine) == 500 - (Decimal("29.70") + 3 * monthly).quantize(Decimal("0.01"))


def test_a_tariffs_own_period_rule_wins_over_the_general_one(engine, sim, funded):
    rules = [PeriodRule(2, 1), PeriodRule(24, 12), PeriodRule(24, 3, "5-vds-1")]
    connect(engine, sim, periods=rules)
    engine.import_tariff("seller", 5, sim.now)
    engine.import_tariff("seller", 7, sim.now)
    engine.set_price("5-vds-1", prices={2: 19, 24: 50})
    engine.set_price("7-vds-2", prices={24: 60})

    two, own, general = (
        order(engine, sim, period=2),
        order(engine, sim, period=24),
        order(engine, sim, tariff="7-vds-2", period=24),
    )

    assert [sim.service(remote_of(engine, i))["period"] for i in (two, own, general)] == [1, 3, 12]
    assert [engine.store.item(i).period for i in (two, own, general)] == [2, 24, 24]
    assert balance(engine) == 500 - 19 - 50 - 60


def test_a_prolongation_is_sent_with_the_compared_period(engine, sim, funded):
    connect(engine, sim, periods=[PeriodRule(2, 1)])
    engine.import_tariff("seller", 5, sim.now)
    engine.set_price("5-vds-1", prices={2: 19})
    item = active(engine, sim)

    engine.prolong(item, 2, sim.now)

    assert sim.service(remote_of(engine, item))["expires"] == "2026-03-01"
    assert balance(engine) == 500 - Decimal(11) - 19


def test_an_order_the_client_cannot_pay_is_refused_and_nothing_happens(engine, tariff, sim, store):
    calls = len(sim.calls())

    with refused(store, "insufficient_funds") as caught:
        order(engine, sim, client="bob")

    assert "bob has 5, the order costs 11.00" in caught.value.message
    assert len(sim.calls()) == calls


@pytest.mark.parametrize(
    ("change", "error", "named"),
    [
        ({"client": "carol"}, "unknown", "carol"),
        ({"tariff": "5-vds-9"}, "unknown", "5-vds-9"),
        ({"period": 6}, "period", "no price for period 6"),
        ({"ostempl": "windows"}, "value", "windows"),
        ({"recipe": "wordpress"}, "value", "wordpress"),
        ({"addons": {"ram": 99999}}, "value", "ram"),
        ({"addons": {"gpu": 1}}, "unknown", "gpu"),
    ],
)
def test_a_bad_order_is_refused_before_anything_is_charged_or_sent(
    engine,
    tariff,
    sim,
    store,
    change,
    error,
    named,
):
    calls = len(sim.calls())

    with refused(store, error) as caught:
        order(engine, sim, **change)

    assert named in caught.value.message
    assert len(sim.calls()) == calls


# -- refusals by the seller ------------------------------------------------------------------


@pytest.fixture
def poor(engine, sim):
    """A module on a seller account with 5 EUR, and tariff 5 imported through it."""
    connect(engine, sim, login="poor", password="pw")
    return engine.import_tariff("seller", 5, sim.now)


def test_an_order_the_seller_refuses_fails_with_its_error_and_waits(engine, poor, sim, store):
    item = order(engine, sim)

    operation = latest(engine, item)
    assert (operation.state, operation.error_type) == ("failed", "not_enough_money")
    assert "insufficient funds" in operation.error_msg
    assert store.item(item).remote_id is None
    assert sim.services() == []

    calls = len(sim.calls())
    sim.advance("2h")
    engine.cron(sim.now)
    assert latest(engine, item).state == "failed"
    assert "vds.order.param" not in [c["func"] for c in sim.calls()[calls:]]


def test_a_restarted_order_goes_through_once_the_seller_account_is_topped_up(
    engine,
    poor,
    sim,
    store,
):
    item = order(engine, sim)
    sim.act("topup", account="poor", amount=20)

    assert engine.restart(item, sim.now) == latest(engine, item).id

    assert latest(engine, item).state == "manual"
    assert len(sim.services(remoteid=str(item))) == 1
    engine.checkevent("seller", sim.now)
    assert latest(engine, item).state == "done"
    assert balance(engine) == Decimal("489.00")
    assert len(store.expenses()) == 1


def test_a_restart_of_an_operation_that_has_not_failed_is_refused(engine, tariff, sim, store):
    item = order(engine, sim)

    with refused(store, "not_failed") as caught:
        engine.restart(item, sim.now)

    assert "manual, not failed" in caught.value.message
    with refused(store, "unknown"):
        engine.restart(999, sim.now)


def test_a_suspension_the_seller_refuses_for_lack_of_rights_fails_with_access(engine, sim):
    connect(engine, sim, login="nosuspend", password="pw")
    engine.import_tariff("seller", 5, sim.now)
    item = active(engine, sim)

    engine.change_status(item, "suspend", sim.now)

    operation = latest(engine, item)
    assert (operation.state, operation.error_type) == ("failed", "access")
    assert sim.service(remote_of(engine, item))["status"] == "active"


# -- transport failures ----------------------------------------------------------------------


def test_an_order_the_seller_never_got_stays_running_and_is_sent_a_minute_later(
    engine,
    tariff,
    sim,
):
    sim.fault("down")

    item = order(engine, sim)

    operation = latest(engine, item)
    assert (operation.state, operation.error_type) == ("running", "unavailable")
    assert operation.next_try == sim.now + timedelta(minutes=1)
    assert sim.services() == [] and balance(engine) == Decimal("489.00")
    assert retry(engine, sim, item) == "manual"
    assert len(sim.services(remoteid=str(item))) == 1


def test_retries_wait_one_minute_doubling_to_thirty(engine, tariff, sim):
    sim.fault("down", 50)
    item = order(engine, sim)

    waits = []
    for _ in range(7):
        before = sim.now
        retry(engine, sim, item)
        waits.append((sim.now - before) // timedelta(minutes=1))

    assert waits == [1, 2, 4, 8, 16, 30, 30]


def test_nothing_is_retried_before_its_time(engine, tariff, sim):
    sim.fault("down")
    item = order(engine, sim)

    assert engine.run_due(sim.now + timedelta(seconds=59)) == []
    assert latest(engine, item).attempts == 1


def test_after_24_hours_of_failures_an_operation_gives_up_as_failed(engine, tariff, sim):
    sim.fault("down", 1000)
    item = order(engine, sim)
    started = sim.now

    while retry(engine, sim, item) == "running":
        assert sim.now - started < timedelta(hours=24)

    operation = latest(engine, item)
    assert timedelta(hours=24) <= sim.now - started < timedelta(hours=24, minutes=30)
    assert (operation.state, operation.error_type) == ("failed", "unavailable")
    assert operation.error_msg.startswith("gave up after 24 hours")
    assert engine.run_due(sim.now + timedelta(hours=1)) == []

    sim.clear_faults()
    engine.restart(item, sim.now)
    assert latest(engine, item).state == "manual"


def test_an_order_whose_reply_was_lost_is_found_by_its_remoteid_not_sent_twice(
    engine,
    tariff,
    sim,
    store,
):
    sim.fault("lose_reply")
    item = order(engine, sim)
    assert latest(engine, item).state == "running"
    assert store.item(item).remote_id is None

    assert retry(engine, sim, item) == "done"  # its look-up read the work done

    (remote,) = sim.services()
    assert remote["remoteid"] == str(item) and store.item(item).remote_id == remote["id"]
    assert len(sim.calls("vds.order.param")) == 1
    assert len(sim.debits()) == 1


def test_a_lookup_that_fails_after_a_lost_reply_is_retried_and_still_orders_once(
    engine,
    tariff,
    sim,
):
    sim.fault("lose_reply")
    item = order(engine, sim)
    sim.fault("error")

    assert retry(engine, sim, item) == "running"
    assert retry(engine, sim, item) == "done"  # its look-up read the work done
    assert len(sim.services()) == 1 and len(sim.debits()) == 1


@pytest.mark.parametrize(
    ("kind", "do", "seller_has"),
    [
        ("prolong", lambda e, i, now: e.prolong(i, 1, now), {"expires": "2026-03-01"}),
        ("suspend", lambda e, i, now: e.change_status(i, "suspend", now), {"status": "suspended"}),
        ("close", lambda e, i, now: e.change_status(i, "close", now), {"status": "deleted"}),
        (
            "setparam",
            lambda e, i, now: e.set_addons(i, {"backup": "on"}, now),
            {"addons": {"ram": 1024, "backup": True, "panel": "none"}},
        ),
    ],
)
def test_an_operation_whose_reply_was_lost_is_not_done_twice(
    engine,
    tariff,
    sim,
    kind,
    do,
    seller_has,
):
    item = active(engine, sim)
    debits = len(sim.debits())
    sim.fault("lose_reply")

    do(engine, item, sim.now)
    assert (latest(engine, item).kind, latest(engine, item).state) == (kind, "running")

    assert retry(engine, sim, item) == "done"  # its look-up read the work done
    remote = sim.service(remote_of(engine, item))
    assert {k: remote[k] for k in seller_has} == seller_has
    assert len(sim.debits()) - debits == (1 if kind in ("prolong", "setparam") else 0)


# -- prolong, status, add-ons ----------------------------------------------------------------


def test_a_prolongation_is_charged_sent_and_done_when_its_event_comes(engine, tariff, sim, store):
    item = active(engine, sim)

    engine.prolong(item, 3, sim.now)

    assert latest(engine, item).state == "manual"
    assert balance(engine) == Decimal("500") - Decimal("11.00") - Decimal("29.70")
    assert sim.service(remote_of(engine, item))["expires"] == "2026-05-01"
    assert store.item(item).expiredate == "2026-02-01"
    engine.checkevent("seller", sim.now)
    assert latest(engine, item).state == "done"
    assert store.item(item).expiredate == "2026-05-01"


def test_a_prolongation_the_client_cannot_pay_is_refused_and_nothing_happens(
    engine,
    tariff,
    sim,
    store,
):
    item = active(engine, sim)
    engine.set_price(tariff, prices={12: 1000})

    with refused(store, "insufficient_funds") as caught:
        engine.prolong(item, 12, sim.now)

    assert "the prolongation costs 1000" in caught.value.message
    assert sim.service(remote_of(engine, item))["expires"] == "2026-02-01"


def test_a_service_not_yet_at_the_seller_or_deleted_cannot_be_prolonged(
    engine,
    tariff,
    sim,
    store,
):
    sim.fault("down")
    waiting = order(engine, sim)
    with refused(store, "not_linked"):
        engine.prolong(waiting, 1, sim.now)

    gone = active(engine, sim)
    engine.change_status(gone, "close", sim.now)
    engine.checkevent("seller", sim.now)
    with refused(store, "value") as caught:
        engine.prolong(gone, 1, sim.now)
    assert "deleted" in caught.value.message
    with refused(store, "value"):
        engine.change_status(gone, "resume", sim.now)


def test_a_period_without_a_price_cannot_be_prolonged(engine, tariff, sim, store):
    item = active(engine, sim)

    with refused(store, "period"):
        engine.prolong(item, 6, sim.now)


def test_suspend_resume_and_delete_change_the_status_only_when_the_seller_says_so(
    engine,
    tariff,
    sim,
    store,
):
    item = active(engine, sim)

    for kind, status in (("suspend", 3), ("resume", 2), ("close", 4)):
        before = store.item(item).status
        engine.change_status(item, kind, sim.now)
        assert latest(engine, item).state == "manual"
        assert store.item(item).status == before
        engine.checkevent("seller", sim.now)
        assert (latest(engine, item).state, store.item(item).status) == ("done", status)


def test_an_addon_change_charges_the_monthly_increase_and_is_done_by_its_event(
    engine,
    tariff,
    sim,
    store,
):
    item = active(engine, sim, period=3)
    paid = balance(engine)

    engine.set_addons(item, {"backup": True, "panel": "ispmanager"}, sim.now)

    assert balance(engine) == paid - 3 * (Decimal("2.20") + Decimal("5.50"))
    assert sim.service(remote_of(engine, item))["addons"]["panel"] == "ispmanager"
    assert latest(engine, item).state == "manual"
    engine.checkevent("seller", sim.now)
    assert latest(engine, item).state == "done"
    assert store.item(item).addons == {"ram": "1024", "backup": "on", "panel": "ispmanager"}


def test_a_smaller_addon_is_free(engine, tariff, sim):
    item = active(engine, sim, addons={"ram": 4096})
    paid = balance(engine)

    engine.set_addons(item, {"ram": 2048}, sim.now)

    assert balance(engine) == paid
    assert sim.service(remote_of(engine, item))["addons"]["ram"] == 2048


@pytest.mark.parametrize(
    ("addons", "client_balance", "error"),
    [
        ({"gpu": 1}, None, "unknown"),
        ({"ram": "lots"}, None, "value"),
        ({"backup": "on"}, "0", "insufficient_funds"),
    ],
)
def test_a_bad_addon_change_is_refused_and_nothing_happens(
    engine,
    tariff,
    sim,
    store,
    addons,
    client_balance,
    error,
):
    item = active(engine, sim)
    if client_balance is not None:
        set_balance(store, sim, client_balance)
    calls = len(sim.calls())

    with refused(store, error):
        engine.set_addons(item, addons, sim.now)

    assert len(sim.calls()) == calls


# -- processing modules per service ----------------------------------------------------------


def test_a_vps_tariff_change_is_refused_explaining_the_manual_module_route(
    engine,
    tariff,
    sim,
    store,
):
    engine.import_tariff("seller", 7, sim.now)
    item = active(engine, sim)

    with refused(store, "manual_module") as caught:
        engine.change_tariff(item, "7-vds-2", sim.now)

    assert "manual processing module" in caught.value.message
    assert "set_module manual" in caught.value.message


def test_under_the_manual_module_the_tariff_changes_and_the_module_can_come_back(
    engine,
    tariff,
    sim,
    store,
):
    engine.import_tariff("seller", 7, sim.now)
    item = active(engine, sim)
    seller_module = store.item(item).processingmodule

    engine.set_module(item, "manual")
    engine.change_tariff(item, "7-vds-2", sim.now)
    engine.set_module(item, "seller")

    assert store.item(item).pricelist == store.tariff("7-vds-2").id
    assert store.item(item).processingmodule == seller_module
    assert store.item(item).remote_id == remote_of(engine, item)


def test_an_operation_under_the_manual_module_waits_for_staff_without_calling_the_seller(
    engine,
    tariff,
    sim,
):
    item = active(engine, sim)
    engine.set_module(item, "manual")
    calls = len(sim.calls())

    engine.change_status(item, "suspend", sim.now)

    assert latest(engine, item).state == "manual"
    assert len(sim.calls()) == calls


def test_switching_to_an_unknown_module_or_tariff_is_refused(engine, tariff, sim, store):
    item = active(engine, sim)

    with refused(store, "unknown"):
        engine.set_module(item, "nowhere")
    with refused(store, "unknown"):
        engine.change_tariff(item, "9-nothing", sim.now)
    with refused(store, "unknown"):
        engine.set_module(999, "manual")


# -- autoprolong -----------------------------------------------------------------------------


def test_an_autoprolong_service_is_prolonged_a_day_before_it_expires_once(
    engine,
    tariff,
    sim,
    store,
):
    item = active(engine, sim, autoprolong=True)
    manual = active(engine, sim)

    sim.to(datetime(2026, 1, 30, 23, 59))
    assert engine.autoprolong(sim.now) == []
    sim.to(datetime(2026, 1, 31))
    assert engine.autoprolong(sim.now) == [item]
    assert engine.autoprolong(sim.now) == []

    assert sim.service(remote_of(engine, item))["expires"] == "2026-03-01"
    assert sim.service(remote_of(engine, manual))["expires"] == "2026-02-01"
    assert balance(engine) == 500 - 3 * Decimal("11.00")
    engine.checkevent("seller", sim.now)
    assert store.item(item).expiredate == "2026-03-01"
    assert engine.autoprolong(sim.now) == []


def test_an_autoprolong_the_client_cannot_pay_is_skipped_without_a_charge(
    engine,
    tariff,
    sim,
    store,
):
    item = active(engine, sim, autoprolong=True)
    set_balance(store, sim, "1")
    sim.to(datetime(2026, 1, 31, 12))

    assert engine.run_due(sim.now) == []

    assert len(engine.store.operations(item)) == 1
    assert balance(engine) == 1


def test_an_autoprolong_charges_each_service_from_what_the_charges_before_it_left(
    engine, tariff, sim, store
):
    first = active(engine, sim, autoprolong=True)
    second = active(engine, sim, autoprolong=True)
    set_balance(store, sim, "15")  # one prolongation's 11.00, not two
    sim.to(datetime(2026, 1, 31, 12))

    assert engine.autoprolong(sim.now) == [first]

    assert balance(engine) == Decimal("4.00")
    charged = [(e.item, e.amount) for e in store.expenses() if e.reason == "prolong"]
    assert charged == [(first, Decimal("-11.00"))]
    assert len(store.operations(second)) == 1


def test_an_autoprolong_that_fails_half_way_registers_and_charges_nothing(
    engine, tariff, sim, store, monkeypatch
):
    first = active(engine, sim, autoprolong=True)
    second = active(engine, sim, autoprolong=True)
    sim.to(datetime(2026, 1, 31, 12))
    charges = []
    real = store.move_money_of

    def move_money_of(client, amount, *args):
        charges.append(amount)
        if len(charges) == 2:  # the second service's charge, the first one's written
            raise RuntimeError("the disk is full")
        real(client, amount, *args)

    monkeypatch.setattr(store, "move_money_of", move_money_of)

    with pytest.raises(RuntimeError):
        engine.autoprolong(sim.now)

    assert [len(store.operations(item)) for item in (first, second)] == [1, 1]
    assert balance(engine) == 500 - 2 * Decimal("11.00")


def test_an_autoprolong_the_seller_refuses_is_charged_once_and_waits_for_a_restart(
    engine,
    tariff,
    sim,
    store,
):
    item = active(engine, sim, autoprolong=True)
    sim.to(datetime(2026, 1, 31, 12))
    seller_of(sim.app).accounts["reseller"].balance = Decimal(0)  # no control action drains it

    engine.run_due(sim.now)
    for _ in range(3):
        sim.advance("5m")
        engine.cron(sim.now)

    assert [op.state for op in store.operations(item)] == ["done", "failed"]
    assert balance(engine) == 500 - 2 * Decimal("11.00")


def test_addons_of_a_deleted_service_cannot_change(engine, tariff, sim, store):
    item = active(engine, sim)
    engine.change_status(item, "close", sim.now)
    engine.checkevent("seller", sim.now)

    with refused(store, "value") as caught:
        engine.set_addons(item, {"backup": "on"}, sim.now)

    assert "deleted" in caught.value.message


def test_an_unknown_status_change_is_refused(engine, tariff, sim, store):
    item = active(engine, sim)

    with refused(store, "value") as caught:
        engine.change_status(item, "reboot", sim.now)

    assert "'reboot'" in caught.value.message


# -- clients and money -----------------------------------------------------------------------


def test_a_top_up_adds_to_the_balance_with_its_expense_row(engine, store, sim):
    engine.topup("bob", "10.50", sim.now)

    assert balance(engine, "bob") == Decimal("15.50")
    assert [(str(e.amount), e.reason) for e in store.expenses()] == [("10.50", "topup")]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda e, now: e.topup("bob", 0, now), "value"),
        (lambda e, now: e.topup("bob", "-5", now), "value"),
        (lambda e, now: e.topup("bob", "ten", now), "value"),
        (lambda e, now: e.topup("bob", True, now), "value"),
        (lambda e, now: e.topup("carol", 5, now), "unknown"),
        (lambda e, now: e.add_client("alice", 5), "exists"),
        (lambda e, now: e.add_client("carol", "NaN"), "value"),
    ],
)
def test_a_bad_top_up_or_client_is_refused_and_no_balance_changes(engine, store, sim, call, error):
    with refused(store, error):
        call(engine, sim.now)
