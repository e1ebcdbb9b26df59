"""Bootstep graph: ordering, validation, teardown after partial start, typed registry."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import ClassVar

import pytest
from attrs import frozen

from celeriac import Celeriac
from celeriac._contract.bootsteps import Blueprint
from celeriac._contract.shutdown import ShutdownState
from celeriac.plugin import BootstepError
from celeriac.plugin import Config
from celeriac.plugin import Key
from celeriac.plugin import StepContext

NUMBER: Key[int] = Key("number")


def make_step(
    step_name: str,
    needs: frozenset[str] = frozenset(),
    *,
    on: bool = True,
    log: list[str] | None = None,
    fail: bool = False,
    provide: bool = False,
    read: bool = False,
) -> object:
    @frozen
    class Step:
        name: ClassVar[str] = step_name
        requires: ClassVar[frozenset[str]] = needs

        def enabled(self, config: Config) -> bool:
            return on

        @contextlib.contextmanager
        def run(self, ctx: StepContext) -> Iterator[None]:
            if fail:
                raise RuntimeError(f"{step_name} failed to start")
            if provide:
                ctx.provide(NUMBER, 42)
            if read:
                assert ctx.require(NUMBER) == 42
            if log is not None:
                log.append(f"start {step_name}")
            try:
                yield
            finally:
                if log is not None:
                    log.append(f"stop {step_name}")

    return Step()


def start(blueprint: Blueprint, app: Celeriac) -> contextlib.AbstractContextManager[object]:
    return blueprint.start(app, app.config, hostname="test@host", shutdown=ShutdownState(None))


@pytest.fixture
def app() -> Celeriac:
    return Celeriac(broker="memory://", env={}, config=False)


def test_order_follows_requirements_and_stop_is_reversed(app: Celeriac) -> None:
    log: list[str] = []
    steps = [
        make_step("c", frozenset({"b"}), log=log),
        make_step("a", log=log),
        make_step("b", frozenset({"a"}), log=log),
    ]
    blueprint = Blueprint(steps, app.config)  # type: ignore[arg-type]
    assert blueprint.order == ["a", "b", "c"]
    with start(blueprint, app):
        assert log == ["start a", "start b", "start c"]
    assert log[3:] == ["stop c", "stop b", "stop a"]


def test_cycle_is_reported_with_its_path(app: Celeriac) -> None:
    steps = [
        make_step("a", frozenset({"c"})),
        make_step("b", frozenset({"a"})),
        make_step("c", frozenset({"b"})),
    ]
    with pytest.raises(BootstepError, match=r"cycle: (\w -> ){3}\w"):
        Blueprint(steps, app.config)  # type: ignore[arg-type]


def test_unknown_requirement_names_the_requiring_step(app: Celeriac) -> None:
    with pytest.raises(BootstepError, match="x requires missing, which no plugin provides"):
        Blueprint([make_step("x", frozenset({"missing"}))], app.config)  # type: ignore[list-item]


def test_requirement_disabled_by_config(app: Celeriac) -> None:
    steps = [make_step("a", on=False), make_step("b", frozenset({"a"}))]
    with pytest.raises(BootstepError, match="b requires a, which is disabled"):
        Blueprint(steps, app.config)  # type: ignore[arg-type]


def test_partial_start_still_stops_started_steps(app: Celeriac) -> None:
    log: list[str] = []
    steps = [make_step("a", log=log), make_step("b", frozenset({"a"}), fail=True)]
    blueprint = Blueprint(steps, app.config)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="b failed"), start(blueprint, app):
        pass
    assert log == ["start a", "stop a"]


def test_registry_reads_need_the_provider_in_requires(app: Celeriac) -> None:
    ok = [make_step("p", provide=True), make_step("r", frozenset({"p"}), read=True)]
    with start(Blueprint(ok, app.config), app):  # type: ignore[arg-type]
        pass
    sneaky = [
        make_step("p", provide=True),
        make_step("q", frozenset({"p"})),
        make_step("r", frozenset({"q"}), read=True),
    ]
    with start(Blueprint(sneaky, app.config), app):  # type: ignore[arg-type]
        pass  # transitive requirement is fine
    unrelated = [make_step("p", provide=True), make_step("r", read=True)]
    blueprint = Blueprint(unrelated, app.config)  # type: ignore[arg-type]
    blueprint.order = ["p", "r"]
    with (
        pytest.raises(BootstepError, match="r reads number from p, which is not in its requires"),
        start(blueprint, app),
    ):
        pass


def test_plugin_step_with_kernel_name_replaces_it(app: Celeriac) -> None:
    first, second = make_step("kernel.timer"), make_step("kernel.timer", frozenset({"other"}))
    blueprint = Blueprint([first, second, make_step("other")], app.config)  # type: ignore[list-item]
    assert blueprint.steps["kernel.timer"] is second


def test_kernel_worker_graph_is_valid_and_drawable(app: Celeriac) -> None:
    blueprint = app.worker().blueprint()
    assert blueprint.order.index("kernel.connection") < blueprint.order.index("kernel.consumer")
    assert blueprint.order.index("kernel.pool") < blueprint.order.index("kernel.consumer")
    dot = blueprint.dot()
    assert dot.startswith("digraph bootsteps")
    assert '"kernel.pool" -> "kernel.consumer";' in dot
