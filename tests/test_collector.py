"""The collector paused for a large read: back on after it, however it ends."""

from __future__ import annotations

import gc
import threading

import pytest

from reseller import collector


def test_the_collector_is_off_inside_and_on_again_after():
    with collector.paused():
        assert not gc.isenabled()

    assert gc.isenabled()


def test_a_read_that_fails_leaves_the_collector_running():
    with pytest.raises(ValueError), collector.paused():
        raise ValueError("bad reply")

    assert gc.isenabled()


def test_nested_pauses_resume_only_when_the_outer_one_ends():
    with collector.paused():
        with collector.paused():
            pass
        assert not gc.isenabled()

    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_two_threads_pausing_at_once_leave_it_on_when_both_are_done():
    inside, leave = threading.Barrier(2), threading.Event()

    def read():
        with collector.paused():
            inside.wait()
            leave.wait()

    other = threading.Thread(target=read)
    other.start()
    with collector.paused():
        inside.wait()
    assert not gc.isenabled()  # the other read is still going
    leave.set()
    other.join()

    assert gc.isenabled()
