"""The seller client: the only code that speaks HTTP to the selling BILLmanager.

It calls `/billmgr` with `out=xml`, logs in with `func=auth` and sends `auth=<session>`,
logging in again once when the seller says the session is gone. Seller refusals become
`SellerError` (type and message kept); transport failures and bad replies `SellerUnavailable`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from xml.etree import ElementTree as ET

import requests

from reseller import collector
from reseller.errors import SellerError, SellerUnavailable

PERIOD_CODES = {"day": -50, "trial": -100, "lifetime": 0}
ADDON_TYPES = {"1": "boolean", "2": "integer", "3": "enumeration"}


@dataclass
class RemoteAddon:
    """An add-on of a seller tariff as `pricelist.export` shows it."""

    id: int
    intname: str
    type: str
    included: int = 0
    max: int | None = None
    price: Decimal = Decimal(0)
    items: dict[str, tuple[int, Decimal]] = field(default_factory=dict)


@dataclass
class RemoteTariff:
    """A seller tariff: prices per period code in the seller's currency, add-ons, templates."""

    id: int
    intname: str
    name: str
    type: str
    currency: str
    prices: dict[int, Decimal]
    addons: dict[str, RemoteAddon]
    ostempl: list[str]
    recipes: list[str]


@dataclass(slots=True)  # a list brings thousands: no __dict__ each
class RemoteService:
    """A seller service: its status code, expiry, add-on values by add-on id, params and IPs."""

    id: int
    type: str
    name: str
    tariff: int
    period: int
    status: int
    expires: date | None
    remoteid: str = ""
    addons: dict[int, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    ips: list[str] = field(default_factory=list)


ROW_PARAMS = ("domain", "username", "licname")  # the cells of a list row that are parameters
LIST_ROW_PARAMS = (*ROW_PARAMS, "ip")  # every parameter a listed service has: a licence's IP too


@dataclass(slots=True)  # a poll may bring 100,000: no __dict__ each
class RemoteEvent:
    """One event of the seller's feed."""

    id: int
    type: str
    service: int
    remoteid: str
    status: int
    expires: date | None
    name: str = ""
    value: str = ""
    ips: list[str] = field(default_factory=list)


def _text(node: ET.Element, tag: str, default: str = "") -> str:
    child = node.find(tag)
    return (child.text or "").strip() if child is not None and child.text else default


def _cells(row: ET.Element) -> dict[str, str]:
    """A list row's cells by tag, each the first of its tag as `_text` reads it, in one pass:
    a list or a poll may bring thousands of rows. (Read last to first, the first one stays.)"""
    return {cell.tag: (cell.text or "").strip() for cell in reversed(row)}


SHORT_REPLY = 1 << 12  # bytes: too few objects for the collector to scan more than once


def _read(content: bytes, row) -> tuple[ET.Element, list, SellerUnavailable | None]:
    """The reply's root and, with `row`, what `SellerClient._post` says of its rows."""
    if row is None:
        return ET.fromstring(content), [], None
    if isinstance(row, KeptRows):
        return row.parse(content)
    return _parsed_rows(content, row)


def _tree(content: bytes) -> ET.Element:
    """A reply parsed, the collector paused meanwhile (see `reseller.collector`): a list of
    thousands of rows otherwise has it scan the growing tree and the heap over and over, over
    half the parse. ET.ParseError if it is not XML."""
    with collector.paused():
        return ET.fromstring(content)


FEED_BYTES = 1 << 16  # a long reply is parsed this much at a time


def _parsed_rows(
    content: bytes, row: Callable[[ET.Element], object]
) -> tuple[ET.Element, list, SellerUnavailable | None]:
    """The reply's root as `ET.fromstring` reads it but for its `<elem>` children, what `row`
    made of each of those in order, and the first row it found bad (raised `SellerUnavailable`).

    Each `<elem>` is handed to `row` once it is read and then dropped, so a poll of 100,000
    events is never a whole tree. A child of the root is whole once the next one starts: the
    tree builder appends an element to its parent when it opens. A reply that does not parse
    raises `ET.ParseError`, however many rows were read before. A reply no longer than one
    piece is read whole: it is no larger a tree than a piece, and costs no event per element.
    """
    root: ET.Element | None = None
    made: list = []
    bad: SellerUnavailable | None = None
    kept = 0  # the root's first children that are not rows, left in place

    def take(whole: int) -> None:
        nonlocal bad, kept
        others = []
        for child in root[kept:whole]:
            if child.tag != "elem":
                others.append(child)
            elif bad is None:
                try:
                    made.append(row(child))
                except SellerUnavailable as error:
                    bad = error
        root[kept:whole] = others
        kept += len(others)

    if len(content) <= FEED_BYTES:  # most polls bring a few events
        root = ET.fromstring(content)
        take(len(root))
        return root, made, bad
    parser = ET.XMLPullParser(("start",))
    view = memoryview(content)
    for start in range(0, len(content), FEED_BYTES):
        parser.feed(view[start : start + FEED_BYTES])
        root = _first_start(parser, root)
        if root is not None and len(root) - 1 > kept:
            take(len(root) - 1)
    parser.close()
    root = _first_start(parser, root)
    take(len(root))
    return root, made, bad


class KeptRows:
    """What `row` made of each row of a list's last reply, by the row's exact bytes, to take
    again for a row that comes again byte for byte: a daily list repeats most of its rows, and
    parsing them was most of reading it. One list's rows are kept, no more: those of the last
    reply replace the others."""

    def __init__(self, row: Callable[[ET.Element], object]):
        self.row = row
        # its head, its rows in order, what was made of each, and each row's place by its bytes
        self._kept: tuple[bytes | None, list[bytes], list, dict[bytes, int]]
        self._kept = (None, [], [], {})

    def parse(self, content: bytes) -> tuple[ET.Element, list, SellerUnavailable | None]:
        """What `_parsed_rows(content, self.row)` gives, a kept row taken as made rather than
        parsed: the reply is parsed with `<elem/>` in place of each run of kept rows. Where every
        row cut out is one of the root's `elem` children (none in a comment, CDATA or another
        element), a kept row is a whole element, read alike in any reply of the same head (its
        encoding, DTD and namespaces), so the reply reads as the one parsed; otherwise it is
        parsed whole. A run stands for its rows: nothing lies between them, so the root keeps
        the same children, text and tails whether they are one element or many."""
        kept_head, last, values, places = self._kept
        apart = _rows_apart(content, last, places)
        if apart is None:
            self._kept = (None, [], [], {})
            return _parsed_rows(content, self.row)
        head, found, between = apart
        if head != kept_head:
            places = {}
        parts = [head]
        made: list = []  # each row's value, or its bytes until it is made
        fresh: list[tuple[int, int]] = []  # each row not kept: its place in `parts`, in `made`
        pieces = 0  # rows not kept and runs of kept ones
        in_run = False
        for row, rest in zip(found, between, strict=True):
            place = places.get(row)
            if place is None:
                fresh.append((pieces, len(made)))
                made.append(row)
                parts.append(row)
                pieces += 1
                in_run = False
            else:
                made.append(values[place])
                if not in_run:
                    parts.append(b"<elem/>")
                    pieces += 1
                    in_run = True
            if rest:
                parts.append(rest)
                in_run = False
        try:
            root = _tree(b"".join(parts))
        except ET.ParseError:
            return _parsed_rows(content, self.row)  # the reply's own error, word for word
        elements = [child for child in root if child.tag == "elem"]
        if len(elements) != pieces:
            self._kept = (None, [], [], {})
            return _parsed_rows(content, self.row)
        bad = None
        for piece, at in fresh:
            try:
                made[at] = self.row(elements[piece])
            except SellerUnavailable as error:
                bad = error
                del made[at:]
                break
        root[:] = [child for child in root if child.tag != "elem"]
        found = found[: len(made)]
        places = dict(zip(found, range(len(found)), strict=True))
        self._kept = (head, found, list(made), places)  # the caller's list its own
        return root, made, bad


OPEN, CLOSE = b"<elem>", b"</elem>"


def _rows_apart(
    content: bytes, last: list[bytes] = (), places: dict[bytes, int] | None = None
) -> tuple[bytes, list[bytes], list[bytes]] | None:
    """A reply cut around its rows: what comes before the first `<elem>`, each row from its
    `<elem>` to the `</elem>` after it, and what follows each up to the next; None where an
    `elem` tag (or one of a longer name) has another form, or a row has no `</elem>`.

    `last`, the rows of a reply before in order, and `places`, each one's place there by its
    bytes: a row of `last` found where the one before it ends is taken without a search (it
    holds no other `elem` tag, so it ends there too), and a 10,000-row list is cut in one
    pass rather than split and counted. The rest is searched for `elem` tags piece by piece:
    none spans two pieces, as a row begins with `<` and ends with `>`.
    """
    start = content.find(OPEN)
    end = len(content)
    if start < 0:
        start = end
    head = content[:start]
    if b"<elem" in head or b"</elem" in head:
        return None
    found: list[bytes] = []
    between: list[bytes] = []
    follows, count = 0, len(last)  # the place in `last` of the row expected next
    while start < end:
        if follows < count and content.startswith(last[follows], start):
            row = last[follows]
        else:
            close = content.find(CLOSE, start + 6)
            if close < 0:
                return None
            row = content[start : close + 7]
            if row.find(b"<elem", 1) >= 0 or row.find(b"</elem") != len(row) - 7:
                return None
            place = places.get(row) if places else None
            if place is not None:
                follows = place  # found elsewhere: the rows after it may follow it here too
        found.append(row)
        follows += 1
        start += len(row)
        if content.startswith(OPEN, start):
            between.append(b"")
            continue
        following = content.find(OPEN, start)
        if following < 0:
            following = end
        rest = content[start:following]
        if b"<elem" in rest or b"</elem" in rest:
            return None
        between.append(rest)
        start = following
    return head, found, between


def _first_start(parser: ET.XMLPullParser, root: ET.Element | None) -> ET.Element | None:
    """The root, from the first start event if it is not known yet; the other events dropped
    (in C: one for every element of the reply)."""
    events = parser.read_events()
    if root is None:
        root = next(events, (None, None))[1]
    deque(events, maxlen=0)
    return root


def _whole(raw: str | None, what: str) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise SellerUnavailable(f"bad reply: {what} is {raw!r}, not a whole number") from None
    if not -(2**63) <= value < 2**63:  # no id or count is larger, and SQLite holds no more
        raise SellerUnavailable(f"bad reply: {what} is {raw!r}, out of range")
    return value


def _int(node: ET.Element, tag: str) -> int:
    return _whole(_text(node, tag), f"<{tag}>")


LARGEST_AMOUNT = Decimal(10) ** 15  # far above any price, well inside Decimal's 28 digits


def _decimal(raw: str | None, what: str) -> Decimal:
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise SellerUnavailable(f"bad reply: {what} is {raw!r}, not an amount") from None
    if not amount.is_finite() or abs(amount) >= LARGEST_AMOUNT:
        raise SellerUnavailable(f"bad reply: {what} is {raw!r}, not a usable amount")
    return amount


def _date(raw: str) -> date | None:
    if not raw:
        return None
    if len(raw) >= 10 and raw[4] == raw[7] == "-" and (raw[:4] + raw[5:7] + raw[8:10]).isdigit():
        try:  # the seller's own form, read without strptime's cost
            return date(int(raw[:4]), int(raw[5:7]), int(raw[8:10]))
        except ValueError:
            pass  # not a day of the calendar: strptime says so below
    try:
        return datetime.strptime(raw[:10], "%Y-%m-%d").date()
    except ValueError:
        raise SellerUnavailable(f"bad reply: {raw!r} is not a date") from None


def _period_code(period: ET.Element) -> int:
    kind = period.get("type", "month")
    if kind == "month":
        return _whole(period.get("length", "1"), "a period length")
    if kind in PERIOD_CODES:
        return PERIOD_CODES[kind]
    raise SellerUnavailable(f"bad reply: unknown period type {kind!r}")


def _monthly(node: ET.Element) -> Decimal:
    period = node.find("price/period")
    return _decimal(period.get("cost") if period is not None else "0", "an add-on price")


def parse_tariff(node: ET.Element) -> RemoteTariff:
    price = node.find("price")
    prices = {
        _period_code(p): _decimal(p.get("cost"), "a price")
        for p in (price.findall("period") if price is not None else [])
    }
    params = {
        _text(p, "intname"): [_text(v, "intname") for v in p.findall("itemtypeparamvalue")]
        for p in node.findall("itemtypeparam")
    }
    addons = {}
    for a in node.findall("addon"):
        kind = ADDON_TYPES.get(_text(a, "addontype"), "integer")
        # `addonlimit` is what the tariff includes (999999: unlimited), `addonmax` the most
        # an order may ask for; neither is sent for an add-on that is not a number
        most = _text(a, "addonmax")
        addon = RemoteAddon(
            _int(a, "id"),
            _text(a, "intname"),
            kind,
            included=_whole(_text(a, "addonlimit") or "0", "an add-on's included amount"),
            max=_whole(most, "an add-on's maximum") if most else None,
        )
        if kind == "enumeration":
            addon.items = {
                _text(i, "intname"): (_int(i, "id"), _monthly(i))
                for i in a.findall("enumeration/enumerationitem")
            }
        else:
            addon.price = _monthly(a)
        addons[addon.intname] = addon
    return RemoteTariff(
        id=_int(node, "id"),
        intname=_text(node, "intname"),
        name=_text(node, "name"),
        type=_text(node, "itemtype_info/intname") or _text(node, "itemtype"),
        currency=price.get("currency", "") if price is not None else "",
        prices=prices,
        addons=addons,
        ostempl=params.get("ostempl", []),
        recipes=params.get("recipe", []),
    )


def _listed_service(row: ET.Element, type: str) -> RemoteService:
    """A service as its row in its type's list shows it."""
    cells = _cells(row)
    params = {k: cells[k] for k in ROW_PARAMS if cells.get(k)}
    ip = cells.get("ip", "")
    if type == "soft" and ip:
        params["ip"] = ip  # a licence's IP is what it is bound to, not an address it has
    return _service_of(
        cells, type, "pricelist_id", {}, params, [ip] if ip and type != "soft" else []
    )


def _service_of(
    cells: dict, type: str, tariff: str, addons: dict, params: dict, ips: list
) -> RemoteService:
    """A service from a list row's or form's cells, its tariff's id in the cell `tariff`."""
    return RemoteService(
        id=_whole(cells.get("id", ""), "<id>"),
        type=type,
        name=cells.get("name", ""),
        tariff=_whole(cells.get(tariff, ""), f"<{tariff}>"),
        period=_whole(cells.get("period", ""), "<period>"),
        status=_whole(cells.get("status", ""), "<status>"),
        expires=_date(cells.get("expiredate", "")),
        remoteid=cells.get("remoteid", ""),
        addons=addons,
        params=params,
        ips=ips,
    )


def _copy(service: RemoteService) -> RemoteService:
    """A kept service's copy, its dicts and list its own: a caller may change what it is given."""
    s = service
    return RemoteService(
        s.id,
        s.type,
        s.name,
        s.tariff,
        s.period,
        s.status,
        s.expires,
        s.remoteid,
        dict(s.addons),
        dict(s.params),
        list(s.ips),
    )


def unreachable_reason(error: requests.RequestException) -> str:
    """The short cause of a failed request (`Connection refused`), not urllib3's whole chain."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return str(error)


class SellerClient:
    """A logged-in conversation with one seller account over a `requests` session."""

    def __init__(
        self, url: str, login: str, password: str, session: requests.Session, timeout: float = 10.0
    ):
        self.url = url.rstrip("/")
        self.endpoint = self.url if self.url.endswith("billmgr") else self.url + "/billmgr"
        self.login = login
        self._password = password
        self.http = session
        self.timeout = timeout
        self._session_id: str | None = None
        self._kept_lists: dict[str, KeptRows] = {}  # by type

    def __repr__(self) -> str:
        return f"SellerClient({self.url!r}, {self.login!r}, '***')"

    def _post(self, params: dict, row=None) -> tuple[ET.Element, list]:
        """The reply's root; with `row`, without its `<elem>` rows but with what `row` made of
        each (`_parsed_rows`), a bad row raised only once the reply is known good otherwise."""
        try:
            reply = self.http.post(
                self.endpoint, data={"out": "xml", **params}, timeout=self.timeout
            )
        except requests.Timeout:
            raise SellerUnavailable(f"no reply from {self.url} within {self.timeout}s") from None
        except requests.RequestException as error:
            raise SellerUnavailable(
                f"cannot reach {self.url}: {unreachable_reason(error)}"
            ) from None
        if reply.status_code != 200:
            raise SellerUnavailable(f"{self.url} answered HTTP {reply.status_code}")
        content = reply.content
        try:
            if len(content) <= SHORT_REPLY:  # most calls': pausing costs more than it saves
                root, made, bad = _read(content, row)
            else:
                with collector.paused():  # see `_tree`
                    root, made, bad = _read(content, row)
        except ET.ParseError as error:
            raise SellerUnavailable(f"bad reply from {self.url}: not XML ({error})") from None
        if root.tag != "doc":
            raise SellerUnavailable(f"bad reply from {self.url}: <{root.tag}> is not <doc>")
        error = root.find("error")
        if error is not None:
            params = {
                p.get("name"): (p.text or "")
                for p in error.findall("param")
                if p.get("name") != "object"
            }
            raise SellerError(
                error.get("type", "unknown"), _text(error, "msg"), error.get("object", ""), params
            )
        if bad is not None:
            raise bad
        return root, made

    def _open_session(self) -> str:
        root, _ = self._post({"func": "auth", "username": self.login, "password": self._password})
        auth = root.find("auth")
        if auth is None or not auth.get("id"):
            raise SellerUnavailable("bad reply: func=auth gave no session id")
        return auth.get("id")

    def call(self, func: str, **params) -> ET.Element:
        """One API call in the logged-in session; logs in again once if the session expired."""
        return self._call(func, params)[0]

    def call_rows(
        self, func: str, row: Callable[[ET.Element], object], **params
    ) -> tuple[ET.Element, list]:
        """`call` for a list that may be long: what `row` made of each of its rows, read one by
        one, beside the reply's root without them."""
        return self._call(func, params, row)

    def _call(self, func: str, params: dict, row=None) -> tuple[ET.Element, list]:
        params = {k: v for k, v in params.items() if v is not None}
        for attempt in (1, 2):
            if self._session_id is None:
                self._session_id = self._open_session()
            try:
                return self._post({"func": func, "auth": self._session_id, **params}, row)
            except SellerError as error:
                if error.type != "auth" or attempt == 2:
                    raise
                self._session_id = None
        raise AssertionError("unreachable")

    # -- functions ---------------------------------------------------------------------------

    def whoami(self) -> dict:
        user = self.call("whoami").find("user")
        if user is None:
            raise SellerUnavailable("bad reply: whoami gave no <user>")
        return {
            "level": _whole(user.get("level", "0"), "the level"),
            "balance": _decimal(user.get("balance"), "the balance"),
            "currency": user.get("currency", ""),
        }

    def tariffs(self, tariff_id: int | None = None) -> list[RemoteTariff]:
        root = self.call("pricelist.export", pricelist=tariff_id)
        return [parse_tariff(node) for node in root.findall("pricelist")]

    def order(
        self,
        type: str,
        tariff: int,
        period: int,
        remoteid: str,
        *,
        addons: dict[int, str],
        ostempl: str | None = None,
        recipe: str | None = None,
        domain: str | None = None,
        ip: str | None = None,
        licname: str | None = None,
    ) -> int:
        """Order and pay at once (`skipbasket=on`); the new service's id at the seller."""
        params = {f"addon_{k}": v for k, v in addons.items()}
        root = self.call(
            f"{type}.order.param",
            pricelist=tariff,
            period=period,
            remoteid=remoteid,
            ostempl=ostempl,
            recipe=recipe,
            domain=domain,
            ip=ip,
            licname=licname,
            skipbasket="on",
            clicked_button="finish",
            sok="ok",
            **params,
        )
        return _int(root, "id")

    def services(self, type: str, remoteid: str | None = None) -> list[RemoteService]:
        """A type's services as its list shows them (`pricelist` there is the tariff's name);
        the whole list's rows kept (`KeptRows`) for the next one, each given out as a copy."""
        if remoteid is not None:
            return self.call_rows(type, partial(_listed_service, type=type), remoteid=remoteid)[1]
        return [_copy(service) for service in self.services_as_kept(type)]

    def services_as_kept(self, type: str) -> list[RemoteService]:
        """`services(type)` without the copies: the services kept for the next list, to be
        read and not changed (a change would show in every later list of this client)."""
        kept = self._kept_lists.get(type)
        if kept is None:
            kept = self._kept_lists[type] = KeptRows(partial(_listed_service, type=type))
        return self.call_rows(type, kept)[1]

    def service(self, type: str, service_id: int) -> RemoteService:
        """One service in full: add-on values, parameters and every IP."""
        root = self.call(f"{type}.edit", elid=service_id)
        addons = {
            _whole(e.tag[6:], f"the id in <{e.tag}>"): (e.text or "")
            for e in root
            if e.tag.startswith("addon_")
        }
        fields = _cells(root)  # each as `_text` reads it, in one pass
        params = {p.get("name"): (p.text or "") for p in root.findall("param")}
        if type == "soft":
            # the licence form shows its name and IP as fields of their own
            params.update({k: fields[k] for k in ("licname", "ip") if fields.get(k)})
        ips = [] if type == "soft" else [(e.text or "") for e in root.findall("ip")]
        return _service_of(fields, type, "pricelist", addons, params, ips)

    def prolong(self, service_id: int, period: int) -> date | None:
        root = self.call("service.prolong", elid=service_id, period=period, sok="ok")
        return _date(_text(root, "doc/newexpiredate"))

    def suspend(self, type: str, service_id: int) -> None:
        self.call(f"{type}.suspend", elid=service_id, sok="ok")

    def resume(self, type: str, service_id: int) -> None:
        self.call(f"{type}.resume", elid=service_id, sok="ok")

    def delete(self, type: str, service_id: int) -> None:
        self.call(f"{type}.delete", elid=service_id, sok="ok")

    def set_addons(self, type: str, service_id: int, addons: dict[int, str]) -> None:
        self.call(
            f"{type}.edit",
            elid=service_id,
            sok="ok",
            **{f"addon_{k}": v for k, v in addons.items()},
        )

    def events(self) -> list[RemoteEvent]:
        """Every pending event of this account; the seller empties its feed as it answers.

        Each event is read as its row arrives: a poll may bring 100,000 of them.
        """
        return self.call_rows("itemevent", EventRows().read)[1]


class EventRows:
    """Reads `itemevent` rows into events; what many events share (a day, a kind, a name) is
    made once and shared, as a poll may bring 100,000 events over a few days and kinds."""

    def __init__(self):
        self._days: dict[str, date | None] = {}
        self._words: dict[str, str] = {}

    def read(self, row: ET.Element) -> RemoteEvent:
        # `_cells` and the row's IPs in one pass over its cells
        cells: dict[str, str] = {}
        ips = []
        for cell in row:
            tag = cell.tag
            if tag == "ip":
                ips.append(cell.text or "")
            elif tag not in cells:
                cells[tag] = (cell.text or "").strip()
        raw_day = cells.get("expiredate", "")
        expires = self._days.get(raw_day, raw_day)
        if expires is raw_day:  # not seen yet: read (a bad day raises here, every time)
            expires = self._days[raw_day] = _date(raw_day)
        words = self._words
        kind, name = cells.get("type", ""), cells.get("name", "")
        return RemoteEvent(
            _whole(cells.get("id", ""), "<id>"),
            words.setdefault(kind, kind),
            _whole(cells.get("item", ""), "<item>"),
            cells.get("remoteid", ""),
            _whole(cells.get("status") or "0", "an event status"),
            expires,
            words.setdefault(name, name),
            cells.get("value", ""),
            ips,
        )
