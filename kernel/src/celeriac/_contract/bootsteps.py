"""Bootsteps: the worker as a dependency graph of small context managers.

A step names the steps it requires; the blueprint validates the graph before anything
starts (unknown requirements, duplicates and cycles are one clear error), enters the steps
in topological order on one :class:`contextlib.ExitStack`, and so tears them down in
reverse order, also after a partial start. Steps share what they build through a typed
registry: ``ctx.provide(POOL, pool)`` and ``ctx.require(POOL)``.
"""

from __future__ import annotations

import contextlib
import graphlib
from collections.abc import Iterator
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar
from typing import Generic
from typing import Protocol
from typing import TypeVar
from typing import runtime_checkable

from celeriac._model.errors import BootstepError

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._contract.shutdown import ShutdownState
    from celeriac._model.config import Config

T = TypeVar("T")


class Key(Generic[T]):
    """A typed name for something a step provides."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Key({self.name!r})"


@runtime_checkable
class Bootstep(Protocol):
    """One part of the worker.

    ``name`` is stable public API (``"kernel.pool"``); a plugin step with the same name
    replaces the kernel's. ``enabled`` must do no I/O. ``run`` sets up before its ``yield``
    and tears down after it.
    """

    name: ClassVar[str]
    requires: ClassVar[frozenset[str]]

    def enabled(self, config: Config) -> bool: ...

    def run(self, ctx: StepContext) -> contextlib.AbstractContextManager[None]: ...


class Registry:
    """What started steps provide, and which step provided each key."""

    def __init__(self) -> None:
        self._values: dict[Key[Any], tuple[Any, str]] = {}

    def provide(self, key: Key[T], value: T, provider: str) -> None:
        if key in self._values:
            raise BootstepError(f"{provider} provides {key.name}, already provided by {self._values[key][1]}")
        self._values[key] = (value, provider)

    def lookup(self, key: Key[T]) -> tuple[T, str] | None:
        found = self._values.get(key)
        return found if found is None else (found[0], found[1])


class StepContext:
    """A step's view of the worker: the app, and the registry checked against its ``requires``."""

    def __init__(
        self,
        app: Celeriac,
        config: Config,
        registry: Registry,
        step: Bootstep,
        *,
        ancestors: frozenset[str],
        hostname: str,
        shutdown: ShutdownState,
    ) -> None:
        self.app = app
        self.config = config
        self.hostname = hostname
        self.shutdown = shutdown
        self._registry = registry
        self._step = step
        self._ancestors = ancestors

    def provide(self, key: Key[T], value: T) -> None:
        self._registry.provide(key, value, self._step.name)

    def require(self, key: Key[T]) -> T:
        """Read a key; its provider must be one of this step's (transitive) requirements."""
        found = self._registry.lookup(key)
        if found is None:
            raise BootstepError(
                f"step {self._step.name} requires {key.name}, which no started step provides; "
                f"add the providing step to {self._step.name}.requires"
            )
        value, provider = found
        if provider not in self._ancestors:
            raise BootstepError(
                f"step {self._step.name} reads {key.name} from {provider}, "
                f"which is not in its requires {sorted(self._step.requires)}"
            )
        return value

    def optional(self, key: Key[T]) -> T | None:
        found = self._registry.lookup(key)
        return None if found is None else found[0]


class Blueprint:
    """A validated, ordered set of steps."""

    def __init__(self, steps: Sequence[Bootstep], config: Config) -> None:
        by_name: dict[str, Bootstep] = {}
        for step in steps:
            # A later step with the same name replaces an earlier one: plugins come after the kernel.
            by_name[step.name] = step
        self.all_steps = by_name
        self.steps = {name: step for name, step in by_name.items() if step.enabled(config)}
        self._validate()
        sorter = graphlib.TopologicalSorter({name: step.requires for name, step in self.steps.items()})
        try:
            self.order = list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise BootstepError(f"bootstep dependency cycle: {cycle}") from None
        self.ancestors = {name: self._ancestors(name) for name in self.steps}

    def _validate(self) -> None:
        problems = []
        for name, step in sorted(self.steps.items()):
            for required in sorted(step.requires):
                if required in self.steps:
                    continue
                if required in self.all_steps:
                    problems.append(f"{name} requires {required}, which is disabled by configuration")
                else:
                    known = ", ".join(sorted(self.all_steps))
                    problems.append(f"{name} requires {required}, which no plugin provides (steps: {known})")
        if problems:
            raise BootstepError("invalid bootstep graph: " + "; ".join(problems))

    def _ancestors(self, name: str) -> frozenset[str]:
        seen: set[str] = set()
        stack = list(self.steps[name].requires)
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.steps[current].requires)
        return frozenset(seen)

    @contextlib.contextmanager
    def start(
        self, app: Celeriac, config: Config, *, hostname: str, shutdown: ShutdownState
    ) -> Iterator[Registry]:
        """Enter every step in order; leaving the block stops them in reverse order."""
        registry = Registry()
        with contextlib.ExitStack() as stack:
            for name in self.order:
                step = self.steps[name]
                context = StepContext(
                    app,
                    config,
                    registry,
                    step,
                    ancestors=self.ancestors[name],
                    hostname=hostname,
                    shutdown=shutdown,
                )
                stack.enter_context(step.run(context))
            yield registry

    def dot(self) -> str:
        """The graph in Graphviz DOT: ``celeriac worker --graph | dot -Tpng``."""
        lines = ["digraph bootsteps {", "  rankdir=LR;"]
        for name in self.order:
            lines.append(f'  "{name}";')
            for required in sorted(self.steps[name].requires):
                lines.append(f'  "{required}" -> "{name}";')
        lines.append("}")
        return "\n".join(lines)
