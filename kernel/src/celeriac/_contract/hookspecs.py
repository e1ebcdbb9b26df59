"""The hook specifications: the only contract between the kernel and plugins.

Naming (see docs/writing-plugins.md): ``celeriac_add_<things>`` collects from every plugin
and returns a sequence; ``celeriac_<subject>_<event>`` is a notification whose return value
is ignored. Components are offered as *specs* (schemes or a name plus a factory) rather
than through first-result hooks, so the kernel can name every candidate when none or two
claim a URL scheme, and ``celeriac plugins`` can say what each plugin provides without
constructing anything.

Unless a spec says otherwise, hooks are called in the worker's main thread, and an
exception raised by an implementation propagates to the caller. The ``celeriac_task_*``
hooks are the exception: they are isolated, so an error in one is logged and never changes
the task's outcome (a broken monitoring plugin must not make tasks run twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import pluggy

if TYPE_CHECKING:
    import click

    from celeriac._client.app import Celeriac
    from celeriac._client.task import Task
    from celeriac._contract.bootsteps import Bootstep
    from celeriac._contract.protocols import Compressor
    from celeriac._contract.protocols import EventSink
    from celeriac._contract.protocols import Serializer
    from celeriac._contract.specs import ControlCommand
    from celeriac._contract.specs import PoolSpec
    from celeriac._contract.specs import ResultStoreSpec
    from celeriac._contract.specs import ScheduleStoreSpec
    from celeriac._contract.specs import ScheduleType
    from celeriac._contract.specs import TransportSpec
    from celeriac._model.config import Config
    from celeriac._model.config import ConfigSection
    from celeriac._model.message import TaskMessage
    from celeriac._model.request import TaskRequest
    from celeriac._worker.worker import Worker

PROJECT = "celeriac"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- bootstrap: called once while an app or the CLI is built -------------------------


@hookspec
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    """Declare the TOML sections this plugin reads, so unknown keys in them are errors.

    :returns: sections, each a name (the top-level TOML table) and an attrs class.
    """


@hookspec
def celeriac_add_cli_commands() -> Sequence[click.Command]:
    """Add subcommands to the ``celeriac`` command line.

    Called when the CLI is built, before any configuration is read.
    """


# --- components: collected once per app; the kernel picks one by name or scheme ------


@hookspec
def celeriac_add_transports() -> Sequence[TransportSpec]:
    """Offer broker transports, each for one or more URL schemes (``sqlite``, ``redis`` ...)."""


@hookspec
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    """Offer result stores, each for one or more URL schemes."""


@hookspec
def celeriac_add_pools() -> Sequence[PoolSpec]:
    """Offer execution pools, each under the name ``worker.pool`` selects."""


@hookspec
def celeriac_add_serializers(config: Config) -> Sequence[Serializer]:
    """Offer serializers; ``serializer`` and ``accept`` select among them by name or content type.

    :param config: the app's configuration (opt-in), for serializers that need settings,
        such as a signing serializer's keys. Called once per app, before anything is sent.
    """


@hookspec
def celeriac_add_compressors(config: Config) -> Sequence[Compressor]:
    """Offer body compressors; ``compression`` selects one by name.

    :param config: the app's configuration (opt-in), e.g. for a compression level.
    """


@hookspec
def celeriac_add_schedule_types() -> Sequence[ScheduleType]:
    """Offer kinds of beat schedule (interval, crontab ...), keyed by their TOML field.

    Each ``ScheduleType.factory`` receives the TOML value of its key (or what code passed) and
    returns a :class:`celeriac._model.schedules.Schedule`; a ValueError or TypeError it raises is
    reported with the entry's name. Called once per app, when beat starts.
    """


@hookspec
def celeriac_add_schedule_stores() -> Sequence[ScheduleStoreSpec]:
    """Offer stores for beat's last-run times, each for one or more URL schemes.

    A store that also implements :class:`celeriac._model.schedules.BeatLock` lets several beat
    instances run on it, one of them sending; beat runs alone (with a warning) on others.
    """


@hookspec
def celeriac_add_control_commands() -> Sequence[ControlCommand]:
    """Offer remote-control commands; a name the kernel uses is replaced (with care)."""


@hookspec
def celeriac_add_event_sinks(config: Config, app: Celeriac) -> Sequence[EventSink]:
    """Return the event sinks this plugin wants, given the configuration.

    Called in the worker's main thread at every start, also with events off (remote control
    can turn them on), so a sink must do nothing until its first event. Every plugin's sinks
    receive every event, from several threads.

    :param app: the app (opt-in), e.g. for its transport's fan-out.
    """


@hookspec
def celeriac_add_bootsteps(config: Config) -> Sequence[Bootstep]:
    """Contribute worker bootsteps; they join the kernel's dependency graph by name.

    A step with the same name as a kernel step replaces it.
    """


@hookspec
def celeriac_app_configured(app: Celeriac) -> None:
    """An app was built: configuration read, plugins loaded, built-in tasks registered.

    Called at the end of ``Celeriac(...)``, in the thread that built it, for every app
    (producers, workers, a prefork pool's children). A plugin may register its own tasks
    here; it must not connect to anything (connections open on first use).
    """


@hookspec
def celeriac_app_closing(app: Celeriac) -> None:
    """``app.close()`` was called: deliver what a plugin holds for this app and release it
    (threads, buffers), before the app's broker and result store connections close.

    The app may be used again afterwards (its connections reopen on first use), so a
    plugin keeps working for it; it only must not keep a thread or a buffer alive for it.
    """


# --- worker lifecycle -----------------------------------------------------------------


@hookspec
def celeriac_worker_ready(worker: Worker) -> None:
    """The worker has started every bootstep and is consuming."""


@hookspec
def celeriac_worker_shutdown(worker: Worker) -> None:
    """The worker is stopping; called before its bootsteps are torn down."""


# --- message path: called only when some plugin implements them -----------------------


@hookspec
def celeriac_before_publish(message: TaskMessage, queue: str, app: Celeriac) -> None:
    """A task message is about to be published, in the publishing thread.

    The hook may add headers: ``message.extra_headers`` is a dict on every publish path
    (``delay``/``apply_async``, ``send_task``, groups sent in one batch, retries, the next
    step of a workflow), and the message is encoded from it after every before-publish hook
    has run, so what a hook writes there travels as message headers and reaches the worker
    in ``request.message.extra_headers`` (celeriac-opentelemetry puts ``traceparent`` there).
    A key that the protocol itself uses (``id``, ``task``, ``root_id`` ...) is ignored: the
    kernel's value wins. A retry's message carries the headers of the message it retries,
    so a hook should set its keys rather than add only when absent.

    An exception stops the publish and reaches the caller of ``apply_async``.
    """


@hookspec
def celeriac_after_publish(message: TaskMessage, queue: str, app: Celeriac) -> None:
    """A task message was handed to the transport, in the publishing thread."""


@hookspec
def celeriac_task_prerun(task: Task[Any, Any], request: TaskRequest) -> None:
    """A task is about to run, in the thread (or process) that runs it. Isolated."""


@hookspec
def celeriac_task_postrun(task: Task[Any, Any], request: TaskRequest, state: str, retval: Any) -> None:
    """A task has returned or raised; ``state`` is the state recorded for it. Isolated."""


@hookspec
def celeriac_task_success(task: Task[Any, Any], request: TaskRequest, result: Any) -> None:
    """A task returned ``result``. Isolated."""


@hookspec
def celeriac_task_failure(
    task: Task[Any, Any], request: TaskRequest, exception: BaseException, traceback: str
) -> None:
    """A task raised ``exception`` and will not be retried. Isolated."""


@hookspec
def celeriac_task_retry(task: Task[Any, Any], request: TaskRequest, reason: BaseException) -> None:
    """A task asked to be retried (or ``autoretry_for`` matched). Isolated."""


@hookspec
def celeriac_task_revoked(request: TaskRequest, reason: str, extra: Mapping[str, Any]) -> None:
    """A task will not run: it expired or was revoked. Called in the consumer thread. Isolated."""


@hookspec
def celeriac_task_received(request: TaskRequest) -> None:
    """The worker received a task message and accepted it (Celery's ``task_received``).
    Called in the consumer thread only when implemented. Isolated."""


@hookspec
def celeriac_task_unknown(message: TaskMessage, reason: str) -> None:
    """A message named a task this worker has not registered; it is dead-lettered. Isolated."""


@hookspec
def celeriac_task_rejected(message: object, reason: str) -> None:
    """A message was refused before it became a request (bad body, content type not
    accepted, redelivered too often); it is dead-lettered. ``message`` is the decoded
    :class:`TaskMessage` when there is one, else the raw delivery. Isolated."""


# --- processes ----------------------------------------------------------------------------


@hookspec
def celeriac_worker_init(worker: Worker) -> None:
    """The worker is about to start its bootsteps (Celery's ``worker_init``)."""


@hookspec
def celeriac_worker_process_init(app: Celeriac) -> None:
    """In each child process of a process pool (prefork), before it runs a task: open
    per-process resources (database connections) here, never inherit them across a fork."""


@hookspec
def celeriac_worker_process_shutdown(app: Celeriac, exitcode: int) -> None:
    """In a child process of a process pool, as it exits."""


@hookspec
def celeriac_beat_init(app: Celeriac, service: object) -> None:
    """Beat is about to start sending periodic tasks."""
