"""The store's own rules: nested transactions, and what a save of an operation writes."""

from __future__ import annotations

import pytest

from reseller.store import Store


class Undone(Exception):
    """A block's failure, caught by the block around it."""


def test_a_nested_block_that_fails_undoes_its_own_writes_only_at_every_depth():
    store = Store()
    try:
        with store.atomic():
            store.set_setting("outer", 1)
            with pytest.raises(Undone), store.atomic():
                store.set_setting("middle", 1)
                with pytest.raises(Undone), store.atomic():
                    store.set_setting("inner", 1)
                    raise Undone
                store.set_setting("middle, after the inner one failed", 1)
                raise Undone
            with store.atomic():
                store.set_setting("beside", 1)

        kept = [key for key in ("outer", "middle", "inner", "beside") if store.setting(key)]
        assert kept == ["outer", "beside"]
        assert store.setting("middle, after the inner one failed") is None
    finally:
        store.close()
