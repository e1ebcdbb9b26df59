"""Result meta in Celery's layout, encoded with the result serializer.

A stored result is ``{"status", "result", "traceback", "children", "date_done", "task_id"}``;
a failure's ``result`` is ``{"exc_type", "exc_message", "exc_module"}``. Keeping this
layout lets Celery clients read celeriac results from a shared store, and the reverse.
"""

from __future__ import annotations

import builtins
import datetime as dt
import sys
from typing import Any

from attrs import frozen

from celeriac._contract.codec import Codec
from celeriac._model import states
from celeriac._model.errors import TaskError
from celeriac._model.records import ResultRecord


@frozen(kw_only=True)
class ResultMeta:
    """A decoded result record."""

    task_id: str
    state: str
    result: Any = None
    traceback: str | None = None
    date_done: str | None = None
    children: tuple[Any, ...] = ()


class ResultEncoder:
    """Turns task outcomes into :class:`ResultRecord` bytes and back."""

    def __init__(self, codec: Codec, serializer: str) -> None:
        self.codec = codec
        self.serializer = serializer

    def encode(
        self,
        task_id: str,
        state: str,
        result: Any = None,
        traceback: str | None = None,
        *,
        reply_to: str | None = None,
        **extra: Any,
    ) -> ResultRecord:
        """The record of a state; ``reply_to`` is the task message's (see ``ReplyQueue``),
        ``extra`` joins the stored meta."""
        if isinstance(result, BaseException):
            result = exception_to_meta(result)
        meta = {
            "status": state,
            "result": result,
            "traceback": traceback,
            "children": [],
            "date_done": dt.datetime.now(dt.UTC).isoformat() if state in states.READY_STATES else None,
            "task_id": task_id,
            **extra,
        }
        payload, serializer = self.codec.dumps(meta, self.serializer)
        return ResultRecord(
            task_id=task_id,
            state=state,
            payload=payload,
            content_type=serializer.content_type,
            content_encoding=serializer.content_encoding,
            reply_to=reply_to,
        )

    def decode(self, record: ResultRecord) -> ResultMeta:
        meta = self.codec.loads(record.payload, record.content_type, accept=self.codec.result_accept)
        return ResultMeta(
            task_id=record.task_id,
            state=meta.get("status", record.state),
            result=meta.get("result"),
            traceback=meta.get("traceback"),
            date_done=meta.get("date_done"),
            children=tuple(meta.get("children") or ()),
        )


def exception_to_meta(exc: BaseException) -> dict[str, Any]:
    cls = type(exc)
    return {
        "exc_type": cls.__qualname__,
        "exc_message": [_plain(arg) for arg in exc.args],
        "exc_module": cls.__module__,
    }


def exception_from_meta(meta: Any) -> BaseException:
    """Rebuild a stored exception: its own class when already importable here, else TaskError.

    Only modules already imported (or builtins) are looked in, so reading a result never
    imports code named by a message.
    """
    if not isinstance(meta, dict) or "exc_type" not in meta:
        return TaskError("Exception", "builtins", repr(meta))
    name, module = str(meta["exc_type"]), str(meta.get("exc_module") or "builtins")
    args = meta.get("exc_message") or []
    args = args if isinstance(args, list) else [args]
    owner = builtins if module == "builtins" else sys.modules.get(module)
    cls = getattr(owner, name, None) if owner is not None and "." not in name else None
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(*args)
        except Exception:  # a constructor that needs other arguments: fall back below
            return TaskError(name, module, ", ".join(str(a) for a in args))
    return TaskError(name, module, ", ".join(str(a) for a in args))


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
