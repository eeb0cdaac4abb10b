"""The cyclic garbage collector paused while a large, acyclic read is built.

A reply of thousands of rows, or a reconcile's reading of a module's thousands of services,
allocates objects that all live until the read is done and hold no cycles: the collector,
triggered by their number, scans them and the whole heap again and again and frees nothing.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    """The collector off inside (nested or in several threads at once, it resumes when the last
    one leaves, and only if it was on when the first came in)."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
