"""The worker bootstep ``django.outbox_relay``: the outbox relay as a thread of the worker."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import ClassVar

from attrs import frozen

from celeriac.plugin import Celeriac
from celeriac.plugin import Config
from celeriac.plugin import StepContext
from celeriac_django._config import SECTION
from celeriac_django._config import DjangoConfig
from celeriac_django._connections import django_ready


@frozen
class OutboxRelayStep:
    """Publishes the outbox's unsent rows while the worker runs (in a Django project only)."""

    name: ClassVar[str] = "django.outbox_relay"
    # After the pool: a pool that forks its children from this process (prefork without an
    # import path) forks before this thread exists, so no child inherits it mid-query.
    requires: ClassVar[frozenset[str]] = frozenset({"kernel.connection", "kernel.pool"})

    def enabled(self, config: Config) -> bool:
        return django_ready() and config.section(SECTION, DjangoConfig).outbox_relay

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        from celeriac_django.outbox import Relay
        from celeriac_django.outbox import relay_forever

        if not _is_project_app(ctx.app):
            # Another app's worker in a process where Django is set up (a test run, a script):
            # the outbox holds the project's tasks, and a relay thread querying the database
            # would run beside that worker for nothing (and be inherited mid-query by a fork).
            yield
            return
        settings = ctx.config.section(SECTION, DjangoConfig)
        relay = Relay(ctx.app, using=settings.outbox_database, lease=settings.outbox_lease)
        stop = threading.Event()
        thread = threading.Thread(
            target=relay_forever,
            args=(relay, stop, settings.outbox_interval),
            name="outbox-relay",
            daemon=True,
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)


def _is_project_app(app: Celeriac) -> bool:
    """Is ``app`` the Django project's celeriac app (the one whose tasks the outbox holds)?"""
    from django.apps import apps

    if not apps.is_installed("celeriac_django"):
        return False
    from celeriac_django._app import get_app

    return get_app() is app
