"""Connecting a BILLmanager processing module to a seller account."""

from __future__ import annotations

from reseller.model import PeriodRule
from tests.helpers import PASSWORD, URL, connect, refused


def test_a_client_level_account_is_connected_with_its_period_rules(engine, sim, store):
    rules = [PeriodRule(2, 1), PeriodRule(24, 12, "5-vds-1")]

    connect(engine, sim, periods=rules)

    (module,) = store.modules()
    assert (module.name, module.url, module.login) == ("seller", URL, "reseller")
    assert module.rules == rules
    assert [c["func"] for c in sim.calls()] == ["auth", "whoami"]


def test_an_admin_level_account_is_refused_with_access_and_nothing_is_written(engine, sim, store):
    with refused(store, "access") as caught:
        connect(engine, sim, login="root", password="toor")

    assert "'root'" in caught.value.message and "client level" in caught.value.message


def test_a_second_module_on_the_same_account_is_refused_naming_the_first(
    engine, module, sim, store
):
    with refused(store, "duplicate_connection") as caught:
        connect(engine, sim, name="again")

    assert "module 'seller' already uses account 'reseller'" in caught.value.message


def test_a_second_module_on_the_same_account_is_refused_however_the_url_is_written(
    engine,
    module,
    sim,
    store,
):
    for url in (URL + "/", URL + "/billmgr", URL.upper()):
        with refused(store, "duplicate_connection"):
            engine.connect("again", url, "reseller", PASSWORD, [], sim.now)


def test_another_account_on_the_same_seller_is_a_module_of_its_own(engine, module, sim, store):
    connect(engine, sim, name="second", login="second", password="second-pw")

    assert [m.login for m in store.modules()] == ["reseller", "second"]


def test_a_wrong_password_is_refused_with_the_sellers_auth_error(engine, sim, store):
    with refused(store, "auth") as caught:
        connect(engine, sim, password="wrong")

    assert "Invalid username or password" in caught.value.message


def test_a_seller_that_is_down_makes_connect_unavailable_and_writes_nothing(engine, sim, store):
    sim.fault("down")

    with refused(store, "unavailable"):
        connect(engine, sim)


def test_a_module_name_in_use_is_refused(engine, module, sim, store):
    with refused(store, "exists") as caught:
        connect(engine, sim, login="second", password="second-pw")

    assert "'seller'" in caught.value.message


def test_the_stored_module_never_shows_its_password_in_errors(engine, module, sim, store):
    with refused(store, "duplicate_connection") as caught:
        connect(engine, sim, name="again")

    assert PASSWORD not in str(caught.value)
