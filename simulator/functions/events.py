"""The event feed the reseller polls (`func=itemevent`; its real name is not public)."""

from __future__ import annotations

from datetime import datetime

from simulator.formats import TEXT_SPECIAL, Made, cells, row_xml, rows
from simulator.functions.common import date, stamp
from simulator.functions.table import Call, declare
from simulator.model import Event


def event_row(event: Event) -> list[tuple]:
    """An event's row as `cells` (a feed's rows are written without an element each)."""
    return cells(
        id=event.id,
        type=event.type,
        item=event.service,
        remoteid=event.remoteid,
        status=event.status,
        expiredate=date(event.expires),
        name=event.name,
        value=event.value,
        date=stamp(event.date),
    ) + [("ip", ip, None) for ip in event.ips]


def event_xml(event: Event) -> str:
    """`formats.row_xml(event_row(event))`, in one piece when nothing in it needs escaping."""
    # (and its numbers are ints): most events are a few numbers, two days and plain words,
    # and a feed may hold 100,000 of them
    numbers = (event.id, event.service, event.status)
    moment = event.date
    if type(moment) is datetime and moment.tzinfo is None and moment.year >= 1000:
        when = moment.isoformat(" ", "seconds")  # what `stamp` gives, without its cache's cost
    else:  # (each event has a moment of its own: the cache would only miss)
        when = stamp(moment)
    expires = date(event.expires)
    texts = (event.type, event.remoteid, event.name, event.value, expires, when, *event.ips)
    if (
        not all(type(number) is int for number in numbers)
        or not all(type(text) is str for text in texts)
        or TEXT_SPECIAL.search("".join(texts))
    ):
        return row_xml(event_row(event))
    kind, remoteid, name, value = texts[:4]
    return (
        f"<elem><id>{event.id}</id>"
        + (f"<type>{kind}</type>" if kind else "<type />")
        + f"<item>{event.service}</item>"
        + (f"<remoteid>{remoteid}</remoteid>" if remoteid else "<remoteid />")
        + f"<status>{event.status}</status>"
        + (f"<expiredate>{expires}</expiredate>" if expires else "<expiredate />")
        + (f"<name>{name}</name>" if name else "<name />")
        + (f"<value>{value}</value>" if value else "<value />")
        + (f"<date>{when}</date>" if when else "<date />")
        + "".join([f"<ip>{ip}</ip>" if ip else "<ip />" for ip in event.ips])
        + "</elem>"
    )


@declare("itemevent")
def itemevent(call: Call):
    """Every pending event of the caller, which the read takes off the feed.

    Paged (`p_cnt`, `p_num`), a read takes only the events of its page. A feed may hold
    100,000 events: each row is built only as the reply is written.
    """
    total = len(call.seller.feeds[call.account.login])
    page = call.page()
    if page is None:
        events = call.seller.read_events(call.account)
        return rows(Made(events, event_row, event_xml), p_elems=total, p_num=1, p_cnt=max(total, 1))
    start, count = page
    events = call.seller.read_events(call.account, start, count)
    return rows(
        Made(events, event_row, event_xml), p_elems=total, p_num=start // count + 1, p_cnt=count
    )
