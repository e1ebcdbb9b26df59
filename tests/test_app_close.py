"""``app.close()``: plugins release what they hold for the app first, and a failing one
does not keep the app's connections open."""

from __future__ import annotations

import logging

import pytest

from celeriac import Celeriac
from celeriac.plugin import Transport
from celeriac.plugin import hookimpl


class Closing:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.seen: list[Transport] = []

    @hookimpl
    def celeriac_app_closing(self, app: Celeriac) -> None:
        # Called before the connections close: the transport is still the app's open one.
        self.seen.append(app.transport)
        if self.fail:
            raise RuntimeError("plugin broke while closing")


def test_plugins_are_told_before_the_connections_close() -> None:
    plugin = Closing()
    app = Celeriac("t", broker="memory://", plugins=[plugin], env={}, config=False)
    opened = app.transport
    app.close()
    assert plugin.seen == [opened]
    assert app.transport is not opened  # closed and dropped: the next use opens a new one
    app.close()


def test_a_failing_plugin_does_not_keep_the_connections_open(caplog: pytest.LogCaptureFixture) -> None:
    plugin = Closing(fail=True)
    app = Celeriac("t", broker="memory://", plugins=[plugin], env={}, config=False)
    opened = app.transport
    with caplog.at_level(logging.ERROR, logger="celeriac.plugins"):
        app.close()
    assert plugin.seen == [opened]
    assert app.transport is not opened
    assert "celeriac_app_closing failed" in caplog.text
    plugin.fail = False
    app.close()
