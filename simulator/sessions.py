"""Who is logged in and who keeps failing to: sessions and the failed-login throttle.

Both run on two clocks at once: the simulated one (which scenarios move) and the wall clock
(which moves while a live simulator sits with its simulated clock still). Whichever clock
passes a limit first ends a session or a run of failures.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import NamedTuple

SESSION_IDLE = timedelta(hours=1)
SESSIONS_MAX = 10_000
FAILED_LOGINS_MAX = 5
FAILED_LOGIN_WINDOW = timedelta(minutes=15)
THROTTLED_LOGINS_MAX = 1_000


class Session(NamedTuple):
    """A live session: its login and when it was last used, in simulated and wall time."""

    login: str
    last: datetime
    wall_last: float


def idle_past(limit: timedelta, since: datetime, wall_since: float, now: datetime, wall: float):
    """Whether `limit` has passed since a moment, in either the simulated or the wall clock."""
    return now - since > limit or wall - wall_since > limit.total_seconds()


class Sessions:
    """Live sessions by id, least recently used first; a session idle an hour is gone.

    At most `SESSIONS_MAX` live at once: opening one more ends the least recently used, so a
    client that logs in on every call cannot grow the simulator without bound.
    """

    def __init__(self, limit: int = SESSIONS_MAX):
        self.limit = limit
        self._live: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, sid: str) -> bool:
        return sid in self._live

    def get(self, sid: str, default=None):
        """The session `sid` as last used, without touching it (for telling who a call claims)."""
        return self._live.get(sid, default)

    def open(self, login: str, now: datetime, wall: float) -> str:
        """A new session for `login`: 128 random bits from `secrets`, as 32 hex digits."""
        self.expire(now, wall)
        sid = secrets.token_hex(16)
        self._live[sid] = Session(login, now, wall)
        while len(self._live) > self.limit:
            self._live.popitem(last=False)
        return sid

    def use(self, sid: str, now: datetime, wall: float) -> str | None:
        """The login of a live session, touching it; None if unknown or idle past the hour."""
        self.expire(now, wall)
        session = self._live.get(sid)
        if session is None:
            return None
        self._live[sid] = Session(session.login, now, wall)
        self._live.move_to_end(sid)
        return session.login

    def expire(self, now: datetime, wall: float) -> None:
        """End every session idle past the hour in either clock.

        Touches keep the order of both clocks (neither goes back within one seller), so the
        idle ones are all at the front.
        """
        while self._live:
            sid, oldest = next(iter(self._live.items()))
            if not idle_past(SESSION_IDLE, oldest.last, oldest.wall_last, now, wall):
                return
            del self._live[sid]


class FailedLogins:
    """Wrong passwords per login: after `FAILED_LOGINS_MAX` within the window, a throttle.

    A fake cannot make guessing harder without refusing the right password, which it never
    does: what the throttle gives is the refusal a client must cope with. The right password
    always gets in at once and clears the count. Unknown logins count like real ones, so the
    reply does not tell which accounts exist; at most `THROTTLED_LOGINS_MAX` logins are kept.
    """

    def __init__(self):
        self._runs: OrderedDict[str, tuple[int, datetime, float]] = OrderedDict()

    def count(self, login: str, now: datetime, wall: float) -> int:
        """Wrong passwords for `login` in the current window."""
        run = self._runs.get(login)
        if run is None or idle_past(FAILED_LOGIN_WINDOW, run[1], run[2], now, wall):
            return 0
        return run[0]

    def fail(self, login: str, now: datetime, wall: float) -> int:
        """Count one more wrong password for `login`; how many the window now holds."""
        run = self._runs.pop(login, None)
        if run is None or idle_past(FAILED_LOGIN_WINDOW, run[1], run[2], now, wall):
            run = (0, now, wall)
        run = (run[0] + 1, run[1], run[2])
        self._runs[login] = run
        while len(self._runs) > THROTTLED_LOGINS_MAX:
            self._runs.popitem(last=False)
        return run[0]

    def clear(self, login: str) -> None:
        self._runs.pop(login, None)
