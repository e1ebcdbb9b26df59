"""Workflows: signatures, chain, group and chord, encoded in protocol 2's ``embed`` as Celery does.

A signature is a task call waiting to happen, serialisable as Celery's dict (``task``,
``args``, ``kwargs``, ``options``, ``subtask_type``, ``immutable``). A chain travels in the
first task's message as ``embed.chain``, reversed (the next task last); each worker pops
the next step when its task succeeds. A chord's header tasks carry the body in
``embed.chord`` and the group id; the result store counts finished parts atomically, and the
worker that finishes the last part publishes the body exactly once.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from attrs import evolve
from attrs import field
from attrs import frozen

from celeriac.message import Embed
from celeriac.message import TaskMessage

if TYPE_CHECKING:
    from celeriac.app import Celeriac
    from celeriac.result import AsyncResult
    from celeriac.result import GroupResult

#: Options a signature may carry that apply_async understands; the rest are kept as they came.
CALL_OPTIONS = ("countdown", "eta", "expires", "priority", "headers")


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if value is not None else ()


@frozen(kw_only=True)
class Signature:
    """One task call with arguments and options, not yet sent.

    :param immutable: when True, a chain does not prepend the previous result to ``args``.
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
        """A copy with ``args`` appended (partial application) and kwargs and options merged."""
        return evolve(
            self,
            args=(*self.args, *args),
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

    def __or__(self, other: Signature | Chain) -> Chain:
        return chain(self, other)

    # --- wire -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Celery's signature dict."""
        options = {key: value for key, value in self.options.items() if key not in ("link", "link_error")}
        if self.options.get("link"):
            options["link"] = [s.to_dict() for s in self.options["link"]]
        if self.options.get("link_error"):
            options["link_error"] = [s.to_dict() for s in self.options["link_error"]]
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
        options = dict(data.get("options") or {})
        for key in ("link", "link_error"):
            if options.get(key):
                options[key] = [cls.from_dict(s, app) for s in _sequence(options[key])]
        return cls(
            task=data["task"],
            args=data.get("args") or (),
            kwargs=data.get("kwargs") or {},
            options=options,
            immutable=bool(data.get("immutable", False)),
            app=app,
        )

    # --- sending ----------------------------------------------------------------------

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        return self.apply_async(args, kwargs)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncResult:
        """Send this call (with ``args`` appended and options merged)."""
        app = _app_of(self, options.pop("app", None))
        sig = self.clone(args, kwargs, **options)
        task_id = sig.options.get("task_id") or str(uuid.uuid4())
        sig = sig.set(task_id=task_id)
        app.send_message(sig.message(app))
        return app.AsyncResult(task_id)

    def message(
        self,
        app: Celeriac,
        *,
        parent_id: str | None = None,
        root_id: str | None = None,
        embed: Embed | None = None,
    ) -> tuple[TaskMessage, str | None]:
        """The protocol 2 message for this call and the queue it goes to (None: the task's)."""
        task_id = self.options.get("task_id") or str(uuid.uuid4())
        links = _sequence(self.options.get("link"))
        errors = _sequence(self.options.get("link_error"))
        base = embed or Embed()
        embed = evolve(
            base,
            callbacks=(*(base.callbacks or ()), *(s.to_dict() for s in links)) or None,
            errbacks=(*(base.errbacks or ()), *(s.to_dict() for s in errors)) or None,
        )
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
        return message, self.options.get("queue")


@frozen
class Chain:
    """Tasks run one after another, each given the previous result (unless immutable)."""

    tasks: tuple[Signature, ...]

    def __or__(self, other: Signature | Chain) -> Chain:
        return chain(self, other)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        return self.apply_async(args, kwargs)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncResult:
        """Send the first task, carrying the rest; returns the last task's result, whose
        ``parent`` chain walks back to the first."""
        app = _app_of(self.tasks[0], options.pop("app", None))
        steps = [s.set(task_id=s.options.get("task_id") or str(uuid.uuid4())) for s in self.tasks]
        first = steps[0].clone(args, kwargs, **options)
        root_id = first.options["task_id"]
        rest = tuple(s.to_dict() for s in reversed(steps[1:])) or None
        message, queue = first.message(app, root_id=root_id, embed=Embed(chain=rest))
        app.send_message((message, queue))
        result: AsyncResult | None = None
        for step in steps:
            result = app.AsyncResult(step.options["task_id"], parent=result)
        assert result is not None
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "celery.chain",
            "args": [],
            "kwargs": {"tasks": [s.to_dict() for s in self.tasks]},
            "options": {},
            "subtask_type": "chain",
            "immutable": False,
        }


@frozen
class Group:
    """Tasks run in parallel; their results come back together as a GroupResult."""

    tasks: tuple[Signature, ...]

    def __iter__(self) -> Iterator[Signature]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def delay(self, *args: Any, **kwargs: Any) -> GroupResult:
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        group_id: str | None = None,
        chord: Signature | None = None,
        **options: Any,
    ) -> GroupResult:
        """Publish every task, batched per queue (one round trip each where the transport
        allows), and save the group so ``GroupResult.restore(id)`` works."""
        from celeriac.result import GroupResult

        if not self.tasks:
            raise ValueError("a group needs at least one task")
        app = _app_of(self.tasks[0], options.pop("app", None))
        group_id = group_id or str(uuid.uuid4())
        extra = tuple(args)
        members = [
            task.clone(extra, kwargs, **options).set(
                task_id=task.options.get("task_id") or str(uuid.uuid4()), group_id=group_id, group_index=index
            )
            for index, task in enumerate(self.tasks)
        ]
        chord_embed = Embed(chord=chord.to_dict()) if chord is not None else None
        result = GroupResult(group_id, [app.AsyncResult(m.options["task_id"]) for m in members], app)
        if app.result_store_url is not None:
            result.save()
        app.send_messages([m.message(app, embed=chord_embed) for m in members])
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "celery.group",
            "args": [],
            "kwargs": {"tasks": [s.to_dict() for s in self.tasks]},
            "options": {},
            "subtask_type": "group",
            "immutable": False,
        }


@frozen
class Chord:
    """A group (the header) whose results, in order, are passed to one more task (the body).

    The body runs exactly once, after every header task finished; if one failed, the body
    is not run: its result becomes a ChordError naming the failed task, and its errbacks run.
    """

    header: Group
    body: Signature

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        return self.apply_async(args, kwargs)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncResult:
        app = _app_of(self.body, options.pop("app", None))
        app.require_chord_support()
        body = self.body.set(task_id=self.body.options.get("task_id") or str(uuid.uuid4()))
        body = body.set(chord_size=len(self.header))
        header_result = self.header.apply_async(args, kwargs, chord=body, app=app, **options)
        return app.AsyncResult(body.options["task_id"], parent=header_result)


def signature(
    task: str | Mapping[str, Any],
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    app: Celeriac | None = None,
    immutable: bool = False,
    **options: Any,
) -> Signature:
    """A signature by task name (or from Celery's dict)."""
    if isinstance(task, Mapping):
        return Signature.from_dict(task, app)
    return Signature(
        task=task, args=tuple(args), kwargs=dict(kwargs or {}), options=options, immutable=immutable, app=app
    )


def chain(*tasks: Signature | Chain) -> Chain:
    """``chain(a.s(), b.s())`` or ``a.s() | b.s()``; nested chains are flattened."""
    flat: list[Signature] = []
    for task in tasks:
        flat.extend(task.tasks if isinstance(task, Chain) else (task,))
    if not flat:
        raise ValueError("a chain needs at least one task")
    return Chain(tuple(flat))


def group(*tasks: Signature | Iterable[Signature]) -> Group:
    """``group(a.s(1), a.s(2))`` or ``group(a.s(i) for i in range(10))``."""
    flat: list[Signature] = []
    for task in tasks:
        flat.extend((task,) if isinstance(task, Signature) else task)
    return Group(tuple(flat))


def chord(header: Group | Iterable[Signature], body: Signature) -> Chord:
    """``chord(group(...), body)``: the body gets the list of the header's results."""
    return Chord(header if isinstance(header, Group) else group(header), body)


def chunks(sig: Signature, items: Iterable[Any], size: int) -> Group:
    """Split ``items`` into tasks of ``size`` argument tuples each, run with ``starmap``."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    iterator = iter(items)
    parts = []
    while batch := list(itertools.islice(iterator, size)):
        parts.append(starmap(sig, batch))
    return Group(tuple(parts))


def xmap(sig: Signature, items: Iterable[Any]) -> Signature:
    """One task applying ``sig`` to each item in the worker: Celery's ``map``."""
    return Signature(task="celery.map", kwargs={"task": sig.to_dict(), "it": list(items)}, app=sig.app)


def starmap(sig: Signature, items: Iterable[Iterable[Any]]) -> Signature:
    """One task applying ``sig`` to each argument tuple in the worker: Celery's ``starmap``."""
    return Signature(
        task="celery.starmap", kwargs={"task": sig.to_dict(), "it": [list(i) for i in items]}, app=sig.app
    )


def _sequence(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _app_of(sig: Signature, app: Celeriac | None) -> Celeriac:
    found = app or sig.app
    if found is None:
        raise ValueError(f"signature {sig.task!r} has no app: build it with task.s(...) or pass app=")
    return found
