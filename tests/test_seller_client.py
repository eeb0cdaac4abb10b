"""The seller client against the simulator: sessions, typed refusals, transport, bad replies."""

from __future__ import annotations

import gc
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
import requests
from requests.adapters import BaseAdapter

from reseller.client import SellerClient
from reseller.errors import SellerError, SellerUnavailable
from tests.helpers import PASSWORD, URL

LOGIN_OK = b'<?xml version="1.0"?><doc><auth id="s1" level="16">s1</auth></doc>'
SESSION_GONE = b'<doc><error type="auth"><msg>The session has expired</msg></error></doc>'


@pytest.fixture
def seller(http):
    return SellerClient(URL, "reseller", PASSWORD, http)


def order(seller: SellerClient, remoteid: str = "42", tariff: int = 5) -> int:
    return seller.order("vds", tariff, 1, remoteid, addons={}, ostempl="debian-12")


class Canned(BaseAdapter):
    """A transport that answers every request with what `reply(params)` gives: (status, body)."""

    def __init__(self, reply):
        super().__init__()
        self.reply = reply
        self.sent: list[dict] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        params = dict(parse_qsl(request.body or ""))
        self.sent.append(params)
        status, body = self.reply(params)
        response = requests.Response()
        response.status_code, response._content = status, body
        response.request, response.url = request, request.url
        return response

    def close(self):
        pass


def canned_client(reply) -> tuple[SellerClient, Canned]:
    adapter = Canned(reply)
    session = requests.Session()
    session.mount("http://garbage", adapter)
    return SellerClient("http://garbage", "reseller", PASSWORD, session), adapter


def after_login(body: bytes, status: int = 200):
    """A seller that logs anyone in, then answers every other call with `body`."""
    return lambda params: (200, LOGIN_OK) if params.get("func") == "auth" else (status, body)


# -- sessions --------------------------------------------------------------------------------


def test_the_client_logs_in_once_and_sends_its_session_not_its_password(seller, sim):
    seller.whoami()
    seller.whoami()

    assert [c["func"] for c in sim.calls()] == ["auth", "whoami", "whoami"]
    for call in sim.calls("whoami"):
        assert call["params"]["auth"] and "password" not in call["params"]


def test_after_two_idle_hours_the_client_logs_in_again_and_the_call_succeeds(seller, sim):
    seller.whoami()
    sim.advance("2h")

    assert seller.whoami()["level"] == 16
    assert [(c["func"], c["result"]) for c in sim.calls()] == [
        ("auth", "ok"),
        ("whoami", "ok"),
        ("whoami", "auth"),
        ("auth", "ok"),
        ("whoami", "ok"),
    ]


def test_a_session_in_use_every_50_minutes_never_expires(seller, sim):
    for _ in range(4):
        seller.whoami()
        sim.advance("50m")

    assert len(sim.calls("auth")) == 1


def test_a_wrong_password_is_the_sellers_auth_refusal_after_one_try(http, sim):
    seller = SellerClient(URL, "reseller", "wrong", http)

    with pytest.raises(SellerError) as caught:
        seller.whoami()

    assert caught.value.type == "auth"
    assert caught.value.message == "Invalid username or password"
    assert len(sim.calls("auth")) == 1


def test_a_session_the_seller_keeps_refusing_is_retried_only_once():
    seller, adapter = canned_client(after_login(SESSION_GONE))

    with pytest.raises(SellerError) as caught:
        seller.whoami()

    assert caught.value.type == "auth"
    assert [p["func"] for p in adapter.sent] == ["auth", "whoami", "auth", "whoami"]


def test_the_url_may_name_the_billmgr_path_or_end_in_a_slash(http):
    for url in (URL + "/", URL + "/billmgr"):
        assert SellerClient(url, "reseller", PASSWORD, http).whoami()["currency"] == "EUR"


def test_the_clients_repr_never_shows_the_password(seller):
    assert PASSWORD not in repr(seller)
    assert "reseller" in repr(seller)


# -- what the seller says --------------------------------------------------------------------


def test_whoami_gives_the_accounts_level_balance_and_currency(seller):
    assert seller.whoami() == {"level": 16, "balance": Decimal("100"), "currency": "EUR"}


def test_a_tariff_comes_with_prices_per_period_addons_items_and_templates(seller):
    (tariff,) = seller.tariffs(5)

    assert (tariff.id, tariff.intname, tariff.name, tariff.type) == (5, "vds-1", "VDS-1", "vds")
    assert tariff.currency == "EUR"
    assert tariff.prices == {1: Decimal(10), 3: Decimal(27), 12: Decimal(100)}
    ram, backup, panel = tariff.addons["ram"], tariff.addons["backup"], tariff.addons["panel"]
    assert (ram.id, ram.type, ram.included, ram.max, ram.price) == (
        11,
        "integer",
        1024,
        8192,
        Decimal("0.002"),
    )
    assert (backup.type, backup.price) == ("boolean", Decimal(2))
    assert panel.type == "enumeration"
    assert {name: price for name, (_, price) in panel.items.items()} == {
        "none": Decimal(0),
        "ispmanager": Decimal(5),
    }
    assert len({item_id for item_id, _ in panel.items.values()}) == 2
    assert tariff.ostempl == ["debian-12", "centos-7"] and tariff.recipes == ["lamp"]


def test_without_an_id_every_tariff_is_listed(seller):
    assert sorted(t.id for t in seller.tariffs()) == [5, 6, 7, 8, 9]


def test_an_order_gives_the_sellers_service_id_and_the_remoteid_finds_it(seller, sim):
    service_id = seller.order("vds", 5, 1, "42", addons={11: "2048", 12: "on"}, ostempl="centos-7")

    assert sim.service(service_id)["remoteid"] == "42"
    (listed,) = seller.services("vds", remoteid="42")
    assert (listed.id, listed.tariff, listed.period, listed.status) == (service_id, 5, 1, 2)
    assert listed.expires == date(2026, 2, 1) and len(listed.ips) == 1
    assert seller.services("vds", remoteid="43") == []


def test_one_service_in_full_has_addon_values_by_id_params_and_every_ip(seller, sim):
    service_id = seller.order("vds", 5, 1, "42", addons={11: "2048", 12: "on"}, ostempl="centos-7")
    sim.act("add_ip", service=service_id, ip="10.0.0.8")

    service = seller.service("vds", service_id)

    assert service.addons[11] == "2048" and service.addons[12] == "on"
    assert service.params["ostempl"] == "centos-7"
    assert service.ips[1:] == ["10.0.0.8"] and len(service.ips) == 2


def test_prolong_suspend_resume_delete_and_addon_changes_reach_the_seller(seller, sim):
    service_id = order(seller)

    assert seller.prolong(service_id, 1) == date(2026, 3, 1)
    seller.suspend("vds", service_id)
    assert sim.service(service_id)["status"] == "suspended"
    seller.resume("vds", service_id)
    seller.set_addons("vds", service_id, {12: "on"})
    assert sim.service(service_id)["addons"]["backup"] is True
    seller.delete("vds", service_id)
    assert sim.service(service_id)["status"] == "deleted"


def test_events_name_the_service_its_remoteid_and_ips_and_a_read_empties_the_feed(seller):
    service_id = order(seller, remoteid="42")

    (event,) = seller.events()

    assert (event.type, event.service, event.remoteid, event.status) == (
        "open",
        service_id,
        "42",
        2,
    )
    assert event.expires == date(2026, 2, 1) and len(event.ips) == 1
    assert seller.events() == []


def test_a_refusal_keeps_the_sellers_type_object_and_message(seller):
    with pytest.raises(SellerError) as caught:
        order(seller, tariff=99)

    assert (caught.value.type, caught.value.object) == ("value", "pricelist")
    assert caught.value.message == "no vds tariff 99"


def test_lack_of_money_at_the_seller_keeps_the_amount_needed(http):
    poor = SellerClient(URL, "poor", "pw", http)

    with pytest.raises(SellerError) as caught:
        order(poor)

    assert caught.value.type == "not_enough_money"
    assert caught.value.params == {"amount": "10.00", "have": "5", "currency": "EUR"}


def test_suspending_without_the_right_is_the_sellers_access_refusal(http):
    seller = SellerClient(URL, "nosuspend", "pw", http)
    service_id = order(seller)

    with pytest.raises(SellerError) as caught:
        seller.suspend("vds", service_id)

    assert caught.value.type == "access"


# -- transport failures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("down", "cannot reach http://simulator"),
        ("error", "http://simulator answered HTTP 500"),
        ("slow", "no reply from http://simulator within 10.0s"),
    ],
)
def test_a_transport_failure_is_unavailable_and_the_next_call_works(seller, sim, kind, says):
    seller.whoami()
    sim.fault(kind)

    with pytest.raises(SellerUnavailable) as caught:
        seller.whoami()

    assert caught.value.type == "unavailable"
    assert says in caught.value.message
    assert seller.whoami()["level"] == 16


def test_a_seller_down_while_logging_in_is_unavailable_and_the_next_call_logs_in(seller, sim):
    sim.fault("down")

    with pytest.raises(SellerUnavailable):
        seller.whoami()

    assert seller.whoami()["level"] == 16
    assert [c["result"] for c in sim.calls("auth")] == ["down", "ok"]


def test_a_lost_reply_is_unavailable_although_the_seller_did_the_work(seller, sim):
    seller.whoami()
    sim.fault("lose_reply")

    with pytest.raises(SellerUnavailable):
        order(seller, remoteid="42")

    assert [s["remoteid"] for s in sim.services()] == ["42"]


# -- replies that make no sense --------------------------------------------------------------

GARBAGE = [
    ("whoami", b"<html><body>502 Bad Gateway</body></html>", "<html> is not <doc>"),
    ("whoami", b"Service Temporarily Unavailable", "not XML"),
    ("whoami", b"", "not XML"),
    ("whoami", b"<doc/>", "whoami gave no <user>"),
    ("whoami", b'<doc><user level="16" balance="lots"/></doc>', "the balance is 'lots'"),
    ("whoami", b'<doc><user level="client" balance="1"/></doc>', "'client', not a whole number"),
    ("order", b"<doc><id>soon</id></doc>", "<id> is 'soon', not a whole number"),
    ("order", b"<doc><ok/></doc>", "<id> is '', not a whole number"),
    (
        "services",
        b"<doc><elem><id>1</id><pricelist_id>5</pricelist_id><period>1</period><status>2</status>"
        b"<expiredate>next week</expiredate></elem></doc>",
        "'next week' is not a date",
    ),
    (
        "tariffs",
        b'<doc><pricelist><id>5</id><price currency="EUR"><period type="month" length="1" '
        b'cost="ten"/></price></pricelist></doc>',
        "a price is 'ten', not an amount",
    ),
    (
        "tariffs",
        b'<doc><pricelist><id>5</id><price currency="EUR"><period type="fortnight" '
        b'cost="1"/></price></pricelist></doc>',
        "unknown period type 'fortnight'",
    ),
    (
        "tariffs",
        b'<doc><pricelist><id>5</id><price currency="EUR"><period type="month" length="one" '
        b'cost="1"/></price></pricelist></doc>',
        "'one', not a whole number",
    ),
    (
        "tariffs",
        b"<doc><pricelist><id>5</id><addon><id>11</id><intname>ram</intname>"
        b"<addontype>2</addontype><addonlimit>lots</addonlimit></addon></pricelist></doc>",
        "'lots', not a whole number",
    ),
    ("service", b"<doc><id>1</id><addon_ram>2048</addon_ram></doc>", "<addon_ram>"),
    (
        "events",
        b"<doc><elem><id>1</id><type>open</type><item>1</item><status>active</status></elem></doc>",
        "'active', not a whole number",
    ),
]
CALLS = {
    "whoami": lambda s: s.whoami(),
    "order": order,
    "services": lambda s: s.services("vds"),
    "tariffs": lambda s: s.tariffs(5),
    "service": lambda s: s.service("vds", 1),
    "events": lambda s: s.events(),
}


@pytest.mark.parametrize(("call", "body", "says"), GARBAGE)
def test_a_reply_that_makes_no_sense_is_unavailable_naming_what_was_wrong(call, body, says):
    seller, _ = canned_client(after_login(body))

    with pytest.raises(SellerUnavailable) as caught:
        CALLS[call](seller)

    assert says in caught.value.message


def test_a_login_reply_without_a_session_id_is_unavailable():
    seller, _ = canned_client(lambda params: (200, b"<doc><auth/></doc>"))

    with pytest.raises(SellerUnavailable) as caught:
        seller.whoami()

    assert "gave no session id" in caught.value.message


@pytest.mark.parametrize("status", [302, 404, 502])
def test_an_http_status_other_than_200_is_unavailable(status):
    seller, _ = canned_client(after_login(b"<doc/>", status))

    with pytest.raises(SellerUnavailable) as caught:
        seller.whoami()

    assert f"answered HTTP {status}" in caught.value.message


def test_a_reply_that_is_not_xml_leaves_the_garbage_collector_running():
    seller, _ = canned_client(after_login(b"Service Temporarily Unavailable"))

    with pytest.raises(SellerUnavailable, match="not XML"):
        seller.whoami()

    assert gc.isenabled()


def test_a_service_form_with_a_field_twice_reads_the_first():
    body = (
        b"<doc><id>7</id><id>8</id><name> web </name><name>db</name><pricelist>5</pricelist>"
        b"<period>1</period><status>2</status><status>3</status><expiredate>2026-02-01"
        b"</expiredate><remoteid>r-7</remoteid><remoteid>r-8</remoteid></doc>"
    )
    seller, _ = canned_client(after_login(body))

    service = seller.service("vds", 7)

    assert (service.id, service.name, service.status, service.remoteid) == (7, "web", 2, "r-7")


def test_a_long_reply_is_read_with_the_collector_paused_and_a_short_one_with_it_running():
    rows = b"".join(b"<elem><id>%d</id><type>open</type></elem>" % n for n in range(200))
    for body, paused in ((rows, True), (rows[:1000].rpartition(b"<elem>")[0], False)):
        seller, _ = canned_client(after_login(b"<doc>" + body + b"</doc>"))

        _, collecting = seller.call_rows("itemevent", lambda row: gc.isenabled())

        assert set(collecting) == {not paused}, len(body)


def test_a_list_row_with_a_cell_twice_reads_the_first():
    body = (
        b"<doc><elem><id>7</id><id>8</id><pricelist_id>5</pricelist_id><period>1</period>"
        b"<status>2</status><status>3</status><expiredate> 2026-02-01 </expiredate>"
        b"<ip>203.0.113.5</ip><ip>203.0.113.6</ip></elem></doc>"
    )
    seller, _ = canned_client(after_login(body))

    (row,) = seller.services("vds")

    assert (row.id, row.status, row.expires, row.ips) == (7, 2, date(2026, 2, 1), ["203.0.113.5"])


# -- a list's rows kept from one reply to the next -------------------------------------------


def row(service: int, name: str = "web", status: int = 2) -> bytes:
    """A VDS's row as its list shows it, `name` put in as it is (escaped or not)."""
    return (
        f"<elem><id>{service}</id><name>{name}</name><pricelist_id>5</pricelist_id>"
        f"<period>1</period><status>{status}</status><expiredate>2026-02-01</expiredate>"
        f"<ip>203.0.113.{service}</ip></elem>"
    ).encode()


def listing(*rows: bytes, head: bytes = b'<?xml version="1.0" encoding="UTF-8"?>\n<doc>') -> bytes:
    return head + b"".join(rows) + b"<p_elems>1</p_elems></doc>"


def lists_in_turn(*bodies: bytes) -> SellerClient:
    """A client whose seller answers its list calls with `bodies` in turn."""
    replies = iter(bodies)
    return canned_client(
        lambda params: (200, LOGIN_OK) if params["func"] == "auth" else (200, next(replies))
    )[0]


def read(seller: SellerClient) -> list | tuple:
    """The listed services, or the refusal or bad reply instead."""
    try:
        return seller.services("vds")
    except SellerError as refusal:
        return ("refused", refusal.type, refusal.message)
    except SellerUnavailable as error:
        return ("unavailable", error.message)


# Replies in turn: rows again, changed, escaped, doubled; and replies that read otherwise than
# their rows' bytes alone say (another encoding, a namespace, a CDATA section, a comment, a row
# not the root's child, a broken reply) or that are refused.
REPLIES = [
    listing(row(1), row(2), row(3, "a&amp;b")),
    listing(row(1), row(2, status=3), row(3, "a&amp;b")),
    listing(row(1), row(3, "a&lt;b"), row(3, "a&amp;b"), row(3, "a&amp;b")),
    listing(row(1), row(2, "caf\u00e9")),
    listing(row(1), row(2, "caf\u00e9"), head=b'<?xml version="1.0" encoding="ISO-8859-1"?><doc>'),
    listing(row(1), row(2, "caf\u00e9")),
    listing(row(1), row(2), head=b'<doc xmlns="urn:elsewhere">'),
    listing(row(1), row(2), head=b"<doc>"),
    listing(row(1), row(2, "<![CDATA[x</elem><elem>]]>")),
    listing(row(1), b"<!-- <elem></elem> -->", row(2)),
    listing(row(1), b"<more>", row(2), b"</more>"),
    listing(row(1), row(2)),
    listing(row(1), row(2))[:-20],
    listing(row(1), row(2, status="two")),
    listing(row(1), row(2)),
    b'<doc><error type="access"><msg>No</msg></error>' + row(1) + b"</doc>",
    listing(row(1), row(2), row(2)),
    listing(b"<!-- <elem>x</elem> -->", b'<elem a="1">' + row(7)[6:]),
    listing(b"<!-- <elem>x</elem> -->", b'<elem a="1">' + row(8)[6:]),
]


def test_a_list_read_with_the_last_replys_rows_kept_reads_as_a_new_client_reads_it():
    warm = lists_in_turn(*REPLIES)

    for reply in REPLIES:
        assert read(warm) == read(lists_in_turn(reply)), reply


# Replies in turn whose rows move: one gone, one new, the order turned, a row changed amid
# unchanged ones, kept rows parted by text, by another element, or by a comment they end up in,
# a bad row twice.
MOVES = [
    listing(row(1), row(2), row(3), row(4)),
    listing(row(1), row(3), row(4)),
    listing(row(1), row(5), row(3), row(4)),
    listing(row(4), row(3), row(1), row(5)),
    listing(row(4), row(3, status=3), row(1), row(5)),
    listing(row(4), b"\n ", row(3, status=3), b"<x>1</x>", row(1), row(5)),
    listing(row(4), b"<!-- ", row(3, status=3), b" -->", row(1), row(5)),
    listing(row(4), row(3, status=3), row(1), row(5)),
    listing(row(4), row(3, status=3), b"<x>", row(1), b"</x>", row(5)),
    listing(row(4), row(4), row(3, status=3), row(1), row(5), row(5)),
    listing(),
    listing(row(4), row(3, status=3)),
    listing(row(4), row(3, status="three"), row(1)),
    listing(row(4), row(3, status="three"), row(1)),
    listing(row(4), row(1)),
]


def test_a_list_whose_kept_rows_move_or_are_parted_reads_as_a_new_client_reads_it():
    warm = lists_in_turn(*MOVES)

    for reply in MOVES:
        assert read(warm) == read(lists_in_turn(reply)), reply


def test_the_list_of_services_as_kept_is_its_callers_own():
    seller = lists_in_turn(*[listing(row(1), row(2))] * 2)
    seller.services_as_kept("vds").clear()

    assert [s.id for s in seller.services_as_kept("vds")] == [1, 2]


def test_a_listed_service_is_its_callers_own_though_its_row_is_kept():
    seller = lists_in_turn(*[listing(row(1, "a&amp;b"))] * 3)
    seller.services("vds")
    (first,) = seller.services("vds")
    first.params["domain"], first.ips[:] = "changed.example", []

    (again,) = seller.services("vds")

    assert (again.name, again.params, again.ips) == ("a&b", {}, ["203.0.113.1"])
