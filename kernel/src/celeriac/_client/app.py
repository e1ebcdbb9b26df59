"""The application: configuration, plugins, registered tasks and the publishing side.

``Celeriac("proj")`` reads its configuration once, at construction, and never changes it.
Connections to the broker and result store open on first use, not here.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import ParamSpec
from typing import TypeVar
from typing import overload

from celeriac._client.builtins import register_builtins
from celeriac._client.control import Control
from celeriac._client.dispatch import send
from celeriac._client.eager import apply_eagerly
from celeriac._client.eager_canvas import apply_canvas
from celeriac._client.periodic import add_periodic_task
from celeriac._client.publish import Outgoing
from celeriac._client.publish import Publisher
from celeriac._client.result import AsyncResult
from celeriac._client.result import GroupResult
from celeriac._client.result import ResultHandle
from celeriac._client.shared import adopt_app
from celeriac._client.shared import set_current_app
from celeriac._client.shared import set_default_app
from celeriac._client.task import Task
from celeriac._client.task_options import TaskOptions
from celeriac._client.task_options import resolve_task_options
from celeriac._contract.codec import Codec
from celeriac._contract.plugins import Plugins
from celeriac._contract.plugins import make_plugins
from celeriac._contract.protocols import ChordCounter
from celeriac._contract.protocols import ReplyQueue
from celeriac._contract.protocols import ResultStore
from celeriac._contract.protocols import Transport
from celeriac._contract.result_meta import ResultEncoder
from celeriac._model.config import Config
from celeriac._model.config import build_config
from celeriac._model.config import plugins_config
from celeriac._model.config import read_layers
from celeriac._model.errors import ConfigError
from celeriac._model.message import TaskMessage
from celeriac._model.redaction import redact_url
from celeriac._model.routing import TaskRoute

if TYPE_CHECKING:
    from celeriac._client.canvas import Canvas
    from celeriac._client.canvas import Signature
    from celeriac._model.schedules import PeriodicTask
    from celeriac._model.schedules import Schedule
    from celeriac._worker.worker import Worker

P = ParamSpec("P")
R = TypeVar("R")


class Celeriac:
    """A celeriac application.

    :param main: the name of the main module, used to name tasks defined in ``__main__``.
    :param broker: broker URL; overrides the file. Default: ``sqlite:///celeriac.sqlite3``.
    :param result_store: result store URL; overrides the file.
    :param config: path of a TOML file; default ``celeriac.toml`` or ``[tool.celeriac]``;
        ``False`` reads no file.
    :param plugins: plugin objects to register besides the installed ones.
    :param autoload_plugins: load installed plugins from entry points.
    :param env: environment to read ``CELERIAC_*`` overrides from (default ``os.environ``).
    :param backend: Celery's name for ``result_store``.
    :param include: Celery's name for ``imports``: modules the worker imports for their tasks.
    :param set_as_current: make this the process's default app, the one ``@shared_task``
        tasks resolve to (as Celery's ``set_as_current``).
    :param task_cls: the class of this app's tasks, a subclass of :class:`Task` (Celery's
        ``task_cls``): an integration adds methods to every task this way (celeriac-django's
        ``delay_on_commit``).
    :param settings: any other configuration key, overriding file and environment.
    """

    def __init__(
        self,
        main: str | None = None,
        *,
        broker: str | None = None,
        result_store: str | None = None,
        config: str | os.PathLike[str] | bool | None = None,
        plugins: Iterable[object] = (),
        autoload_plugins: bool | None = None,
        env: Mapping[str, str] | None = None,
        set_as_current: bool = True,
        task_cls: type[Task[Any, Any]] = Task,
        backend: str | None = None,
        include: Sequence[str] | None = None,
        **settings: Any,
    ) -> None:
        if backend is not None and result_store is not None:
            raise ConfigError("give result_store or backend (Celery's name for it), not both")
        if include is not None:
            if "imports" in settings:
                raise ConfigError("give imports or include (Celery's name for it), not both")
            settings["imports"] = list(include)
        store = result_store if result_store is not None else backend
        overrides = {"broker": broker, "result_store": store, **settings}
        raw = read_layers(config, env=env, overrides=overrides)
        self.plugins: Plugins = make_plugins(
            plugins_config(raw), autoload=autoload_plugins, extra=plugins, env=env
        )
        self.config: Config = build_config(raw, self.plugins.config_sections())
        self.config_file: Path | None = raw.file
        self.main = main
        #: ``module:attribute`` this app was loaded from by the CLI, so that processes started
        #: afresh (a pool's children under spawn) can import the same app; None otherwise.
        self.import_path: str | None = None
        self.tasks: dict[str, Task[Any, Any]] = {}
        #: Names registered from ``@shared_task`` declarations: an ``@app.task`` of the same
        #: name replaces them (the app's own task wins, whichever came first).
        self._from_shared: set[str] = set()
        self.task_cls = task_cls
        self._unregistered_options: dict[str, TaskOptions] = {}
        #: Periodic tasks declared in code (``add_periodic_task``), by entry name.
        self.periodic_tasks: dict[str, PeriodicTask] = {}
        self.codec = Codec(
            self.plugins.serializers(self.config),
            self.plugins.compressors(self.config),
            serializer=self.config.serializer,
            accept=self.config.accept,
            compression=self.config.compression,
            result_accept=self.config.result_accept,
        )
        self.results = ResultEncoder(self.codec, self.config.result_serializer)
        self.origin = f"gen{os.getpid()}@{socket.gethostname()}"
        self._lock = threading.Lock()
        self._transport: Transport | None = None
        self._result_store: ResultStore | None = None
        #: Names the result store's reply queue (``rpc://``) or returns None; None: not asked yet.
        self._replies: Callable[[], str | None] | None = None
        self.publisher = Publisher(self)
        register_builtins(self)
        adopt_app(self, set_as_current=set_as_current)
        self.plugins.lifecycle.app = self
        self.plugins.lifecycle.app_configured(self)

    def __repr__(self) -> str:
        return f"<Celeriac {self.main or '__main__'} broker={redact_url(self.config.broker)}>"

    # --- the current app ----------------------------------------------------------------

    def set_current(self) -> None:
        """Make this the current app of this thread: ``@shared_task`` tasks called here use it."""
        set_current_app(self)

    def set_default(self) -> None:
        """Make this the process's default app: current in every thread that set none."""
        set_default_app(self)

    # --- tasks ----------------------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self, *, name: str | None = None, bind: bool = False, **options: Any
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(  # type: ignore[misc]  # the overloads split the two decorator forms
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        bind: bool = False,
        **options: Any,
    ) -> Any:
        """Register a function as a task: ``@app.task`` or ``@app.task(name=..., queue=...)``.

        Options are those of :class:`TaskOptions`; ``[tasks."name"]`` in the config overrides them.
        """

        def register(function: Callable[..., Any]) -> Task[Any, Any]:
            task_name = name or self._task_name(function)
            if task_name in self.tasks and task_name not in self._from_shared:
                raise ValueError(
                    f"task {task_name!r} is registered twice: first {_where(self.tasks[task_name].fn)}, "
                    f"again {_where(function)}"
                )
            task: Task[Any, Any] = self.task_cls(
                self, function, name=task_name, bind=bind, options=self._task_options(task_name, options)
            )
            self.tasks[task_name] = task
            self._from_shared.discard(task_name)  # the app's own task replaces a shared one
            return task

        return register(fn) if fn is not None else register

    def _task_name(self, function: Callable[..., Any]) -> str:
        module = function.__module__
        if module == "__main__" and self.main:
            module = self.main
        return f"{module}.{function.__qualname__}"

    def _task_options(self, name: str, declared: Mapping[str, Any]) -> TaskOptions:
        return resolve_task_options(self.config, name, declared)

    def add_periodic_task(
        self,
        schedule: Schedule | Mapping[str, Any] | float | dt.timedelta,
        task: str | Task[Any, Any] | Signature,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> PeriodicTask:
        """Have beat send ``task`` on ``schedule``: ``app.add_periodic_task(30, ping, (1,))``.

        ``schedule`` is a schedule object (``celeriac_cron.crontab("0 3 * * *")``), a table as
        in TOML (``{"cron": "0 3 * * *"}``) or seconds; ``task`` a task, its name or a
        signature (``add.s(2, 3)``). ``options``: ``name`` (default: the task's name),
        ``queue``, ``priority``, ``expires``, ``missed``, ``timezone``. See docs/periodic-tasks.md.
        """

        return add_periodic_task(self, schedule, task, args, kwargs, **options)

    # --- connections ------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The broker transport, connected on first use and shared by threads."""
        if self._transport is None:
            with self._lock:
                if self._transport is None:
                    spec = self.plugins.transport(self.config.broker)
                    self._transport = spec.factory(self.config.broker, self.config)
        return self._transport

    @property
    def result_store(self) -> ResultStore:
        if self._result_store is None:
            with self._lock:
                if self._result_store is None:
                    url = self.result_store_url
                    if url is None and self.config.result_store == "":
                        raise ConfigError('results are turned off (result_store = ""); nothing to read')
                    if url is None:
                        raise ConfigError(
                            "no result store: set 'result_store' (the broker "
                            f"{redact_url(self.config.broker)!r} has no result store for its scheme)"
                        )
                    self._result_store = self.plugins.result_store(url).factory(url, self.config)
        return self._result_store

    @property
    def result_store_url(self) -> str | None:
        """The result store in use, or None when results are off."""
        if self.config.result_store == "":
            return None
        if self.config.result_store:
            return self.config.result_store
        if self.plugins.has_result_store(self.config.broker):
            return self.config.broker
        return None

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the broker confirmed every task this app published (RabbitMQ's confirm
        window); raises :class:`~celeriac.errors.PublishError` for a message it refused."""
        from celeriac._client.confirms import flush

        flush(self, timeout)

    def close(self) -> None:
        """Close the broker and result store connections, after the plugins released what
        they hold for this app (``celeriac_app_closing``: buffered events sent, threads stopped)."""
        self.plugins.lifecycle.app_closing(self)
        with self._lock:
            for resource in (self._transport, self._result_store):
                if resource is not None:
                    resource.close()
            self._transport = self._result_store = None
            self._replies = None

    # --- publishing -------------------------------------------------------------------

    def send_task(
        self,
        name: str,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: dt.datetime | None = None,
        expires: float | dt.datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        headers: Mapping[str, Any] | None = None,
        task_id: str | None = None,
        serializer: str | None = None,
        ignore_result: bool | None = None,
        parent_id: str | None = None,
        root_id: str | None = None,
        exchange: str | None = None,
        routing_key: str | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        shadow: str | None = None,
        argsrepr: str | None = None,
        kwargsrepr: str | None = None,
        link: Signature | Sequence[Signature] | None = None,
        link_error: Signature | Sequence[Signature] | None = None,
    ) -> ResultHandle:
        """Queue a task by name (it need not be registered here): Celery's ``send_task``.

        ``exchange`` and ``routing_key``: each the call's, else the task's; a call naming
        only a ``queue`` goes to that queue. Brokers without exchanges use the queue.
        ``time_limit``/``soft_time_limit``: this call's, over the task's. ``link``/``link_error``:
        signatures run with the result when it succeeds / with the id when it fails.
        """
        if link is not None or link_error is not None:
            return self._send_linked(
                name,
                args,
                kwargs,
                link=link,
                link_error=link_error,
                countdown=countdown,
                eta=eta,
                expires=expires,
                queue=queue,
                priority=priority,
                headers=headers,
                task_id=task_id,
                serializer=serializer,
                ignore_result=ignore_result,
                exchange=exchange,
                routing_key=routing_key,
                time_limit=time_limit,
                soft_time_limit=soft_time_limit,
                shadow=shadow,
                argsrepr=argsrepr,
                kwargsrepr=kwargsrepr,
            )
        task = self.tasks.get(name)
        if self.config.task_always_eager and task is not None:
            task.arguments.check(name, tuple(args or ()), dict(kwargs or {}))
            eager: ResultHandle = apply_eagerly(task, tuple(args or ()), dict(kwargs or {}))
            return eager
        publisher = self.publisher  # not through build_message and publish: this is the hot path
        message = publisher.build(
            name,
            args,
            kwargs,
            task_id=task_id,
            countdown=countdown,
            eta=eta,
            expires=expires,
            priority=priority,
            headers=headers,
            ignore_result=ignore_result,
            parent_id=parent_id,
            root_id=root_id,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            shadow=shadow,
            argsrepr=argsrepr,
            kwargsrepr=kwargsrepr,
        )
        route: str | TaskRoute | None = queue
        if exchange is not None or routing_key is not None:
            route = TaskRoute(queue=queue, exchange=exchange, routing_key=routing_key)
        publisher.publish([Outgoing(message=message, route=route, serializer=serializer)])
        return AsyncResult(message.id, self)

    def _send_linked(
        self,
        name: str,
        args: tuple[Any, ...] | list[Any] | None,
        kwargs: Mapping[str, Any] | None,
        *,
        link: Signature | Sequence[Signature] | None,
        link_error: Signature | Sequence[Signature] | None,
        **options: Any,
    ) -> ResultHandle:
        """A call with callbacks is a signature with ``link``/``link_error``, sent as a workflow."""
        from celeriac._client.canvas import Signature
        from celeriac._client.canvas import as_list

        given = {key: value for key, value in options.items() if value is not None}
        sig = Signature(task=name, args=tuple(args or ()), kwargs=dict(kwargs or {}), options=given, app=self)
        for callback in as_list(link):
            sig = sig.link(callback)
        for errback in as_list(link_error):
            sig = sig.link_error(errback)
        handle: ResultHandle = sig.apply_async()
        return handle

    def build_message(
        self,
        name: str,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **call: Any,
    ) -> TaskMessage:
        """The protocol 2 message for a call (see :meth:`Publisher.build`), not yet sent."""
        return self.publisher.build(name, args, kwargs, **call)

    def publish(self, outgoing: Iterable[Outgoing]) -> None:
        """Publish built messages: the one path every send takes (see :class:`Publisher`)."""
        self.publisher.publish(outgoing)

    def send_workflow(self, node: Canvas, **options: Any) -> Any:
        """Send a workflow (a signature, chain, group or chord); returns its result handle."""
        return send(self, node, **options)

    def apply_workflow(self, node: Canvas) -> Any:
        """Run a frozen workflow here and now, as eager mode does."""
        return apply_canvas(self, node)

    def reply_queue(self) -> str | None:
        """The queue results come back to, when the result store works that way (``rpc://``)."""
        replies = self._replies
        if replies is None:  # decided once: this runs for every message sent
            url = self.result_store_url
            store = self.result_store if url is not None and self.plugins.has_result_store(url) else None
            replies = self._replies = store.reply_queue if isinstance(store, ReplyQueue) else _no_reply_queue
        return replies()

    def options_for(self, name: str) -> TaskOptions:
        """A task's options; for a task not registered here (sent by name), built once from
        the configuration and kept, since the configuration never changes."""
        task = self.tasks.get(name)
        if task is not None:
            return task.options
        options = self._unregistered_options.get(name)
        if options is None:
            options = self._unregistered_options[name] = self._task_options(name, {})
        return options

    def require_chord_support(self) -> None:
        """Chords need a result store that counts finished parts atomically."""
        url = self.result_store_url
        if url is None or not isinstance(self.result_store, ChordCounter):
            raise ConfigError(
                f"chords need a result store with atomic counters (SQLite, Redis); "
                f"the result store {url or 'is turned off'!s} has none"
            )

    def require_chain_support(self) -> None:
        """Chains need a result store every process reads: with results sent back as messages
        (``rpc://``) the steps after the first are sent by a worker, so their results would go
        to that worker's reply queue and the caller's handle would stay PENDING for ever."""
        if self.reply_queue() is not None:
            raise ConfigError(
                f"chains need a result store that keeps results (SQLite, Redis, ...); with "
                f"{self.result_store_url} results go back only to the client that sent each task, "
                "and a chain's later steps are sent by a worker, so their results would never "
                "reach this client"
            )

    @property
    def control(self) -> Control:
        """Remote control of running workers: ``app.control.revoke(task_id)``."""
        return Control(self)

    def AsyncResult(self, task_id: str, parent: AsyncResult | GroupResult | None = None) -> AsyncResult:  # noqa: N802 - Celery's spelling
        """A handle on a task's result by id."""
        return AsyncResult(task_id, self, parent=parent)

    def GroupResult(self, group_id: str) -> GroupResult:  # noqa: N802 - Celery's spelling
        """A saved group's results by group id."""
        return GroupResult.restore(group_id, self)

    # --- worker -----------------------------------------------------------------------

    def worker(self, **overrides: Any) -> Worker:
        """Build a :class:`~celeriac._worker.worker.Worker` for this app (``worker`` config overrides)."""
        from celeriac._worker.worker import Worker

        return Worker(self, **overrides)


def _no_reply_queue() -> None:
    """Results are read from the result store, not sent back: no ``reply_to``."""


def _where(function: Callable[..., Any]) -> str:
    """Where a function was defined, for an error about it: ``file:line`` when Python knows."""
    code = getattr(function, "__code__", None)
    if code is None:
        return repr(function)
    return f"{function.__qualname__} at {code.co_filename}:{code.co_firstlineno}"
