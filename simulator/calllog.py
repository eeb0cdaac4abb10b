"""The call log: the last BILLmanager API calls, secrets masked, kept within a byte budget.

Every entry keeps its fields (`id`, `at`, `func`, `params`, `account`, `status`, `result`
and the start of `reply`); what is cut is the length of long values and the number of
parameters, so a flood of megabyte requests costs the log a few kilobytes each. When the
entries together pass the budget, the oldest go.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from functools import lru_cache

# bytes as `footprint` estimates them: some 5,000 calls with long replies or 16,000 polls
BUDGET = 16 * 2**20
VALUE_CHARS = 200  # a parameter value, a function name, a login
KEY_CHARS = 64
PARAMS_KEPT = 40
REPLY_CHARS = 2000  # the start of the reply
MASK = "***"
# Session ids (`auth`), passwords, keys and tokens, by parameter name.
SECRET_NAMES = {"auth", "password", "passwd", "confirm", "key"}
SECRET_PARTS = ("password", "passwd", "secret", "token", "key")
# What Python spends on an entry beyond its text: the dicts, the string objects.
ENTRY_OVERHEAD = 600
PARAM_OVERHEAD = 150


@lru_cache(maxsize=1024)  # the same few names come in every call
def is_secret(name: str) -> bool:
    """Whether a parameter of this name holds a secret (a session id, a password, a key)."""
    name = name.lower()
    return name in SECRET_NAMES or any(part in name for part in SECRET_PARTS)


def cut(value, limit: int = VALUE_CHARS):
    """A string cut to `limit` characters, saying how long it was; other values as they are."""
    if type(value) is not str or len(value) <= limit:
        return value
    return f"{value[:limit]}...[{len(value)} characters]"


def masked(params: dict) -> dict:
    """The parameters as the log keeps them: secrets masked, long values cut, at most 40."""
    return _masked(params)[0]


def _masked(params: dict) -> tuple[dict, int]:
    """`masked(params)` and what its parameters add to `footprint`, in one pass: every call
    is logged, so this is on every call's path."""
    shown, size = {}, 0
    for key, value in params.items():
        if len(shown) == PARAMS_KEPT:
            shown["..."] = note = f"{len(params) - PARAMS_KEPT} more parameters not kept"
            size += PARAM_OVERHEAD + 3 + len(note)
            break
        if type(key) is not str:
            key = str(key)
        if key == "authinfo":
            value = f"{cut(str(value).partition(':')[0])}:{MASK}"
        elif is_secret(key):
            value = MASK
        elif type(value) is str:
            if len(value) > VALUE_CHARS:
                value = cut(value)
        else:
            value = cut(value)
        if len(key) > KEY_CHARS:
            key = cut(key, KEY_CHARS)
        shown[key] = value
        size += PARAM_OVERHEAD + len(key) + len(value if type(value) is str else str(value))
    return shown, size


def footprint(entry: dict) -> int:
    """About how many bytes an entry holds: its text and what Python spends around it."""
    size = ENTRY_OVERHEAD
    for key, value in entry.items():
        if key == "params":
            size += sum(PARAM_OVERHEAD + len(k) + len(str(v)) for k, v in value.items())
        else:
            size += len(key) + len(str(value))
    return size


class CallLog:
    """The last calls, oldest first, within `budget` bytes; each `append` masks and cuts."""

    def __init__(self, budget: int = BUDGET):
        self.budget = budget
        self.size = 0
        self._entries: deque[tuple[dict, int]] = deque()
        self._next_id = 1

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[dict]:
        return (entry for entry, _ in self._entries)

    def __reversed__(self) -> Iterator[dict]:
        """Newest first, as a log is read."""
        return (entry for entry, _ in reversed(self._entries))

    def append(self, entry: dict, hide: Iterable[str | None] = ()) -> dict:
        """Log one call; every string in `hide` (a new session id) is masked in its reply."""
        reply = str(entry.get("reply", ""))[:REPLY_CHARS]
        for secret in hide:
            if secret:
                reply = reply.replace(secret, MASK)
        kept, size = {}, ENTRY_OVERHEAD
        for key, value in entry.items():
            if key != "params" and key != "reply":
                if type(value) is str:
                    if len(value) > VALUE_CHARS:  # `cut`, called only where it cuts
                        value = cut(value)
                    size += len(key) + len(value)
                else:
                    size += len(key) + len(str(value))
                kept[key] = value
        params, params_size = _masked(entry.get("params", {}))
        kept["id"], kept["params"], kept["reply"] = self._next_id, params, reply
        size += 2 + len(str(self._next_id)) + params_size + 5 + len(reply)  # "id", "reply"
        self._next_id += 1
        self._entries.append((kept, size))
        self.size += size
        while self.size > self.budget and len(self._entries) > 1:
            _, dropped = self._entries.popleft()
            self.size -= dropped
        return kept

    def clear(self) -> None:
        """Forget every entry; ids go on counting, so a test's `id` stays unique."""
        self._entries.clear()
        self.size = 0
