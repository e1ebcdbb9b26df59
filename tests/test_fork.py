"""celeriac.plugin.after_fork: resets run in a forked child, in order, for live owners only."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import warnings
from multiprocessing.connection import Connection

import pytest

from celeriac.plugin import after_fork

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")


class Holder:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def reset(self) -> None:
        self.log.append(f"{self.name} in {os.getpid()}")


def _in_child(holders: list[Holder], conn: Connection) -> None:
    conn.send(holders[0].log)  # the holders share one log
    conn.close()


def test_resets_run_in_the_child_in_order_and_not_in_the_parent() -> None:
    log: list[str] = []
    first, second, gone = Holder("first", log), Holder("second", log), Holder("gone", log)
    after_fork(first, Holder.reset)
    after_fork(second, Holder.reset)
    after_fork(first, Holder.reset)  # twice: no further effect
    after_fork(gone, Holder.reset)
    del gone
    gc.collect()
    parent, child = multiprocessing.Pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns about fork() with threads running (pytest-xdist's); the child only
        # sends what its resets logged.
        warnings.simplefilter("ignore", DeprecationWarning)
        process = multiprocessing.get_context("fork").Process(target=_in_child, args=([first, second], child))
        process.start()
    seen = parent.recv()
    process.join(timeout=30)
    assert process.exitcode == 0
    assert seen == [f"first in {process.pid}", f"second in {process.pid}"]
    assert log == []  # nothing ran in the parent


def test_a_failing_reset_does_not_stop_the_others() -> None:
    log: list[str] = []
    broken, fine = Holder("broken", log), Holder("fine", log)

    def explode(_: Holder) -> None:
        raise RuntimeError("cannot reset")

    after_fork(broken, explode)
    after_fork(fine, Holder.reset)
    parent, child = multiprocessing.Pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        process = multiprocessing.get_context("fork").Process(target=_in_child, args=([fine], child))
        process.start()
    assert parent.recv() == [f"fine in {process.pid}"]
    process.join(timeout=30)
    assert process.exitcode == 0
