"""Fixtures for beat: apps built from TOML, a fake clock, and reading what beat sent.

Beat's entries need schedule types, which the celeriac-cron plugin provides; these tests use
it as installed.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from celeriac.testing import wait_for  # noqa: F401 - kept importable from here for the suite's modules

try:
    import celeriac_cron  # noqa: F401 - its schedule types are found through its entry point
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        raise  # CI must not pass by testing nothing
    pytest.skip(
        "celeriac-cron is not installed: pip install -e 'plugins/cron[test]'", allow_module_level=True
    )

from celeriac import Celeriac
from celeriac import testing
from celeriac.plugin import ScheduleStoreSpec
from celeriac.plugin import TaskMessage
from celeriac.plugin import hookimpl

#: 2025-06-02 10:00:00 UTC, a Monday.
T0 = 1748858400.0


def beat_plugins() -> list[object]:
    """Plugins a test app needs besides the installed ones."""
    return [testing]


class MemoryScheduleStore:
    """Last-run times in a dict, with no leader lock: the store of a single beat."""

    def __init__(self) -> None:
        self.runs: dict[str, float] = {}

    def last_run_at(self, entry: str) -> float | None:
        return self.runs.get(entry)

    def set_last_run_at(self, entry: str, when: float) -> None:
        self.runs[entry] = when

    def close(self) -> None:
        """Kept: several beats in one test share it."""


class MemoryStorePlugin:
    """Offers one :class:`MemoryScheduleStore` under ``memstore://``."""

    def __init__(self) -> None:
        self.store = MemoryScheduleStore()

    @hookimpl
    def celeriac_add_schedule_stores(self) -> list[ScheduleStoreSpec]:
        return [ScheduleStoreSpec(schemes=("memstore",), factory=lambda url, config: self.store)]


class FakeClock:
    """A wall clock that moves only when told."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/beat.sqlite3"


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Celeriac]]:
    """``make_app(toml, **settings)``: an app on its own memory broker, configured by ``toml``."""
    apps: list[Celeriac] = []

    def make(
        toml: str = "", *, broker: str = "memory://", plugins: Sequence[object] = (), **settings: Any
    ) -> Celeriac:
        path = tmp_path / f"celeriac-{len(apps)}.toml"
        path.write_text(textwrap.dedent(toml))
        extra = [*beat_plugins(), *plugins]
        app = Celeriac("proj", broker=broker, plugins=extra, env={}, config=path, **settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def drain(app: Celeriac, queue: str = "celery") -> list[TaskMessage]:
    """Take every waiting message off ``queue`` and decode it."""
    messages: list[TaskMessage] = []
    while True:
        deliveries = app.transport.fetch([queue], 100, 0.0)
        if not deliveries:
            return messages
        messages.extend(app.codec.decode_task(d.envelope) for d in deliveries)
        app.transport.ack(deliveries)


def run_at(message: TaskMessage) -> str:
    """The scheduled time beat stamped on a message."""
    value: str = message.extra_headers["beat_run_at"]
    return value


def subprocess_env(project: Path) -> dict[str, str]:
    """This environment without ``CELERIAC_*``, with ``project`` first on the import path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis of ``$REDIS_URL`` (db 15 of the local one by default): skipped when unreachable,
    except under ``CI=true``, where that fails (as in plugins/redis/tests)."""
    from celeriac_redis import testing

    return testing.require_redis(testing.server_url())
