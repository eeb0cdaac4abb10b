"""The reseller's rules on values (`reseller.model`): periods, prices, add-on values and the
retry backoff."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from reseller import model
from reseller.errors import ResellerError
from reseller.model import FAILED, OPEN, RUNNING, AddonSpec, Operation, PeriodRule, Tariff

RAM = AddonSpec("ram", "integer", 11, True, included=1024, max=8192, price=Decimal("0.0022"))
BACKUP = AddonSpec("backup", "boolean", 12, True, price=Decimal("2.20"))
PANEL = AddonSpec(
    "panel",
    "enumeration",
    13,
    True,
    items={"none": Decimal(0), "ispmanager": Decimal("5.50")},
    item_ids={"none": 1301, "ispmanager": 1302},
)
DISK = AddonSpec("disk", "integer", 14, False, included=10, price=Decimal(1))
SPECS = {"ram": RAM, "backup": BACKUP, "panel": PANEL, "disk": DISK}
PRICES = {1: Decimal("11.00"), 3: Decimal("29.70"), -50: Decimal("1.00")}
TARIFF = Tariff(1, "5-vds-1", "VDS-1", "vds", 1, 5, "EUR", prices=PRICES, addons=SPECS)


def test_a_period_code_counts_months_and_day_trial_lifetime_count_none():
    assert [model.months_in(p) for p in (1, 3, 12, -50, -100, 0)] == [1, 3, 12, 0, 0, 0]


def test_a_converted_price_is_rounded_half_up_to_the_cent():
    assert model.convert(Decimal("27"), Decimal("1.10")) == Decimal("29.70")
    assert model.convert(Decimal("0.125"), Decimal("1")) == Decimal("0.13")
    assert model.convert(Decimal("0.002"), Decimal("1.1"), model.UNIT_PRICE) == Decimal("0.0022")


def test_retries_wait_one_minute_doubling_to_at_most_thirty():
    waits = [model.retry_delay(n) // timedelta(minutes=1) for n in range(1, 9)]
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]


def test_an_operation_gives_up_once_it_has_failed_for_24_hours():
    first = datetime(2026, 1, 1, 12)
    failing = Operation(1, 1, OPEN, first_failure=first, owner="engine")

    still = failing.reply_unknown("down", first + timedelta(hours=23, minutes=59))
    over = failing.reply_unknown("down", first + timedelta(hours=24))

    assert (still.state, over.state) == (RUNNING, FAILED)


def test_a_tariffs_own_period_rule_wins_over_a_general_one_in_any_order():
    general, own = PeriodRule(24, 12), PeriodRule(24, 3, "5-vds-1")
    for rules in ([general, own], [own, general]):
        assert model.seller_period(rules, "5-vds-1", 24) == 3
        assert model.seller_period(rules, "7-vds-2", 24) == 12


def test_a_period_without_a_rule_is_sent_as_it_is():
    assert model.seller_period([PeriodRule(2, 1)], "5-vds-1", 3) == 3


def test_an_order_gets_every_enabled_addon_its_default_unless_chosen():
    values = TARIFF.addon_values({"ram": 2048})
    assert values == {"ram": "2048", "backup": "off", "panel": "none"}


def test_an_order_may_not_choose_a_disabled_or_unknown_addon():
    for name in ("disk", "gpu"):
        with pytest.raises(ResellerError) as caught:
            TARIFF.addon_values({name: 1})
        assert caught.value.type == "unknown"
        assert name in caught.value.message


@pytest.mark.parametrize(
    ("spec", "value", "stored"),
    [
        (RAM, 4096, "4096"),
        (RAM, "0", "0"),
        (BACKUP, True, "on"),
        (BACKUP, "yes", "on"),
        (BACKUP, "off", "off"),
        (PANEL, "ispmanager", "ispmanager"),
    ],
)
def test_an_addon_value_is_stored_as_a_number_on_off_or_item_name(spec, value, stored):
    assert spec.normalise(value) == stored


@pytest.mark.parametrize(
    ("spec", "value", "named"),
    [
        (RAM, "lots", "not a whole number"),
        (RAM, 9000, "outside 0..8192"),
        (RAM, -1, "outside"),
        (BACKUP, "maybe", "not on or off"),
        (PANEL, "cpanel", "not one of ['ispmanager', 'none']"),
    ],
)
def test_a_bad_addon_value_is_refused_naming_the_addon_and_why(spec, value, named):
    with pytest.raises(ResellerError) as caught:
        spec.normalise(value)
    assert caught.value.type == "value"
    assert spec.intname in caught.value.message and named in caught.value.message


def test_an_integer_addon_costs_its_unit_price_above_what_is_included():
    assert RAM.monthly("1024") == 0
    assert RAM.monthly("512") == 0
    assert RAM.monthly("2048") == Decimal("0.0022") * 1024


def test_enumeration_items_go_to_the_seller_by_id_and_come_back_by_name():
    assert PANEL.wire("ispmanager") == "1302"
    assert PANEL.from_wire("1302") == "ispmanager"
    assert BACKUP.from_wire("on") == "on" and BACKUP.from_wire("") == "off"
    assert RAM.wire("2048") == "2048"


def test_a_price_is_the_tariffs_plus_monthly_addons_for_each_month():
    values = {"ram": "2048", "backup": "on", "panel": "ispmanager"}
    monthly = Decimal("0.0022") * 1024 + Decimal("2.20") + Decimal("5.50")
    assert TARIFF.price_for(3, values) == model.to_cents(Decimal("29.70") + 3 * monthly)


def test_a_day_period_costs_its_price_without_monthly_addons():
    assert TARIFF.price_for(-50, {"backup": "on"}) == Decimal("1.00")


def test_a_period_the_tariff_has_no_price_for_is_refused_naming_the_periods_it_has():
    with pytest.raises(ResellerError) as caught:
        TARIFF.price_for(12, {})
    assert caught.value.type == "period"
    assert "5-vds-1" in caught.value.message and "[-50, 1, 3]" in caught.value.message


def test_an_addon_change_costs_the_monthly_increase_for_the_period_and_a_decrease_nothing():
    old = {"ram": "1024", "backup": "off"}
    assert TARIFF.change_price(old, {**old, "backup": "on"}, 3) == Decimal("6.60")
    assert TARIFF.change_price({"backup": "on"}, {"backup": "off"}, 3) == 0
    assert TARIFF.change_price(old, {**old, "backup": "on"}, -50) == Decimal("2.20")


def test_a_refusal_carries_its_type_and_message():
    error = ResellerError("period", "no price for 2")
    assert (error.type, error.message, str(error)) == (
        "period",
        "no price for 2",
        "period: no price for 2",
    )


def test_one_seller_url_is_recognised_however_it_is_written():
    same = {
        model.seller_address(url)
        for url in (
            "https://Bill.Example.com:1500",
            "https://bill.example.com:1500/",
            "https://bill.example.com:1500/billmgr",
        )
    }
    assert same == {"https://bill.example.com:1500"}
    assert model.seller_address("https://bill.example.com/manager/billmgr") == (
        "https://bill.example.com/manager"
    )
    assert model.seller_address("https://other.example.com:1500") not in same


@pytest.mark.parametrize(
    "when",
    [datetime(2026, 2, 1), datetime(2026, 2, 1, 23, 59, 59, 5).date(), datetime(2026, 12, 31, 8)],
)
def test_a_day_is_written_as_the_seller_writes_it(when):
    assert model.day(when) == when.strftime("%Y-%m-%d") == f"{when:%Y-%m-%d}"


def test_a_day_before_the_year_1000_is_written_as_strftime_writes_it():
    when = datetime(999, 3, 4)

    assert model.day(when) == when.strftime("%Y-%m-%d")


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.integers(0, 1300),
)
def test_the_day_months_after_a_start_is_the_one_relativedelta_gives(start, months):
    try:
        expected = (start + relativedelta(months=months)).date()
    except ValueError:  # past the year 9999
        with pytest.raises(ValueError):
            model.months_after(start, months)
        return
    assert model.months_after(start, months) == expected
