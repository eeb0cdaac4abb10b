"""The event feed the reseller polls (`func=itemevent`; its real name is not public)."""

from __future__ import annotations

from simulator.formats import Made, cells, rows
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
        return rows(Made(events, event_row), p_elems=total, p_num=1, p_cnt=max(total, 1))
    start, count = page
    events = call.seller.read_events(call.account, start, count)
    return rows(Made(events, event_row), p_elems=total, p_num=start // count + 1, p_cnt=count)
