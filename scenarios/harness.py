"""Both sides of a scenario on one simulated clock: the simulator and the reseller engine.

The engine reaches the simulator only through its real seller client, over an in-process
transport by default or over a local socket (`http=True`); the harness drives the simulator's
clock, staff and faults through one `SellerSide`, as a user's test would: `InProcessSide`
(what the control API runs, without a request: one cost more than a clock tick) or
`SocketSide` (the control API over the same socket).
"""

from __future__ import annotations

import functools
from datetime import datetime, time, timedelta
from decimal import Decimal
from fnmatch import fnmatchcase

import requests
from flask import Flask

from reseller.client import SellerClient
from reseller.engine import Engine
from reseller.model import AUTOPROLONG_LEAD, PeriodRule, day
from reseller.store import Store
from simulator import side as seller_side
from simulator.app import create_app
from simulator.model import Seller
from simulator.server import LocalServer
from simulator.transport import in_process_client
from simulator.world import seller_from_world

CRON = timedelta(minutes=5)
DAY = timedelta(days=1)
IN_PROCESS_URL = "http://simulator"


class StepFailure(AssertionError):
    """A step that did not do what the scenario says: the message names expected and actual."""


class SellerRefused(StepFailure):
    """The seller's staff could not do a seller-side action; `fails:` may name its type."""

    def __init__(self, type: str, message: str):
        super().__init__(f"the seller refused: {type}: {message}")
        self.type, self.message = type, message


CRASH_POINTS = ("before_send", "after_send", "after_read")


class EngineDied(BaseException):
    """The engine's process dying at a step's crash point: nothing after it runs or commits."""


def changes_seller_state(params: dict) -> bool:
    """Whether a BILLmanager call changes the seller's state (an order, a change, ...)."""
    func = str(params.get("func", ""))
    action = func.rpartition(".")[2]
    if action in ("suspend", "resume", "delete"):
        return True
    return bool(params.get("sok")) and func != "auth"


def reads_services_or_events(params: dict) -> bool:
    """Whether a call reads the event feed or the seller's services (a list or one's form)."""
    func = str(params.get("func", ""))
    kind, _, action = func.partition(".")
    return func == "itemevent" or (
        kind in ("vds", "dedic", "vhost", "soft")
        and action in ("", "edit")
        and not params.get("sok")
    )


def meets_a_poll(fault: dict) -> bool:
    """Whether a queued fault could meet a poll of the feed (or the log-in before it)."""
    if fault["kind"] in ("down", "error", "slow"):
        return True
    return (
        fault["kind"] == "lose_reply"
        and fault.get("func") is not None
        and fnmatchcase("itemevent", fault["func"])
    )


# In-process apps of closed harnesses, each to serve a new seller: building a Flask app (its
# URL rules compiled) cost more than most scenario examples.
_SPARE_APPS: list[Flask] = []


def _spare_app(seller: Seller) -> Flask:
    """An in-process simulator app serving `seller`: a closed harness's, else a new one."""
    try:
        app = _SPARE_APPS.pop()
    except IndexError:
        return create_app(seller)
    app.extensions["simulator"].seller = seller  # a reset, as the control API's: a new seller
    return app


# The minutes from a time's minute to the next `*/5` tick after it, by the minute's place in
# its five (`replace` and a new timedelta, with keywords, cost ten times a look-up).
_TO_NEXT_TICK = tuple(timedelta(minutes=5 - m) for m in range(5))


def _to_minute(when: datetime) -> datetime:
    """`when` without its seconds."""
    return when.replace(second=0, microsecond=0) if when.second or when.microsecond else when


def _to_second(when: datetime | None) -> datetime | None:
    """`when` without its fraction of a second (a side's times have none)."""
    return when.replace(microsecond=0) if when and when.microsecond else when


def _ceil_to_cron(when: datetime) -> datetime:
    """The first `*/5` tick at or after `when`."""
    base = _to_minute(when)
    if base == when and not when.minute % 5:
        return when
    return base + _TO_NEXT_TICK[base.minute % 5]


class CrashWatch:
    """The engine's HTTP session, able to kill the engine at a step's crash point.

    `before_send` dies before the step's first call that changes the seller's state goes out
    (its first call of any kind, `auth` aside, for a step that changes none), `after_send`
    right after that call's reply came and before the engine saw it, `after_read` right after
    the step's first read of the event feed or of services.
    """

    def __init__(self, session):
        self.session = session
        self.point: str | None = None
        self.any_call = False
        self.hit = False

    def arm(self, point: str, any_call: bool) -> None:
        self.point, self.any_call, self.hit = point, any_call, False

    def disarm(self) -> bool:
        """Stop watching; whether the armed point was reached."""
        hit = self.hit or self.point is None
        self.point = None
        return hit

    def post(self, url, data=None, **kwargs):
        params = data if isinstance(data, dict) else {}
        point = self.point if not self.hit and params.get("func") != "auth" else None
        if point in ("before_send", "after_send"):
            if self.any_call or changes_seller_state(params):
                self.hit = True
                if point == "before_send":
                    raise EngineDied(point)
                self._send_and_die(point, url, data, kwargs)
        if point == "after_read" and reads_services_or_events(params):
            self.hit = True
            self._send_and_die(point, url, data, kwargs)
        return self.session.post(url, data=data, **kwargs)

    def _send_and_die(self, point: str, url, data, kwargs):
        try:
            self.session.post(url, data=data, **kwargs)
        except Exception:  # a fault's lost reply or timeout: dead either way
            pass
        raise EngineDied(point)

    def __getattr__(self, name):
        return getattr(self.session, name)


class StepSide:
    """A `SellerSide` whose refusals fail the step (`SellerRefused`: a `fails:` may name its
    type), as the seller's staff refusing would in a scenario."""

    def __init__(self, side: seller_side.SellerSide):
        self.side = side

    def __repr__(self) -> str:
        return f"StepSide({self.side!r})"

    def __getattr__(self, name: str):
        attribute = getattr(self.side, name)
        if not callable(attribute):
            return attribute  # a property (the clock's next due time): read afresh each time

        @functools.wraps(attribute)
        def refusals_fail_the_step(*args, **kwargs):
            try:
                return attribute(*args, **kwargs)
            except seller_side.SellerRefused as error:
                raise SellerRefused(error.type, error.message) from None

        # Kept for the next asks, which then never reach __getattr__: the side is this one's
        # for good, and the harness calls a few of its methods at every clock step.
        setattr(self, name, refusals_fail_the_step)
        return refusals_fail_the_step


class Harness:
    """The seller, the engine and the clock of one scenario run."""

    def __init__(
        self,
        seller_world: dict,
        reseller: dict,
        start: datetime,
        *,
        http: bool = False,
        seed: int = 0,
        db_path: str | None = None,
        timeout: float = 10.0,
        skip_idle: bool = True,
    ):
        self.start = self.now = start
        model = seller_from_world(seller_world, start, seed)
        self.server = None
        if http:
            timeout = 1.0
            model.slow_seconds = timeout + 0.5  # a `slow` fault outlasts the engine's timeout
        self.app = create_app(model) if http else _spare_app(model)
        if http:
            self.server = LocalServer(self.app)
            self.url, self.session = self.server.url, requests.Session()
            self.session.trust_env = False
            side = seller_side.SocketSide(self.url, session=self.session)
        else:
            self.url, self.session = IN_PROCESS_URL, in_process_client(self.app)
            side = seller_side.InProcessSide(self.app)
        self.side = StepSide(side)
        self.timeout = timeout
        self.db_path = db_path
        self.watch = CrashWatch(self.session)
        self.store = Store(db_path)
        self.engine = Engine(self.store, self.open_client)
        self.crashes = 0
        self.skip_idle = skip_idle
        self.idle_polls_skipped = 0
        self.notes: list[tuple[datetime, str]] = []
        self.initial_seller_balances = {
            login: Decimal(str((spec or {}).get("balance", 0)))
            for login, spec in (seller_world.get("accounts") or {}).items()
        }
        self.initial_client_balances: dict[str, Decimal] = {}
        self.services: dict[str, int] = {}
        self.remotes: dict[str, int] = {}
        self.last_cron = start
        self.seller_due: datetime | None = None
        self.drop_events_used = False
        self.configure(reseller)

    def open_client(self, url: str, login: str, password: str) -> SellerClient:
        return SellerClient(url, login, password, self.watch, timeout=self.timeout)

    def restart_engine(self) -> None:
        """A new engine process on the same database, as after the old one died: its caches
        and sessions are gone, and whatever it had not committed with them."""
        if self.db_path is None:
            raise StepFailure("a crash needs the engine's database in a file (none was given)")
        self.store.close()
        self.store = Store(self.db_path)
        self.engine = Engine(self.store, self.open_client)
        self.crashes += 1

    def configure(self, reseller: dict) -> None:
        self.engine.configure(
            reseller.get("currency"), reseller.get("rates") or {}, reseller.get("order_periods")
        )
        for name, spec in (reseller.get("clients") or {}).items():
            balance = (spec or {}).get("balance", 0)
            self.engine.add_client(str(name), balance)
            self.initial_client_balances[str(name)] = Decimal(str(balance))
        for name, spec in (reseller.get("modules") or {}).items():
            self.connect(str(name), spec)

    def connect(self, name: str, spec: dict) -> int:
        rules = [
            PeriodRule(int(r["from"]), int(r["to"]), r.get("tariff"))
            for r in spec.get("periods") or []
        ]
        return self.engine.connect(
            name,
            spec.get("url", self.url),
            str(spec["account"]),
            str(spec["password"]),
            rules,
            self.now,
        )

    def close(self) -> None:
        # The session's keep-alive connections first: the server's loop ends only once they do.
        self.store.close()
        self.session.close()
        if self.server:
            self.server.close()
        elif self.app not in _SPARE_APPS:  # closed twice, it is still handed out once
            _SPARE_APPS.append(self.app)

    # -- the clock ---------------------------------------------------------------------------

    @property
    def seller(self):
        """The simulator's model itself, for tests that look inside it (the steps, checks and
        invariants read it through `side`)."""
        return self.app.extensions["simulator"].seller

    def _next_cron(self) -> datetime:
        """The next `*/5 * * * *` tick after the last one that ran."""
        t = _to_minute(self.last_cron)
        return t + _TO_NEXT_TICK[t.minute % 5]

    def _seller_clock(self, when: datetime) -> None:
        self.seller_due = _to_second(self.side.move_to(when)["next_due"])

    def advance(self, until: datetime) -> None:
        """Run every job that falls due up to and including `until`, in time order."""
        if self.seller_due is None:
            self._seller_clock(self.now)
        while True:
            due = self.engine.next_due()
            cron = self._next_cron()  # until a tick runs or is skipped, the same
            candidates = [t for t in (cron, due, self.seller_due) if t is not None]
            when = max(min(candidates), self.now)
            if when > until:
                break
            if self.skip_idle and when >= cron:
                resume = self._idle_until(when, until, due)
                if resume is not None:
                    self._skip_ticks(when, resume)
                    continue
            self.now = when
            self._seller_clock(when)
            if when >= cron:
                self.last_cron = when
                self.engine.cron(when)
            else:
                self.engine.run_due(when)
        self.now = until
        self._seller_clock(until)

    # -- idle time is free -------------------------------------------------------------------

    def _idle_until(self, when: datetime, until: datetime, due: datetime | None) -> datetime | None:
        """When the cron tick at `when` and those after it can change nothing on either side,
        the first moment something might (None if this tick might): no event waits on a
        module's feed, no fault a poll would meet is queued, no poll is left open, no
        operation, seller automation or autoprolong (one its client can pay) falls due, and
        no day begins (its first tick reconciles). `due` is the engine's next attempt as
        `advance` just read it: nothing was written since."""
        if when >= until:  # `until` is the last stop: its tick runs whatever the rest says
            return None
        modules = self.store.modules()
        if any(m.reconciles_on(when) or self.store.poll_is_open(m.id) for m in modules):
            return None
        if due is not None and due <= when:
            return None
        if self.engine.autoprolong_due(when):
            return None
        if not self._seller_quiet([m.login for m in modules]):
            return None
        # asked afresh: an engine step since the clock last moved may have given the seller
        # something to do (an order whose set-up comes later)
        self.seller_due = self._seller_next_due()
        stops = [until, due, self.seller_due, datetime.combine(when.date(), time()) + DAY]
        expiry = self.store.next_autoprolong_expiry(day(when + AUTOPROLONG_LEAD))
        if expiry is not None:
            stops.append(datetime.fromisoformat(expiry) - AUTOPROLONG_LEAD)
        resume = min(t for t in stops if t is not None)
        return resume if resume > when else None

    def _seller_next_due(self) -> datetime | None:
        """When the seller's automation next has something to do."""
        return _to_second(self.side.next_due)

    def _seller_quiet(self, logins: list[str]) -> bool:
        """No event waits on these accounts' feeds, and no queued fault would meet a poll."""
        if any(self.side.pending_events(login) for login in logins):
            return False
        return not any(meets_a_poll(fault) for fault in self.side.faults())

    def _skip_ticks(self, when: datetime, resume: datetime) -> None:
        """Skip the idle ticks from `when` up to (not including) the first at or after
        `resume`, noting how many polls were skipped."""
        first = _ceil_to_cron(resume)
        ticks = int((first - when) / CRON)
        if ticks <= 0:
            return
        polls = ticks * len(self.store.modules())
        self.idle_polls_skipped += polls
        self.notes.append((when, f"{polls} idle polls skipped until {first:%Y-%m-%d %H:%M}"))
        self.last_cron = first - CRON

    def wait(self, duration: timedelta) -> None:
        self.advance(self.now + duration)

    # -- names -------------------------------------------------------------------------------

    def item(self, alias) -> int:
        if str(alias) not in self.services:
            raise StepFailure(f"no reseller service named {alias!r}")
        return self.services[str(alias)]

    def remote(self, alias) -> int:
        """The seller's service for a name: a seller-created one, or the one a service links."""
        if str(alias) in self.remotes:
            return self.remotes[str(alias)]
        if str(alias) in self.services:
            item = self.store.item(self.services[str(alias)])
            if item.remote_id is None:
                raise StepFailure(f"service {alias!r} is not linked to a seller service yet")
            return item.remote_id
        if isinstance(alias, int) or str(alias).isdigit():
            return int(alias)
        raise StepFailure(f"no service named {alias!r}")

    def recent_calls(self, count: int = 8) -> list[str]:
        """The last calls between the two sides, one line each, with the idle stretches the
        clock skipped among them."""
        lines = [
            (
                c["at"],
                f"{c['at']} {c['func'] or '-'} {c['params'].get('elid', '')} -> {c['result']}",
            )
            for c in self.side.calls(last=count)
        ]
        if lines:
            oldest = lines[0][0]
            lines += [
                (f"{t:%Y-%m-%d %H:%M:%S}", f"{t:%Y-%m-%d %H:%M:%S} ({note})")
                for t, note in self.notes
                if f"{t:%Y-%m-%d %H:%M:%S}" >= oldest
            ]
        return [line for _, line in sorted(lines, key=lambda pair: pair[0])][-count:]
