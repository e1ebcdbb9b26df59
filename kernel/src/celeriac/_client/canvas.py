"""Workflows: signatures, chain, group and chord, encoded in protocol 2's ``embed`` as Celery does.

Every primitive is serialisable as Celery's dict (``task``, ``args``, ``kwargs``,
``options``, ``subtask_type``, ``immutable``), and the four nest: a chain's steps may be
groups and chords, a group's members chains and chords, a chord's header chains and its
body a chain. A chain travels in its first task's message as ``embed.chain``, reversed
(the next step last); each worker starts the next step when its task succeeds. A group
member's final task carries the group id and index, and in a chord the body, in
``embed.chord``; the result store counts finished parts atomically, and the worker that
finishes the last part starts the body exactly once. How a primitive becomes messages is
in :mod:`celeriac._client.dispatch`; building helpers (``signature``, ``chunks``, ``xmap``,
``starmap``) are in :mod:`celeriac._client.canvas_build`, results in :mod:`celeriac._client.canvas_results`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeAlias
from typing import cast

from attrs import evolve
from attrs import field
from attrs import frozen

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac

#: Options that place a task in a workflow; they belong to one call and are not inherited.
MEMBERSHIP_OPTIONS = ("task_id", "group_id", "group_index", "chord", "chord_size", "chain")


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if value is not None else ()


def new_id() -> str:
    return str(uuid.uuid4())


class _Sending:
    """What every primitive shares: ``delay``, ``apply_async`` and ``|``."""

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Any:
        """Send the workflow, ``args`` prepended to its first tasks' (Celery's partial
        arguments); returns its result (the last task's, a GroupResult for a group).
        With ``task_always_eager`` it runs here instead, as :meth:`apply`."""
        node = cast("Canvas", self)
        app = _app_of(node, options.pop("app", None))
        # In an eager app a workflow runs here; a lone signature of a task this app does not
        # have is sent, as send_task sends it (Celery does both the same way).
        if app.config.task_always_eager and not (isinstance(node, Signature) and node.task not in app.tasks):
            return self.apply(args, kwargs, app=app, **options)
        return app.send_workflow(node.clone(args, kwargs, **options))

    def apply(self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Run the workflow here and now, every task in this thread, as a worker would run
        them in turn (eager mode); returns finished results (EagerResult, EagerGroupResult)."""
        node = cast("Canvas", self)
        app = _app_of(node, options.pop("app", None))
        return app.apply_workflow(node.clone(args, kwargs, **options).freeze())

    def __or__(self, other: Canvas) -> Chain:
        return chain(cast("Canvas", self), other)


@frozen(kw_only=True)
class Signature(_Sending):
    """One task call with arguments and options, not yet sent.

    :param immutable: when True, neither a chain's previous result nor partial arguments
        are added to ``args``.
    """

    task: str
    args: tuple[Any, ...] = field(default=(), converter=_tuple)
    kwargs: Mapping[str, Any] = field(factory=dict)
    options: Mapping[str, Any] = field(factory=dict)
    immutable: bool = False
    app: Celeriac | None = field(default=None, eq=False, repr=False)

    # --- building -------------------------------------------------------------------

    def set(self, **options: Any) -> Signature:
        """A copy with more options (``queue=``, ``countdown=``, ``link=`` ...)."""
        return evolve(self, options={**self.options, **options})

    def clone(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Signature:
        """A copy with ``args`` prepended and ``kwargs`` merged, as Celery's partials
        (``add.s(2).delay(3)`` runs ``add(3, 2)``), unless immutable; options merged."""
        if self.immutable:
            return evolve(self, options={**self.options, **options})
        return evolve(
            self,
            args=(*args, *self.args),
            kwargs={**self.kwargs, **(kwargs or {})},
            options={**self.options, **options},
        )

    def si(self) -> Signature:
        """The immutable variant."""
        return evolve(self, immutable=True)

    def link(self, callback: Signature) -> Signature:
        """Run ``callback`` with this task's result when it succeeds."""
        return self.set(link=[*as_list(self.options.get("link")), callback])

    def link_error(self, errback: Signature) -> Signature:
        """Run ``errback`` with this task's id when it fails."""
        return self.set(link_error=[*as_list(self.options.get("link_error")), errback])

    def on_error(self, errback: Signature) -> Signature:
        """Celery's other name for :meth:`link_error`."""
        return self.link_error(errback)

    def freeze(self) -> Signature:
        """This call with its task id fixed, so its result can be known before it is sent."""
        return self if self.options.get("task_id") else self.set(task_id=new_id())

    @property
    def id(self) -> str:
        """The task id (of a frozen signature)."""
        return str(self.options["task_id"])

    def set_final(self, **options: Any) -> Signature:
        """Set options on the task whose result is the workflow's (here, this one); callbacks
        are added to its own."""
        merged = dict(options)
        for key in ("link", "link_error"):
            if key in options:
                merged[key] = [*as_list(self.options.get(key)), *options[key]]
        return self.set(**merged)

    # --- wire -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Celery's signature dict."""
        options = {key: value for key, value in self.options.items() if key not in ("link", "link_error")}
        for key in ("link", "link_error"):
            if self.options.get(key):
                options[key] = [as_dict(s) for s in as_list(self.options[key])]
        return {
            "task": self.task,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "options": options,
            "subtask_type": None,
            "immutable": self.immutable,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: Celeriac | None = None) -> Signature:
        """A plain signature from Celery's dict, its callbacks left in their dict form (see
        :func:`~celeriac._client.canvas_wire.from_dict`, which reads them too)."""
        options = dict(data.get("options") or {})
        return cls(
            task=data["task"],
            args=data.get("args") or (),
            kwargs=data.get("kwargs") or {},
            options=options,
            immutable=bool(data.get("immutable", False)),
            app=app,
        )


@frozen(kw_only=True)
class Chain(_Sending):
    """Steps run one after another, each given the previous result (unless immutable).

    Steps are signatures, groups and chords; nested chains are flattened, and a group
    followed by another step becomes a chord, as in Celery.
    """

    tasks: tuple[Signature | Group | Chord, ...]
    options: Mapping[str, Any] = field(factory=dict)

    def clone(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Chain:
        """Partial arguments and options go to the first step."""
        first = self.tasks[0].clone(args, kwargs, **options)
        return evolve(self, tasks=(first, *self.tasks[1:]))

    def freeze(self) -> Chain:
        return evolve(self, tasks=tuple(step.freeze() for step in self.tasks))

    @property
    def id(self) -> str:
        """The id of the last step's result, which is the chain's."""
        return self.tasks[-1].id

    def set_final(self, **options: Any) -> Chain:
        """Set options on the last step's final task."""
        return evolve(self, tasks=(*self.tasks[:-1], self.tasks[-1].set_final(**options)))

    def set(self, **options: Any) -> Chain:
        return evolve(self, options={**self.options, **options})

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "celery.chain",
            "args": [],
            "kwargs": {"tasks": [s.to_dict() for s in self.tasks]},
            "options": dict(self.options),
            "subtask_type": "chain",
            "immutable": False,
        }


@frozen(kw_only=True)
class Group(_Sending):
    """Members run in parallel; their results come back together as a GroupResult.

    Members are signatures, chains (the chain's last result is the member's) and chords.
    """

    tasks: tuple[Signature | Chain | Chord, ...]
    options: Mapping[str, Any] = field(factory=dict)

    def __iter__(self) -> Iterator[Signature | Chain | Chord]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def clone(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Group:
        """Partial arguments and options go to every member; a ``group_id`` to the group."""
        group_id = options.pop("group_id", None)
        members = tuple(task.clone(args, kwargs, **options) for task in self.tasks)
        mine = {**self.options, "group_id": group_id} if group_id else self.options
        return evolve(self, tasks=members, options=mine)

    def freeze(self) -> Group:
        group_id = self.options.get("group_id") or new_id()
        return evolve(
            self,
            tasks=tuple(task.freeze() for task in self.tasks),
            options={**self.options, "group_id": group_id},
        )

    @property
    def id(self) -> str:
        return str(self.options["group_id"])

    def set_final(self, **options: Any) -> Group:
        raise TypeError("a group cannot be a member of a group or a chord's header; use its tasks instead")

    def set(self, **options: Any) -> Group:
        return evolve(self, options={**self.options, **options})

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "celery.group",
            "args": [],
            "kwargs": {"tasks": [s.to_dict() for s in self.tasks]},
            "options": dict(self.options),
            "subtask_type": "group",
            "immutable": False,
        }


@frozen(kw_only=True)
class Chord(_Sending):
    """A group (the header) whose results, in order, are passed to the body.

    The body runs exactly once, after every header member finished; if one failed, the
    body is not run: its result becomes a ChordError naming the failed task, and its
    errbacks run. The body is a signature or a chain.
    """

    header: Group
    body: Signature | Chain
    options: Mapping[str, Any] = field(factory=dict)

    def clone(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Chord:
        """Partial arguments and options go to the header's members."""
        return evolve(self, header=self.header.clone(args, kwargs, **options))

    def freeze(self) -> Chord:
        return evolve(self, header=self.header.freeze(), body=self.body.freeze())

    @property
    def id(self) -> str:
        """The body's result id, which is the chord's."""
        return self.body.id

    def set_final(self, **options: Any) -> Chord:
        """Set options on the body's final task."""
        return evolve(self, body=self.body.set_final(**options))

    def set(self, **options: Any) -> Chord:
        return evolve(self, options={**self.options, **options})

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "celery.chord",
            "args": [],
            "kwargs": {"header": self.header.to_dict(), "body": self.body.to_dict(), "kwargs": {}},
            "options": dict(self.options),
            "subtask_type": "chord",
            "immutable": False,
        }


#: Any workflow primitive.
Canvas: TypeAlias = Signature | Chain | Group | Chord


def chain(*tasks: Canvas) -> Chain:
    """``chain(a.s(), b.s())`` or ``a.s() | b.s()``; nested chains are flattened and a group
    followed by another step becomes a chord whose body is that step (as in Celery)."""
    flat: list[Signature | Group | Chord] = []
    for task in tasks:
        flat.extend(task.tasks if isinstance(task, Chain) else (task,))
    if not flat:
        raise ValueError("a chain needs at least one task")
    steps: list[Signature | Group | Chord] = []
    for step in flat:
        previous = steps[-1] if steps else None
        if isinstance(previous, Group):
            if not isinstance(step, Signature):
                raise TypeError(
                    f"a group in a chain must be followed by a task, not a {type(step).__name__.lower()}: "
                    "put a task between them"
                )
            steps[-1] = Chord(header=previous, body=step)
        else:
            steps.append(step)
    return Chain(tasks=tuple(steps))


def group(*tasks: Canvas | Iterable[Canvas]) -> Group:
    """``group(a.s(1), a.s(2))`` or ``group(a.s(i) for i in range(10))``."""
    flat: list[Signature | Chain | Chord] = []
    for task in tasks:
        if isinstance(task, Signature | Chain | Group | Chord):
            flat.append(member(task))
        else:
            flat.extend(member(t) for t in task)
    return Group(tasks=tuple(flat))


def chord(header: Group | Iterable[Canvas], body: Signature | Chain) -> Chord:
    """``chord(group(...), body)``: the body gets the list of the header's results."""
    return Chord(header=header if isinstance(header, Group) else group(header), body=body)


def member(task: Canvas) -> Signature | Chain | Chord:
    if isinstance(task, Group):
        raise TypeError("a group cannot be a member of a group or a chord's header; use its tasks instead")
    return task


def as_dict(value: Any) -> dict[str, Any]:
    return value.to_dict() if isinstance(value, Signature | Chain | Group | Chord) else dict(value)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def app_of(node: Canvas) -> Celeriac | None:
    """The app a primitive was built with: its first task's."""
    if isinstance(node, Signature):
        return node.app
    if isinstance(node, Chord):
        return app_of(node.body) or app_of(node.header)
    for task in node.tasks:
        found = app_of(task)
        if found is not None:
            return found
    return None


def _app_of(node: Canvas, app: Celeriac | None) -> Celeriac:
    found = app or app_of(node)
    if found is None:
        name = node.task if isinstance(node, Signature) else type(node).__name__.lower()
        raise ValueError(f"signature {name!r} has no app: build it with task.s(...) or pass app=")
    return found
