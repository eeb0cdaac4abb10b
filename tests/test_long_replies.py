"""Long replies: a feed of thousands of events, written row by row and read row by row.

The seller writes each row of a long list as it builds it, and the client reads each row as it
arrives; both must see what the whole tree gives, and a reply cut short is still no reply.
"""

from __future__ import annotations

import tracemalloc
from xml.etree import ElementTree as ET

import pytest

from reseller import client as seller_client
from reseller.client import FEED_BYTES, RemoteEvent, SellerClient, _parsed_rows
from reseller.errors import SellerError, SellerUnavailable
from simulator.app import create_app
from simulator.formats import (
    FORMATS,
    LIST,
    Document,
    Made,
    _element,
    el,
    fields,
    render,
    rows,
    to_xml,
)
from simulator.functions.events import event_row
from simulator.transport import in_process_client
from simulator.world import seller_from_world
from tests.conftest import START
from tests.test_seller_client import after_login, canned_client

SERVICES, CHANGES = 20, 3000  # longer than a piece the renderer encodes and one the client reads
QUEUED = SERVICES + CHANGES  # each order's `open` event, then each change's
AUTH = {"authinfo": "reseller:s3cret"}


@pytest.fixture
def busy_seller(world):
    """A seller whose reseller has `QUEUED` events queued, values that need escaping included."""
    world["accounts"]["reseller"]["balance"] = 1_000_000
    seller = seller_from_world(world, START)
    account = seller.accounts["reseller"]
    made = [
        seller.order(account, "vds", 5, 1, remoteid=f"r-{n}", params={}) for n in range(SERVICES)
    ]
    for n in range(CHANGES):
        seller.set_param(made[n % SERVICES].id, "hostname", f"web{n} <&\"'> \u2603")
    return seller


@pytest.fixture
def feed(busy_seller):
    """The queued events, in the feed's order, left on it."""
    return list(busy_seller.feeds["reseller"])


@pytest.fixture
def feed_bytes(busy_seller) -> bytes:
    """The `itemevent` reply the seller gives for its busy feed."""
    reply = in_process_client(create_app(busy_seller)).post(
        "http://simulator/billmgr", data={"func": "itemevent", **AUTH}
    )
    assert reply.status_code == 200 and len(reply.content) > 4 * FEED_BYTES
    return reply.content


def event_element(event) -> ET.Element:
    """An event's row as a whole tree holds it: an element of elements."""
    return el("elem", children=[_element(cell) for cell in event_row(event)])


def expected(events) -> list[RemoteEvent]:
    """The events as the client should learn them: the seller's expiry is a day on the wire."""
    return [
        RemoteEvent(
            e.id,
            e.type,
            e.service,
            e.remoteid,
            e.status,
            e.expires and e.expires.date(),
            e.name,
            e.value,
            e.ips,
        )
        for e in events
    ]


def reading(body: bytes) -> SellerClient:
    return canned_client(after_login(body))[0]


def traced(work) -> tuple[int, int, object]:
    """The most memory `work()` held at once, what it still holds after, and what it gave."""
    tracemalloc.start()
    try:
        result = work()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, kept, result


# -- the seller's side -------------------------------------------------------------------------


@pytest.mark.parametrize("out", sorted(FORMATS))
def test_a_long_feed_written_row_by_row_is_the_whole_trees_reply_in_every_format(feed, out):
    meta = {"p_elems": len(feed), "p_num": 1, "p_cnt": len(feed)}
    whole = Document(LIST, [event_element(e) for e in feed] + fields(**meta))

    row_by_row = rows(Made(feed, event_row), **meta)

    assert render(row_by_row, out, {"func": "itemevent"}) == render(
        whole, out, {"func": "itemevent"}
    )


def test_a_long_feed_that_says_ok_says_it_before_its_rows_as_the_whole_tree_does(feed):
    elems = [event_element(e) for e in feed]
    whole = Document(LIST, elems + fields(p_elems=len(feed)))
    row_by_row = rows(Made(feed, event_row), p_elems=len(feed))
    for document in (whole, row_by_row):
        assert document.has("elem") and not document.has("ok")
        document.root.insert(0, el("ok"))

    assert to_xml(row_by_row.root) == to_xml(whole.root)
    assert to_xml(row_by_row.root).startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<doc><ok />'
    )


def test_a_long_feed_is_answered_without_its_tree_ever_held_whole(busy_seller):
    client = in_process_client(create_app(busy_seller))

    peak, _, reply = traced(
        lambda: client.post("http://simulator/billmgr", data={"func": "itemevent", **AUTH})
    )

    # the reply's bytes, once; the whole tree of these rows would take about six times more
    assert len(reply.content) > 500_000 and peak < 2 * len(reply.content)


def test_writing_a_list_leaves_its_tree_as_small_as_it_was():
    document = rows([[el("id", n), el("name", f"n{n}")] for n in range(20_000)], p_elems=20_000)

    tree = document.root

    _, grown, _ = traced(lambda: to_xml(tree) and None)

    # reading an element's `attrib` would have given each of its 60,000 elements a dict
    assert grown < 100_000


# -- the client's side -------------------------------------------------------------------------


def test_the_client_learns_every_event_of_a_long_feed_in_its_order(feed_bytes):
    events = reading(feed_bytes).events()

    assert len(events) == QUEUED
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert events[-1].value == f"web{CHANGES - 1} <&\"'> \u2603"


def test_the_client_reads_what_the_seller_queued_field_for_field(feed, feed_bytes):
    assert reading(feed_bytes).events() == expected(feed)


def test_a_long_feed_cut_short_anywhere_is_a_failed_read_without_events(feed_bytes):
    for cut in (1, FEED_BYTES - 1, FEED_BYTES, FEED_BYTES + 1, len(feed_bytes) // 2, -8, -1):
        with pytest.raises(SellerUnavailable) as caught:
            reading(feed_bytes[:cut]).events()
        assert "not XML" in caught.value.message, cut


def test_a_bad_row_in_a_reply_cut_short_is_a_reply_that_is_not_xml(feed_bytes):
    bad_first = feed_bytes.replace(b"<item>", b"<item>x", 1)

    with pytest.raises(SellerUnavailable) as caught:
        reading(bad_first[: len(bad_first) // 2]).events()

    assert "not XML" in caught.value.message


def test_a_bad_row_beside_the_sellers_refusal_is_the_refusal():
    body = (
        b"<doc><elem><id>x</id><type>open</type><item>1</item></elem>"
        b'<error type="access" object="itemevent"><msg>no</msg></error></doc>'
    )

    with pytest.raises(SellerError) as caught:
        reading(body).events()

    assert caught.value.type == "access"


def test_a_bad_row_of_a_whole_feed_is_named(feed_bytes):
    bad_last = feed_bytes[::-1].replace(b">meti<", b"x>meti<", 1)[::-1]

    with pytest.raises(SellerUnavailable) as caught:
        reading(bad_last).events()

    assert "<item> is 'x" in caught.value.message


def test_rows_inside_other_elements_of_the_reply_are_not_events():
    body = (
        b"<doc><list><elem><id>9</id><item>9</item></elem></list>"
        b"<elem><elem><id>8</id><item>8</item></elem><id>1</id><item>1</item></elem></doc>"
    )

    assert [e.id for e in reading(body).events()] == [1]


SHORT_REPLY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<doc><p_num>1</p_num>'
    b"<elem><id>1</id><item>5</item><elem><id>7</id></elem></elem><list><elem /></list>"
    b"<elem><id>2</id><item>x</item></elem><elem><id>3</id></elem><p_elems>3</p_elems></doc>"
)


def row_ids(row: ET.Element) -> str:
    """A row maker that finds a row bad when its item is not a number, as the feed's does."""
    if not row.findtext("item", "0").isdigit():
        raise SellerUnavailable(f"bad item in row {row.findtext('id')}")
    return row.findtext("id")


def parsed_in_pieces(content: bytes, piece: int, monkeypatch) -> tuple:
    """`_parsed_rows` of `content` when a reply is read `piece` bytes at a time."""
    monkeypatch.setattr(seller_client, "FEED_BYTES", piece)
    try:
        root, made, bad = _parsed_rows(content, row_ids)
    except ET.ParseError as error:
        return ("not XML", str(error))
    return ET.tostring(root), made, str(bad)


def test_a_reply_of_one_piece_is_read_whole_as_it_is_read_piece_by_piece(monkeypatch):
    read_whole = parsed_in_pieces(SHORT_REPLY, FEED_BYTES, monkeypatch)

    assert read_whole == parsed_in_pieces(SHORT_REPLY, 7, monkeypatch)
    assert read_whole[1] == ["1"] and "bad item in row 2" in read_whole[2]
    for cut in (0, 1, 40, len(SHORT_REPLY) // 2, -1):
        short = SHORT_REPLY[:cut]
        assert parsed_in_pieces(short, FEED_BYTES, monkeypatch)[0] == "not XML"
        assert parsed_in_pieces(short, FEED_BYTES, monkeypatch) == parsed_in_pieces(
            short, 7, monkeypatch
        )


def test_a_feed_read_again_after_a_lost_session_gives_each_event_once(feed_bytes):
    rows_then_gone = feed_bytes.replace(
        b"</doc>", b'<error type="auth"><msg>gone</msg></error></doc>'
    )
    answers = iter([rows_then_gone, feed_bytes])
    login = b'<doc><auth id="s1">s1</auth></doc>'
    seller, _ = canned_client(
        lambda params: (200, login if params["func"] == "auth" else next(answers))
    )

    assert len(seller.events()) == QUEUED


def test_reading_a_long_feed_never_holds_its_tree_whole(feed_bytes):
    client = reading(feed_bytes)

    peak, kept, events = traced(client.events)

    # the events, and a few rows at a time; the whole tree would take six times the bytes more
    assert len(events) == QUEUED and peak - kept < len(feed_bytes)


def test_a_list_still_to_be_written_knows_its_metadata_and_what_it_lacks(feed):
    listed = rows(Made(feed, event_row), p_elems=len(feed))

    assert listed.has("p_elems") and listed.has("elem") and not listed.has("ok")
