"""Workflows: signatures, chain, group and chord, encoded in protocol 2's ``embed`` as Celery does.

Every primitive is serialisable as Celery's dict (``task``, ``args``, ``kwargs``,
``options``, ``subtask_type``, ``immutable``), and the four nest: a chain's steps may be
groups and chords, a group's members chains and chords, a chord's header chains and its
body a chain. A chain travels in its first task's message as ``embed.chain``, reversed
(the next step last); each worker starts the next step when its task succeeds. A group
member's final task carries the group id and index, and in a chord the body, in
``embed.chord``; the result store counts finished parts atomically, and the worker that
finishes the last part starts the body exactly once. How a primitive becomes messages is
in :mod:`celeriac._client.dispatch`.
"""

from __future__ import annotations

import itertools
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

from celeriac._client.publish import Outgoing
from celeriac._client.result import AsyncResult
from celeriac._client.result import GroupResult
from celeriac._model.message import Embed
from celeriac._model.routing import TaskRoute

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac

#: Options a signature may carry that apply_async understands; the rest are kept as they came.
CALL_OPTIONS = ("countdown", "eta", "expires", "priority", "headers")

#: Options that place a task in a workflow; they belong to one call and are not inherited.
MEMBERSHIP_OPTIONS = ("task_id", "group_id", "group_index", "chord", "chord_size", "chain")


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if value is not None else ()


def _new_id() -> str:
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
        return self.set(link=[*_sequence(self.options.get("link")), callback])

    def link_error(self, errback: Signature) -> Signature:
        """Run ``errback`` with this task's id when it fails."""
        return self.set(link_error=[*_sequence(self.options.get("link_error")), errback])

    def linked(self, key: str, app: Celeriac | None = None) -> list[Canvas]:
        """The callbacks (``"link"``) or errbacks (``"link_error"``) as primitives; options
        may hold them in Celery's dict form (a message's, a Celery client's)."""
        app = app or self.app
        return [from_dict(s, app) if isinstance(s, Mapping) else s for s in _sequence(self.options.get(key))]

    def freeze(self) -> Signature:
        """This call with its task id fixed, so its result can be known before it is sent."""
        return self if self.options.get("task_id") else self.set(task_id=_new_id())

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
                merged[key] = [*_sequence(self.options.get(key)), *options[key]]
        return self.set(**merged)

    # --- wire -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Celery's signature dict."""
        options = {key: value for key, value in self.options.items() if key not in ("link", "link_error")}
        for key in ("link", "link_error"):
            if self.options.get(key):
                options[key] = [_dict(s) for s in _sequence(self.options[key])]
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
        """A plain signature from Celery's dict (see :func:`from_dict` for any primitive)."""
        options = dict(data.get("options") or {})
        for key in ("link", "link_error"):
            if options.get(key):
                options[key] = [from_dict(s, app) for s in _sequence(options[key])]
        return cls(
            task=data["task"],
            args=data.get("args") or (),
            kwargs=data.get("kwargs") or {},
            options=options,
            immutable=bool(data.get("immutable", False)),
            app=app,
        )

    def message(
        self,
        app: Celeriac,
        *,
        parent_id: str | None = None,
        root_id: str | None = None,
        embed: Embed | None = None,
    ) -> Outgoing:
        """The protocol 2 message for this call and where it goes: a queue, a TaskRoute for an
        ``exchange``/``routing_key`` set on the signature (kombu's), or None: the task's own."""
        task_id = self.options.get("task_id") or _new_id()
        links = _sequence(self.options.get("link"))
        errors = _sequence(self.options.get("link_error"))
        base = embed or Embed()
        chord = self.options.get("chord")
        if links or errors or (chord and not base.chord):  # else, the common case: as it came
            embed = evolve(
                base,
                callbacks=(*(base.callbacks or ()), *(_dict(s) for s in links)) or None,
                errbacks=(*(base.errbacks or ()), *(_dict(s) for s in errors)) or None,
                chord=base.chord or chord,
            )
        else:
            embed = base
        message = app.build_message(
            self.task,
            self.args,
            self.kwargs,
            task_id=task_id,
            parent_id=parent_id,
            root_id=root_id,
            embed=embed,
            group=self.options.get("group_id"),
            group_index=self.options.get("group_index"),
            **{k: self.options[k] for k in CALL_OPTIONS if k in self.options},
        )
        queue: str | None = self.options.get("queue")
        exchange, routing_key = self.options.get("exchange"), self.options.get("routing_key")
        if exchange is None and routing_key is None:
            return Outgoing(message=message, route=queue)
        return Outgoing(
            message=message, route=TaskRoute(queue=queue, exchange=exchange, routing_key=routing_key)
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
        group_id = self.options.get("group_id") or _new_id()
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


def signature(
    task: str | Mapping[str, Any],
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    app: Celeriac | None = None,
    immutable: bool = False,
    **options: Any,
) -> Signature:
    """A signature by task name (or from Celery's dict of a plain signature)."""
    if isinstance(task, Mapping):
        return Signature.from_dict(task, app)
    return Signature(
        task=task, args=tuple(args), kwargs=dict(kwargs or {}), options=options, immutable=immutable, app=app
    )


def from_dict(data: Mapping[str, Any], app: Celeriac | None = None) -> Canvas:
    """Any primitive from Celery's dict, by its ``subtask_type``."""
    kind = data.get("subtask_type")
    options = dict(data.get("options") or {})
    if data.get("chord_size") and "chord_size" not in options:
        options["chord_size"] = data["chord_size"]  # where Celery keeps a chord body's size
    kwargs = data.get("kwargs") or {}
    if kind == "chain":
        return evolve(chain(*(from_dict(t, app) for t in kwargs["tasks"])), options=options)
    if kind == "group":
        return Group(tasks=tuple(_member(from_dict(t, app)) for t in kwargs["tasks"]), options=options)
    if kind == "chord":
        header = kwargs["header"]
        members = header["kwargs"]["tasks"] if isinstance(header, Mapping) else header
        body = from_dict(kwargs["body"], app)
        if not isinstance(body, Signature | Chain):
            raise TypeError(f"a chord's body must be a signature or a chain, not {type(body).__name__}")
        return Chord(header=group(from_dict(t, app) for t in members), body=body, options=options)
    return Signature.from_dict(data, app)


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
            flat.append(_member(task))
        else:
            flat.extend(_member(t) for t in task)
    return Group(tasks=tuple(flat))


def chord(header: Group | Iterable[Canvas], body: Signature | Chain) -> Chord:
    """``chord(group(...), body)``: the body gets the list of the header's results."""
    return Chord(header=header if isinstance(header, Group) else group(header), body=body)


def chunks(sig: Signature, items: Iterable[Any], size: int) -> Group:
    """Split ``items`` into tasks of ``size`` argument tuples each, run with ``starmap``."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    iterator = iter(items)
    parts: list[Signature | Chain | Chord] = []
    while batch := list(itertools.islice(iterator, size)):
        parts.append(starmap(sig, batch))
    return Group(tasks=tuple(parts))


def xmap(sig: Signature, items: Iterable[Any]) -> Signature:
    """One task applying ``sig`` to each item in the worker: Celery's ``map``."""
    return Signature(task="celery.map", kwargs={"task": sig.to_dict(), "it": list(items)}, app=sig.app)


def starmap(sig: Signature, items: Iterable[Iterable[Any]]) -> Signature:
    """One task applying ``sig`` to each argument tuple in the worker: Celery's ``starmap``."""
    return Signature(
        task="celery.starmap", kwargs={"task": sig.to_dict(), "it": [list(i) for i in items]}, app=sig.app
    )


def _member(task: Canvas) -> Signature | Chain | Chord:
    if isinstance(task, Group):
        raise TypeError("a group cannot be a member of a group or a chord's header; use its tasks instead")
    return task


def _dict(value: Any) -> dict[str, Any]:
    return value.to_dict() if isinstance(value, Signature | Chain | Group | Chord) else dict(value)


def _sequence(value: Any) -> list[Any]:
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


def final_task(node: Canvas) -> Signature:
    """The task whose result is the workflow's: the last step's, the body's."""
    if isinstance(node, Signature):
        return node
    if isinstance(node, Chain):
        return final_task(node.tasks[-1])
    if isinstance(node, Chord):
        return final_task(node.body)
    raise TypeError("a group has no single final task")


def result_of(node: Canvas, app: Celeriac, parent: AsyncResult | GroupResult | None = None) -> Any:
    """The result handle of a frozen primitive: what ``apply_async`` returns."""
    if isinstance(node, Signature):
        return AsyncResult(node.id, app, parent=parent)
    if isinstance(node, Chain):
        result = parent
        for step in node.tasks:
            result = result_of(step, app, result)
        return result
    if isinstance(node, Group):
        return GroupResult(node.id, [result_of(task, app) for task in node.tasks], app, parent=parent)
    return result_of(node.body, app, result_of(node.header, app, parent))
