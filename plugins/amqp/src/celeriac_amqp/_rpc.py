"""``rpc://``: results sent as messages to the queue of the client that sent the task.

Celery's RPC backend, on the wire: a client names a queue of its own in the ``reply_to``
property of every task message; a worker publishes each state of the task to the default
exchange with that queue as routing key, ``correlation_id`` = the task id, the result meta
(``status``, ``result``, ``traceback``, ...) as body, transient. Nothing is stored in
RabbitMQ: the client keeps what arrives, in memory, for ``AsyncResult`` to read.

So a result is visible only in the process that sent the task, and only while it runs.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac import states as celeriac_states
from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac.plugin import Envelope
from celeriac.plugin import PendingWrite
from celeriac.plugin import ResultRecord
from celeriac.plugin import after_fork
from celeriac.plugin import redact_url
from celeriac_amqp import _wire as wire
from celeriac_amqp._config import AmqpConfig
from celeriac_amqp._frames import content
from celeriac_amqp._frames import publish_method
from celeriac_amqp._link import DONE
from celeriac_amqp._link import Link
from celeriac_amqp._link import consumer_tag

if TYPE_CHECKING:
    import pika

log = logging.getLogger("celeriac.amqp")

#: Header naming the state on celeriac's replies, so that non-JSON payloads need no decoding.
STATE = "x-celeriac-state"
REPLY_PREFIX = "celeriac.reply."
#: Results kept in memory at most: past this the oldest go, with a warning (results of tasks
#: nobody reads, or a worker's records for tasks whose clients asked for no reply).
MAX_KEPT = 100_000


def broker_url(url: str, config: Config) -> str:
    """The RabbitMQ URL results travel through: the broker's, as Celery's ``rpc://`` does."""
    parts = urllib.parse.urlsplit(url)
    if parts.netloc or parts.path.strip("/") or parts.query:
        raise ConfigError(
            f"result_store {url!r}: rpc:// takes no host, path or options; "
            "results travel through the broker's connection"
        )
    scheme = urllib.parse.urlsplit(config.broker).scheme
    if scheme not in wire.SCHEMES:
        raise ConfigError(
            f"result_store 'rpc://' sends results through RabbitMQ, so the broker must be "
            f"amqp:// or amqps://, not {scheme or redact_url(config.broker)!r}://"
        )
    return config.broker


@final
class AmqpRpcResultStore:
    """Results of the tasks this process sent, received on its reply queue.

    A worker's store only publishes (to the ``reply_to`` of each task's message); a client's
    store declares its reply queue at the first task it sends, consumes it on its own
    connection and keeps the latest state of each task, never replacing a SUCCESS.
    A record without ``reply_to`` (a revoke or a group saved by this process, or a task whose
    client asked for no reply) is kept here too, visible to this process only.
    """

    def __init__(self, url: str, config: Config) -> None:
        settings = config.section("amqp", AmqpConfig)
        parameters = wire.connection_parameters(broker_url(url, config), settings)
        self._settings = settings
        self._expires = config.result_expires
        self._link = Link(parameters, settings, self._on_connect, name="celeriac-amqp-rpc")
        self._fresh()
        after_fork(self, AmqpRpcResultStore._forget)

    def _forget(self) -> None:
        """In a process forked from this one: a connection and a reply queue of its own (the
        parent's replies keep going to the parent), and none of the parent's results."""
        self._link.forget()
        self._fresh()

    def _fresh(self) -> None:
        """The state of one process's results: its own reply queue, nothing received yet."""
        self._queue = f"{REPLY_PREFIX}{uuid.uuid4()}"
        self._consuming = False  # set at the first reply_queue(); read by any thread
        self._consumed = 0  # the connection generation consuming the queue (I/O thread)
        self._changed = threading.Lock()
        #: task id -> the condition its waiting threads sleep on (over ``_changed``) and how
        #: many they are: a reply wakes only the threads that wait for its task, where one
        #: condition for all woke every waiter for every reply (a client holding a result
        #: handle while thousands of replies came in spent a quarter of its reply thread's
        #: time there, and the waiter as much again waking up for nothing).
        self._waiters: dict[str, tuple[threading.Condition, int]] = {}
        #: task id -> (record, monotonic arrival); oldest first, for expiry.
        self._records: collections.OrderedDict[str, tuple[ResultRecord, float]] = collections.OrderedDict()

    # --- the client's side --------------------------------------------------------------

    def reply_queue(self) -> str:
        """Declare this process's reply queue and consume it (once); return its name."""
        if not self._consuming:
            self._link.call(self._consume)
        return self._queue

    def _on_connect(self, link: Link) -> None:
        if self._consuming:
            self._consume(link)  # again on a new connection

    def _consume(self, link: Link) -> None:
        if self._consumed == link.generation:
            return  # two threads sent their first task at once
        arguments = {"x-expires": int(self._settings.rpc_queue_expires * 1000)}
        # Durable (RabbitMQ 4 deprecates transient shared queues) but not auto-delete: it
        # must outlive a reconnect; x-expires removes it once its client is gone.
        link.consumer.queue_declare(self._queue, durable=True, arguments=arguments)
        link.consume(link.consumer, self._queue, self._on_reply, auto_ack=True, tag=consumer_tag())
        self._consumed = link.generation
        self._consuming = True

    def _on_reply(self, channel: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        record = _record(props, body)
        if record is not None:
            self._keep(record)

    def _keep(self, record: ResultRecord) -> None:
        now = time.monotonic()
        with self._changed:
            current = self._records.get(record.task_id)
            if current is None or current[0].state != celeriac_states.SUCCESS:
                self._records[record.task_id] = (record, now)
                self._records.move_to_end(record.task_id)
            self._expire(now)
            waiting = self._waiters.get(record.task_id)
            if waiting is not None:
                waiting[0].notify_all()

    def _expire(self, now: float) -> None:
        while self._records:
            task_id, (_, arrived) = next(iter(self._records.items()))
            if len(self._records) > MAX_KEPT:
                log.warning("rpc:// keeps %d results at most; dropped the oldest (%s)", MAX_KEPT, task_id)
            elif self._expires <= 0 or now - arrived < self._expires:
                break
            del self._records[task_id]

    def get(self, task_id: str) -> ResultRecord | None:
        with self._changed:
            found = self._records.get(task_id)
        return None if found is None else found[0]

    def get_many(self, task_ids: Sequence[str]) -> list[ResultRecord | None]:
        with self._changed:
            found = [self._records.get(task_id) for task_id in task_ids]
        return [None if one is None else one[0] for one in found]

    def wait(self, task_id: str, states: frozenset[str], timeout: float | None) -> ResultRecord | None:
        """Sleep until a reply puts the task in one of ``states`` (None after ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            found = self._records.get(task_id)
            if found is not None and found[0].state in states:
                return found[0]
            condition, count = self._waiters.get(task_id) or (threading.Condition(self._changed), 0)
            self._waiters[task_id] = (condition, count + 1)
            try:
                while True:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return None
                    condition.wait(remaining)
                    found = self._records.get(task_id)
                    if found is not None and found[0].state in states:
                        return found[0]
            finally:
                condition, count = self._waiters[task_id]
                if count > 1:
                    self._waiters[task_id] = (condition, count - 1)
                else:
                    del self._waiters[task_id]

    def forget(self, task_id: str) -> None:
        with self._changed:
            self._records.pop(task_id, None)

    # --- the worker's side --------------------------------------------------------------

    def store(self, record: ResultRecord) -> None:
        """Send the state to the client's reply queue, or keep it here; returns once the
        reply is handed to the socket."""
        self.store_deferred(record).wait()

    def store_deferred(self, record: ResultRecord) -> PendingWrite:
        """Write the reply to the socket now, from this thread, when nothing is queued before
        it on the connection; else hand it to the connection's I/O thread and return at once
        (the worker's pool threads do not wait on it; see :class:`~celeriac.plugin.DeferredStore`).
        Replies from one thread go out in the order they were handed over, waited-for ones
        (RETRY, progress) included."""
        if not record.reply_to:
            self._keep(record)
            return DONE
        envelope = Envelope(
            body=record.payload,
            content_type=record.content_type,
            content_encoding=record.content_encoding,
            headers={STATE: record.state},
            properties={"correlation_id": record.task_id},
        )
        message = content(envelope, 0, persistent=False)  # transient: Celery's result_persistent = False
        # Neither mandatory nor confirmed, as Celery sends replies: a client that is gone
        # drops its results, and the reply (transient anyway) is written to the socket, its
        # confirm not waited for. The worker waits for that write before the task's ack.
        method = publish_method("", record.reply_to, mandatory=False)
        written = self._link.write_now(method, message)  # nothing queued before it: from here
        if written is not None:
            return written
        return self._link.submit(lambda link: link.write(link.unconfirmed, method, message))

    def close(self) -> None:
        self._link.close()


def _record(props: pika.BasicProperties, body: bytes) -> ResultRecord | None:
    """A reply as a record; the state from our header, else from the JSON meta (Celery's)."""
    headers = props.headers or {}
    content_type = props.content_type or "application/json"
    state = headers.get(STATE)
    task_id = props.correlation_id
    if state is None or task_id is None:
        meta = _json_meta(content_type, body)
        if meta is None:
            log.error(
                "reply %s of content type %r carries no state this store can read; dropped "
                "(a Celery worker replying over rpc:// must use result_serializer = 'json')",
                task_id,
                content_type,
            )
            return None
        state = state or meta.get("status")
        task_id = task_id or meta.get("task_id")
    if not isinstance(state, str) or not isinstance(task_id, str):
        log.error("reply without a task id or state dropped: correlation_id=%r", props.correlation_id)
        return None
    return ResultRecord(
        task_id=task_id,
        state=state,
        payload=body,
        content_type=content_type,
        content_encoding=props.content_encoding or "utf-8",
    )


def _json_meta(content_type: str, body: bytes) -> dict[str, Any] | None:
    if content_type != "application/json":
        return None
    try:
        meta = json.loads(body)
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None
