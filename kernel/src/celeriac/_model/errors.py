"""Exceptions raised by celeriac, each naming its cause."""

from __future__ import annotations

import datetime as dt


class CeleriacError(Exception):
    """Base of every celeriac error."""


class ConfigError(CeleriacError):
    """The configuration is invalid: the message names the file, key, value and expectation."""


class PluginError(CeleriacError):
    """A plugin failed to load, or no (or more than one) plugin provides a component."""


class BootstepError(CeleriacError):
    """The bootstep graph is invalid: unknown requirement, duplicate name or cycle."""


class MessageError(CeleriacError):
    """A message could not be decoded into a task request."""


class ContentDisallowedError(MessageError):
    """A message's content type is not in the ``accept`` list."""


class SerializationError(CeleriacError):
    """A value could not be encoded by the chosen serializer."""


class RoutingError(CeleriacError):
    """The broker could not route a message: no such exchange, or no queue bound for its key."""


class PublishError(CeleriacError):
    """The broker refused a published message for good (a nack after retries): it is not queued."""


class PublishTimeoutError(PublishError):
    """The broker could not be reached within ``publish_timeout``: the message was not sent."""


class NotRegisteredError(CeleriacError):
    """The task name is not registered with the app."""


class TimeoutError(CeleriacError):  # noqa: A001 - mirrors Celery's celery.exceptions.TimeoutError
    """A result was not ready within the timeout."""


class ChordError(CeleriacError):
    """A chord's body was not run because one of its header tasks did not succeed."""


class TaskRevokedError(CeleriacError):
    """The task was revoked (or expired) and will not run."""


class TaskError(CeleriacError):
    """A task failed with an exception whose type cannot be rebuilt here.

    :param exc_type: the remote exception's class name.
    :param exc_module: the module that defined it.
    """

    def __init__(self, exc_type: str, exc_module: str, message: str) -> None:
        super().__init__(f"{exc_module}.{exc_type}: {message}")
        self.exc_type = exc_type
        self.exc_module = exc_module
        self.message = message


class Retry(CeleriacError):  # noqa: N818 - control flow, named for the intent as in Celery/dramatiq
    """Raised by ``Task.retry`` to end the current run; the worker records RETRY."""

    def __init__(
        self,
        message: str = "",
        exc: BaseException | None = None,
        when: float | dt.datetime | None = None,
        *,
        recorded: bool = False,
    ) -> None:
        super().__init__(message or (repr(exc) if exc is not None else "retry"))
        #: Seconds from now, or the time, the retry runs (Celery's ``Retry.when``).
        self.exc = exc
        self.when = when
        #: RETRY is stored already (before the new message was sent, so that a quick rerun's
        #: final state cannot be overwritten by it).
        self.recorded = recorded


class MaxRetriesExceededError(CeleriacError):
    """A task asked to retry more often than ``max_retries`` allows.

    :param exc: the exception of the last attempt, when there was one (also ``__cause__``).
    """

    def __init__(self, message: str, exc: BaseException | None = None) -> None:
        super().__init__(message)
        self.exc = exc


class SoftTimeLimitExceededError(CeleriacError):
    """Raised inside a task when its soft time limit passes; the task may catch it to clean up."""


class TimeLimitExceededError(CeleriacError):
    """A task ran past its hard time limit and was stopped."""


class WorkerLostError(CeleriacError):
    """The process running a task died before the task finished."""


class Ignore(CeleriacError):  # noqa: N818 - control flow, named for the intent
    """Raised by a task to leave its state untouched and just acknowledge the message."""


class Replaced(Ignore):
    """Raised by ``self.replace(sig)``: the task's result, workflow and id passed to ``sig``."""
