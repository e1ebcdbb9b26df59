"""Pool factories receive a typed PoolContext; an API 1.0 factory taking (config, execute)
still works, with a DeprecationWarning."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence

import pytest

from celeriac import Celeriac
from celeriac import states
from celeriac import testing
from celeriac._worker.pool import build_pool
from celeriac.plugin import Config
from celeriac.plugin import Executor
from celeriac.plugin import Outcome
from celeriac.plugin import PoolContext
from celeriac.plugin import PoolSpec
from celeriac.plugin import TaskRequest
from celeriac.plugin import hookimpl
from celeriac.testing import worker_thread
from celeriac_solo import SoloPool


class ContextPool:
    """Provides a pool named "seen" that keeps the context its factory was given."""

    def __init__(self) -> None:
        self.contexts: list[PoolContext] = []

    @hookimpl
    def celeriac_add_pools(self) -> Sequence[PoolSpec]:
        def factory(context: PoolContext) -> SoloPool:
            self.contexts.append(context)
            return SoloPool(context.executor)

        return [PoolSpec(name="seen", factory=factory)]


class LegacyPool:
    """A pool plugin written for plugin API 1.0: its factory takes (config, execute)."""

    @hookimpl
    def celeriac_add_pools(self) -> Sequence[PoolSpec]:
        def factory(config: Config, execute: Callable[[TaskRequest], Outcome]) -> SoloPool:
            return SoloPool(execute)

        return [PoolSpec(name="legacy", factory=factory)]


def make_app(plugin: object, pool: str) -> Celeriac:
    return Celeriac(
        "t", broker="memory://", plugins=[testing, plugin], env={}, config=False, worker={"pool": pool}
    )


def test_a_pool_factory_gets_the_app_the_executor_and_the_revoked_ids() -> None:
    plugin = ContextPool()
    app = make_app(plugin, "seen")

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    with worker_thread(app, concurrency=3):
        assert add.delay(2, 3).get(timeout=10) == 5
    (context,) = plugin.contexts
    assert context.app is app
    assert isinstance(context.executor, Executor)
    assert context.executor.app is app
    assert context.revoked is context.executor.revoked
    assert context.concurrency == 3
    assert context.hooks is app.plugins.lifecycle
    app.close()


@pytest.mark.filterwarnings("ignore:the pool 'legacy'")
def test_a_factory_taking_config_and_execute_still_runs_tasks() -> None:
    app = make_app(LegacyPool(), "legacy")

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    with worker_thread(app):
        result = add.delay(1, 2)
        assert result.get(timeout=10) == 3
        assert result.state == states.SUCCESS
    app.close()


def test_a_factory_taking_config_and_execute_is_deprecated() -> None:
    app = make_app(LegacyPool(), "legacy")
    executor = Executor(app)
    context = PoolContext(
        config=app.config, app=app, executor=executor, revoked=frozenset(), hooks=app.plugins.lifecycle
    )
    with pytest.warns(DeprecationWarning, match="'legacy'.*PoolContext"):
        pool = build_pool(app.plugins.pool("legacy"), context)
    assert isinstance(pool, SoloPool)
    app.close()
