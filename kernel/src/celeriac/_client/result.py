"""AsyncResult: a handle on a task's state and return value, shaped like Celery's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

from celeriac._client.confirms import publish_error
from celeriac._contract.result_meta import ResultMeta
from celeriac._contract.result_meta import exception_from_meta
from celeriac._model import states
from celeriac._model.errors import TaskRevokedError
from celeriac._model.errors import TimeoutError  # noqa: A004 - Celery's name, for migration

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._model.records import ResultRecord


class ResultHandle(Protocol):
    """What ``delay``/``apply_async`` return: an :class:`AsyncResult`, or an eager result."""

    id: str

    @property
    def state(self) -> str: ...

    @property
    def result(self) -> Any: ...

    @property
    def traceback(self) -> str | None: ...

    def ready(self) -> bool: ...

    def successful(self) -> bool: ...

    def failed(self) -> bool: ...

    def get(self, timeout: float | None = None, propagate: bool = True) -> Any: ...

    def forget(self) -> None: ...

    @property
    def children(self) -> list[Any] | None: ...

    def collect(self, timeout: float | None = None) -> Iterator[tuple[Any, Any]]: ...


class AsyncResult:
    """The result of a queued task, read from the app's result store."""

    def __init__(
        self, task_id: str, app: Celeriac, *, parent: AsyncResult | GroupResult | None = None
    ) -> None:
        self.id = task_id
        self.app = app
        #: The result this one follows in a chain (or a chord's header), walking back to the start.
        self.parent = parent

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id} {self.state}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def _meta(self) -> ResultMeta | None:
        record = self.app.result_store.get(self.id)
        return self.app.results.decode(record) if record is not None else None

    @property
    def state(self) -> str:
        meta = self._meta()
        return meta.state if meta is not None else states.PENDING

    status = state

    @property
    def result(self) -> Any:
        """The return value, the exception of a failure, or None while not ready."""
        meta = self._meta()
        if meta is None:
            return None
        return _value(meta)

    info = result

    @property
    def traceback(self) -> str | None:
        meta = self._meta()
        return meta.traceback if meta is not None else None

    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    def get(self, timeout: float | None = None, propagate: bool = True) -> Any:
        """Wait for the task to finish and return its value.

        :param timeout: seconds to wait; :class:`~celeriac._model.errors.TimeoutError` after that.
        :param propagate: re-raise the task's exception on FAILURE (or REVOKED).
        """
        failed = publish_error(self.app, self.id)
        if failed is not None:
            raise failed
        record = self.app.result_store.wait(self.id, states.READY_STATES, timeout)
        if record is None:
            raise TimeoutError(f"task {self.id} not ready after {timeout} s")
        return _finished_value(self.app, record, propagate)

    wait = get

    def forget(self) -> None:
        """Delete the stored result."""
        self.app.result_store.forget(self.id)

    def revoke(self, *, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Ask every worker not to run this task (see ``app.control.revoke``)."""
        self.app.control.revoke(self.id, terminate=terminate, signal=signal)

    @property
    def children(self) -> list[AsyncResult | GroupResult] | None:
        """The tasks this one sent while it ran (stored with its result); None until it finished."""
        meta = self._meta()
        if meta is None or meta.state not in states.READY_STATES:
            return None
        return [result_from_tuple(child, self.app) for child in meta.children]

    def collect(self, timeout: float | None = None) -> Iterator[tuple[AsyncResult | GroupResult, Any]]:
        """``(result, value)`` for this task and, depth first, every task it started and
        those started in turn, waiting for each (``timeout`` per result)."""
        yield from _collect(self, timeout)


def _finished_value(app: Celeriac, record: ResultRecord, propagate: bool) -> Any:
    """A finished task's value; its exception raised instead when ``propagate``."""
    meta = app.results.decode(record)
    value = _value(meta)
    if propagate and meta.state in states.PROPAGATE_STATES:
        assert isinstance(value, BaseException)
        raise value
    return value


def _value(meta: ResultMeta) -> Any:
    if meta.state == states.REVOKED:
        return TaskRevokedError(f"task {meta.task_id} revoked: {meta.result}")
    if meta.state in states.EXCEPTION_STATES:
        return exception_from_meta(meta.result)
    return meta.result


#: Results of a group read in one round trip by :meth:`GroupResult.get`.
_READ_CHUNK = 1000


class GroupResult:
    """The results of a group's tasks, in the order they were given."""

    def __init__(
        self,
        group_id: str,
        results: list[AsyncResult],
        app: Celeriac,
        *,
        parent: AsyncResult | GroupResult | None = None,
    ) -> None:
        self.id = group_id
        self.results = results
        self.app = app
        #: The result this group follows in a chain.
        self.parent = parent

    @property
    def children(self) -> list[AsyncResult]:
        """The group's results: what :meth:`AsyncResult.collect` walks into."""
        return self.results

    def __repr__(self) -> str:
        return f"<GroupResult {self.id} [{', '.join(r.id for r in self.results)}]>"

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AsyncResult]:
        return iter(self.results)

    def _states(self) -> list[str]:
        records = self.app.result_store.get_many([r.id for r in self.results])
        return [record.state if record is not None else states.PENDING for record in records]

    def completed_count(self) -> int:
        """How many finished successfully."""
        return sum(state == states.SUCCESS for state in self._states())

    def ready(self) -> bool:
        return all(state in states.READY_STATES for state in self._states())

    def successful(self) -> bool:
        return all(state == states.SUCCESS for state in self._states())

    def failed(self) -> bool:
        return any(state == states.FAILURE for state in self._states())

    def get(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Every task's value, in order; the first failure (in order) is raised when ``propagate``.

        Results are read ``_READ_CHUNK`` at a time in one round trip each; only a task not
        finished yet is waited for on its own, so a finished group of ten thousand costs ten
        round trips, not ten thousand.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        store = self.app.result_store
        values = []
        for start in range(0, len(self.results), _READ_CHUNK):
            chunk = self.results[start : start + _READ_CHUNK]
            records = store.get_many([r.id for r in chunk])
            for result, found in zip(chunk, records, strict=True):
                record = found
                if record is None or record.state not in states.READY_STATES:
                    remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                    record = store.wait(result.id, states.READY_STATES, remaining)
                    if record is None:
                        raise TimeoutError(f"task {result.id} of group {self.id} not ready after {timeout} s")
                values.append(_finished_value(self.app, record, propagate))
        return values

    join = get

    def revoke(self, *, terminate: bool = False) -> None:
        self.app.control.revoke([r.id for r in self.results], terminate=terminate)

    def save(self) -> None:
        """Store the member ids under the group id, so :meth:`restore` can find them."""
        record = self.app.results.encode(self.id, states.SUCCESS, [r.id for r in self.results])
        self.app.result_store.store(record)

    def forget(self) -> None:
        self.app.result_store.forget(self.id)
        for result in self.results:
            result.forget()

    @classmethod
    def restore(cls, group_id: str, app: Celeriac) -> GroupResult:
        record = app.result_store.get(group_id)
        if record is None:
            raise KeyError(f"no saved group {group_id!r}")
        ids = app.results.decode(record).result
        return cls(group_id, [app.AsyncResult(task_id) for task_id in ids], app)


def result_from_tuple(value: Any, app: Celeriac) -> AsyncResult | GroupResult:
    """A result from Celery's stored tuple form: ``[[id, parent], None]`` for a task,
    ``[[id, parent], [members...]]`` for a group."""
    (task_id, _parent), members = value
    if members is None:
        return AsyncResult(task_id, app)
    # A group's members are tasks; Celery nests no groups in a stored group.
    return GroupResult(task_id, [AsyncResult(m[0][0], app) for m in members], app)


def _collect(
    node: AsyncResult | GroupResult, timeout: float | None
) -> Iterator[tuple[AsyncResult | GroupResult, Any]]:
    yield node, node.get(timeout=timeout)
    for child in node.children or ():
        yield from _collect(child, timeout)
