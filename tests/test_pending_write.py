"""``celeriac.plugin.finished_by``: the rule of ``PendingWrite.finished`` that stores and pools share."""

from __future__ import annotations

import threading
import time

from celeriac.plugin import finished_by


def test_finished_once_the_write_ended_or_its_time_limit_passed() -> None:
    done = threading.Event()
    assert not finished_by(done, time.monotonic() + 60)  # under way: no wait asked for
    assert finished_by(done, time.monotonic() - 1)  # the time limit passed
    done.set()
    assert finished_by(done, time.monotonic() + 60)


def test_a_wait_ends_when_the_write_ends() -> None:
    done = threading.Event()
    threading.Thread(target=done.set).start()
    assert finished_by(done, time.monotonic() + 60, timeout=30)  # the set, not 30 s, ends it


def test_a_wait_ending_at_the_time_limit_is_finished() -> None:
    """wait() would not block once the limit passed, so the answer is True, not False."""
    started = time.monotonic()
    assert finished_by(threading.Event(), started + 0.1, timeout=30)
    assert time.monotonic() - started < 10
