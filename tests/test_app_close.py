"""``app.close()``: plugins release what they hold for the app first, and a failing one
does not keep the app's connections open."""

from __future__ import annotations

import logging

import pytest

from celeriac import Celeriac
from celeriac.plugin import hookimpl


class Closing:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[Celeriac, bool]] = []

    @hookimpl
    def celeriac_app_closing(self, app: Celeriac) -> None:
        # Called before the connections close: the transport is still the open one.
        self.calls.append((app, app._transport is not None))
        if self.fail:
            raise RuntimeError("plugin broke while closing")


def test_plugins_are_told_before_the_connections_close() -> None:
    plugin = Closing()
    app = Celeriac("t", broker="memory://", plugins=[plugin], env={}, config=False)
    app.send_task("t.x")
    app.close()
    assert plugin.calls == [(app, True)]
    assert app._transport is None


def test_a_failing_plugin_does_not_keep_the_connections_open(caplog: pytest.LogCaptureFixture) -> None:
    plugin = Closing(fail=True)
    app = Celeriac("t", broker="memory://", plugins=[plugin], env={}, config=False)
    app.send_task("t.x")
    with caplog.at_level(logging.ERROR, logger="celeriac.plugins"):
        app.close()
    assert app._transport is None
    assert "celeriac_app_closing failed" in caplog.text
