"""Long replies: a feed of thousands of events, written row by row.

The seller writes each row of a long list as it builds it; the reply must be what the whole
tree gives.
"""

from __future__ import annotations

import tracemalloc

import pytest

from simulator.app import create_app
from simulator.formats import FORMATS, el, render, rows, rows_of, to_xml
from simulator.functions.events import event_row
from simulator.transport import in_process_client
from simulator.world import seller_from_world
from tests.conftest import START

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
    whole = rows([event_row(e) for e in feed], **meta)

    row_by_row = rows_of(feed, event_row, **meta)

    assert render(row_by_row, out, {"func": "itemevent"}) == render(
        whole, out, {"func": "itemevent"}
    )


def test_a_long_feed_that_says_ok_says_it_before_its_rows_as_the_whole_tree_does(feed):
    whole = rows([event_row(e) for e in feed], p_elems=len(feed))
    row_by_row = rows_of(feed, event_row, p_elems=len(feed))
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

    _, grown, _ = traced(lambda: to_xml(document.root) and None)

    # reading an element's `attrib` would have given each of its 60,000 elements a dict
    assert grown < 100_000
