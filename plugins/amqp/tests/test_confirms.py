"""The confirm window: what ``delay()`` promises once it returned, tested against real faults.

Connections are cut mid-stream by a loopback proxy while a loop publishes; RabbitMQ refuses
messages for real (``x-overflow = reject-publish`` on a full queue), which it answers with
``basic.nack``. Every task whose ``delay()`` returned must run (at least once), and every
refused message must be reported, never dropped in silence.
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pytest

from celeriac import Celeriac
from celeriac import PublishError
from celeriac.plugin import Envelope
from celeriac.testing import wait_for
from celeriac_amqp import _publisher
from celeriac_amqp import make_transport
from celeriac_amqp._frames import Sent
from celeriac_amqp._frames import content
from celeriac_amqp._frames import frame
from celeriac_amqp._frames import publish_method
from celeriac_amqp._properties import connect
from celeriac_amqp.testing import connection_parameters
from celeriac_amqp.testing import delete_queues

from .conftest import WorkerProcess
from .conftest import celeriac_worker
from .conftest import make_config
from .proxy import Proxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(amqp_url: str) -> Any:
    parts = urllib.parse.urlsplit(amqp_url)
    made = Proxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    yield made
    made.close()


def through_proxy(proxy: Proxy, amqp_url: str, queue_name: str) -> Celeriac:
    """A client app publishing through ``proxy``, reconnecting quickly after a cut."""
    return Celeriac(
        "proj",
        broker=proxy.through(amqp_url),
        result_store="",
        default_queue=queue_name,
        config=False,
        env={},
        amqp={"retry_backoff_base": 0.05, "retry_backoff_max": 0.5},
    )


def lost_of(returned: list[int], runs: Path) -> list[int]:
    """The tasks of ``returned`` (their numbers) that never ran, once all have or 90 s passed."""

    def counted() -> Counter[int]:
        return Counter(int(line) for line in runs.read_text().split()) if runs.exists() else Counter()

    wait_for(lambda: set(counted()) >= set(returned), timeout=90, what="every returned task to run")
    ran = counted()
    return [n for n in returned if n not in ran]


@pytest.mark.slow
def test_every_returned_delay_runs_across_connection_cuts(
    project: Path,
    amqp_url: str,
    queue_name: str,
    proxy: Proxy,
    start_process: Callable[..., WorkerProcess],
) -> None:
    runs = project / "runs.txt"
    start_process(celeriac_worker("-c", "4"))  # on RabbitMQ directly, not through the proxy
    app = through_proxy(proxy, amqp_url, queue_name)
    total, returned = 3000, []
    try:
        for n in range(total):
            app.send_task("proj.mark", (n, str(runs)))
            returned.append(n)  # delay() returned: from here on the task must run
            if n % 700 == 350:
                # Once the publishing connection is up again (the loop outruns a reconnect),
                # cut it with messages in flight.
                wait_for(lambda: proxy.connections >= 1, what="a connection through the proxy")
                proxy.cut()
        app.flush(timeout=60)
    finally:
        app.close()
    assert proxy.cuts == 4  # at 350, 1050, 1750 and 2450

    assert lost_of(returned, runs) == []
    assert len(returned) == total


@pytest.mark.slow
def test_every_lone_message_written_from_the_callers_thread_runs_across_connection_cuts(
    project: Path,
    amqp_url: str,
    queue_name: str,
    proxy: Proxy,
    start_process: Callable[..., WorkerProcess],
) -> None:
    """A message published with nothing else awaiting its confirm goes to the socket from the
    caller's thread (no I/O thread hand-over); the connection is cut right after such writes,
    before RabbitMQ can have confirmed them, and each one still runs."""
    runs = project / "runs.txt"
    start_process(celeriac_worker("-c", "4"))
    app = through_proxy(proxy, amqp_url, queue_name)
    publisher = app.transport._publisher  # type: ignore[attr-defined]
    written_now: list[bool] = []
    write_now = publisher._write_now

    def noted(mine: Any) -> bool:
        written = write_now(mine)
        written_now.append(written)
        return written

    publisher._write_now = noted
    total, returned = 200, []
    try:
        for n in range(total):
            app.send_task("proj.mark", (n, str(runs)))
            returned.append(n)
            if n % 40 == 20:
                wait_for(lambda: proxy.connections >= 1, what="a connection through the proxy")
                proxy.cut()  # the message just written is not confirmed yet
            app.flush(timeout=60)  # so that the next one is alone in the window
    finally:
        app.close()
    assert proxy.cuts == 5
    assert written_now.count(True) >= total // 2, "lone messages were written from the caller's thread"

    assert lost_of(returned, runs) == []


def test_a_lone_message_is_written_from_the_callers_thread_and_a_busy_window_queues(
    amqp_url: str, queue_name: str
) -> None:
    """The I/O thread writes nothing for a message alone in the window; while others await
    their confirms it writes them all, in order (a caller's write never overtakes them)."""
    transport: Any = make_transport(amqp_url, make_config())
    publisher = transport._publisher
    drains: list[int] = []
    drain = publisher._drain

    def counted() -> None:
        drains.append(1)
        drain()

    try:
        transport.publish(queue_name, [Envelope(body=b"[0]", content_type="application/json")])
        transport.flush(timeout=30)  # connected, and nothing awaits a confirm
        publisher._drain = counted
        transport.publish(queue_name, [Envelope(body=b"[1]", content_type="application/json")])
        assert drains == []  # written by this thread
        transport.flush(timeout=30)
        for n in range(2, 300):
            transport.publish(queue_name, [Envelope(body=f"[{n}]".encode(), content_type="application/json")])
        transport.flush(timeout=30)
        assert drains  # with messages awaiting confirms, the I/O thread wrote
    finally:
        transport.close()
    assert queued_bodies(amqp_url, queue_name, 300) == [f"[{n}]".encode() for n in range(300)]


@pytest.mark.parametrize("back_with", ["the sweep", "a confirm"])
def test_a_busy_publisher_queues_without_waking_and_the_io_thread_comes_back(
    amqp_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch, back_with: str
) -> None:
    """With eight or more written messages awaiting confirms, a caller queues its message
    without waking the I/O thread (no system call). The I/O thread comes back for it with
    its sweep even when no confirm arrives (RabbitMQ's confirms are held back here until the
    message is in the queue), or sooner with the next confirm (the sweep is then a minute
    away). The sweep is 5 s instead of 1 ms, for the test to see it armed."""
    monkeypatch.setattr(_publisher, "_SWEEP", 5.0 if back_with == "the sweep" else 60.0)
    transport: Any = make_transport(amqp_url, make_config())
    publisher = transport._publisher
    confirm = publisher._on_confirmed
    held: list[tuple[int, bool, bool]] = []
    holding = True

    def on_confirmed(tag: int, multiple: bool, ack: bool) -> None:
        if holding:
            held.append((tag, multiple, ack))
        else:
            confirm(tag, multiple, ack)

    def release() -> None:  # on the I/O thread
        nonlocal holding
        holding = False
        for one in held:
            confirm(*one)

    publisher._on_confirmed = on_confirmed  # before connecting: the channel registers it
    wakes: list[Any] = []
    try:
        for n in range(10):
            transport.publish(queue_name, [envelope(f"[{n}]".encode())])
        wait_for(lambda: len(publisher._tags) == 10, timeout=30, what="ten messages written")
        wake = publisher._loop.add_callback_threadsafe
        publisher._loop.add_callback_threadsafe = lambda callback: (wakes.append(callback), wake(callback))
        with publisher._cond:  # the sweep cannot run meanwhile
            assert publisher._sweeping  # armed as the ten were written
            transport.publish(queue_name, [envelope(b"[10]")])
        assert wakes == []  # queued for the I/O thread to come back for, not woken for
        if back_with == "a confirm":
            wake(release)
        connection = pika.BlockingConnection(connection_parameters(amqp_url))
        try:
            channel = connection.channel()
            wait_for(lambda: _messages_in(channel, queue_name) == 11, timeout=30, what="the 11th queued")
        finally:
            connection.close()
        if back_with == "the sweep":
            assert len(publisher._unconfirmed) == 11  # written without a confirm handled
            wait_for(lambda: any(tag >= 11 for tag, _, _ in held), timeout=30, what="the 11th's ack")
            wake(release)
        transport.flush(timeout=30)
    finally:
        transport.close()
    assert queued_bodies(amqp_url, queue_name, 11) == [f"[{n}]".encode() for n in range(11)]


def queued_bodies(amqp_url: str, queue_name: str, count: int) -> list[bytes]:
    """The bodies of the first ``count`` messages in the queue, in queue order."""
    connection = pika.BlockingConnection(connection_parameters(amqp_url))
    try:
        channel = connection.channel()
        bodies = []
        for _ in range(count):
            method, _, body = channel.basic_get(queue_name, auto_ack=True)
            assert method is not None
            bodies.append(body)
        return bodies
    finally:
        connection.close()


def envelope(body: bytes) -> Envelope:
    return Envelope(body=body, content_type="application/json")


def declare_then_delete(transport: Any, amqp_url: str, queue_name: str) -> None:
    """The transport publishes to the queue (declaring it), then the queue is deleted behind
    its back: its next message there is returned by RabbitMQ."""
    transport.publish(queue_name, [envelope(b"[0]")])
    transport.flush(timeout=30)
    assert queued_bodies(amqp_url, queue_name, 1) == [b"[0]"]
    connection = pika.BlockingConnection(connection_parameters(amqp_url))
    connection.channel().queue_delete(queue_name)
    connection.close()


def test_a_message_returned_because_its_queue_was_deleted_is_published_again(
    amqp_url: str, queue_name: str
) -> None:
    """RabbitMQ returns a mandatory message no queue takes, then acks it: read in that order
    (the return by pika, the ack straight from the buffer), the queue is declared again and
    the message published again, never forgotten as confirmed."""
    transport: Any = make_transport(amqp_url, make_config())
    try:
        declare_then_delete(transport, amqp_url, queue_name)
        for n in (1, 2, 3):
            transport.publish(queue_name, [envelope(f"[{n}]".encode())])
        transport.flush(timeout=30)
        assert transport._publisher._connection._confirms  # confirms were read directly
    finally:
        transport.close()
    assert sorted(queued_bodies(amqp_url, queue_name, 3)) == [b"[1]", b"[2]", b"[3]"]


def test_a_returned_message_whose_queue_cannot_be_declared_at_once_is_not_dropped(
    amqp_url: str, queue_name: str
) -> None:
    """The declaration of a returned message's queue fails (the transport's other
    connection is down, say): the message is still published again once it can be, not
    left out of what the next connection sends."""
    transport: Any = make_transport(amqp_url, make_config())
    publisher = transport._publisher
    declare = publisher._declare
    failed: list[str] = []

    def once_failing(queue: str) -> None:
        if not failed:
            failed.append(queue)
            raise ConnectionError("test: the other connection is down")
        declare(queue)

    try:
        declare_then_delete(transport, amqp_url, queue_name)
        publisher._declare = once_failing
        transport.publish(queue_name, [envelope(b"[1]")])
        transport.flush(timeout=30)
        assert failed == [queue_name]
    finally:
        transport.close()
    assert queued_bodies(amqp_url, queue_name, 1) == [b"[1]"]


def test_refused_messages_are_reported_not_dropped(amqp_url: str, queue_name: str) -> None:
    """A full queue with reject-publish nacks: flush(), the result handle and the next call tell."""
    connection = pika.BlockingConnection(connection_parameters(amqp_url))
    arguments = {"x-max-length": 1, "x-overflow": "reject-publish"}
    connection.channel().queue_declare(queue_name, durable=True, arguments=arguments)
    connection.close()
    app = Celeriac("proj", broker=amqp_url, result_store="", default_queue=queue_name, config=False, env={})
    try:
        kept, refused = app.send_task("proj.add", (1, 1)), app.send_task("proj.add", (2, 2))
        with pytest.raises(PublishError, match=refused.id):
            app.flush(timeout=30)
        with pytest.raises(PublishError, match=refused.id):
            refused.get(timeout=1)
        late = app.send_task("proj.add", (3, 3))
        transport: Any = app.transport
        wait_for(lambda: transport.publish_error(late.id) is not None, what="the third message refused")
        with pytest.raises(PublishError, match=late.id):
            app.send_task("proj.add", (4, 4))  # the next call reports what failed since
        assert transport.publish_error(kept.id) is None
        assert transport.queue_length(queue_name) == 1
    finally:
        app.close()


def test_strict_confirms_return_once_rabbitmq_has_the_message(amqp_url: str) -> None:
    queue = f"celeriac-test-{secrets.token_hex(6)}"
    transport = make_transport(amqp_url, make_config(confirms="strict"))
    connection = pika.BlockingConnection(connection_parameters(amqp_url))
    try:
        for count in (1, 2, 3):
            transport.publish(queue, [Envelope(body=b"{}", content_type="application/json")])
            # Asked on another connection, without flush(): the message is there already.
            assert _messages_in(connection.channel(), queue) == count
    finally:
        connection.close()
        transport.close()
        delete_queues(amqp_url, [queue, f"{queue}.dead"])


def test_close_waits_for_outstanding_confirms(amqp_url: str, queue_name: str) -> None:
    transport = make_transport(amqp_url, make_config())
    transport.publish(queue_name, [Envelope(body=b"{}", content_type="application/json")] * 500)
    transport.close()  # returns once RabbitMQ confirmed all 500
    connection = pika.BlockingConnection(connection_parameters(amqp_url))
    try:
        assert _messages_in(connection.channel(), queue_name) == 500
    finally:
        connection.close()


def _messages_in(channel: Any, queue: str) -> int:
    """How many messages RabbitMQ holds in ``queue`` (which must exist), asked on ``channel``."""
    count: int = channel.queue_declare(queue, passive=True).method.message_count
    return count


def _publish_frames(channel: int, queue: str, body: bytes) -> tuple[bytes, int]:
    """One persistent message to ``queue`` through the default exchange, framed."""
    envelope = Envelope(body=body, content_type="text/plain", content_encoding="utf-8", headers={})
    out: list[bytes] = []
    count = frame(out, channel, publish_method("", queue, mandatory=False), content(envelope, 0), 131064)
    return b"".join(out), count


def test_no_frame_is_written_from_another_thread_once_its_channel_is_closing(
    amqp_url: str, queue_name: str
) -> None:
    # RabbitMQ closes a channel (here: a publish to an exchange that does not exist); pika
    # answers Channel.CloseOk, and only then marks the channel closed. A frame written from
    # another thread in between would reach a channel RabbitMQ has closed: it answers with
    # 504 CHANNEL_ERROR and closes the whole connection, with every write on it. The write
    # is made in that window, from pika's own step between the two.
    connection = connect(connection_parameters(amqp_url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue_name, durable=True)
        number = channel.channel_number
        in_window: list[Sent] = []
        pikas = channel._impl
        close = pikas._transition_to_closed

        def write_then_close() -> None:
            assert pikas.is_open  # CloseOk is written, and pika still reads the channel as open
            data, count = _publish_frames(number, queue_name, b"in the window")
            in_window.append(connection._impl.send_frames_now(data, count, number))
            close()

        pikas._transition_to_closed = write_then_close
        channel.basic_publish(f"no-such-exchange-{secrets.token_hex(4)}", "key", b"refused")

        def closed() -> bool:
            connection.process_data_events(time_limit=0.05)
            return not channel.is_open

        wait_for(closed, timeout=10, what="RabbitMQ to close the channel")
        assert in_window == [Sent.NOTHING]
        other = connection.channel()  # the connection outlived the channel
        assert _messages_in(other, queue_name) == 0
    finally:
        if connection.is_open:
            connection.close()
        delete_queues(amqp_url, [queue_name])


def test_a_channel_number_used_again_takes_writes_from_another_thread_again(
    amqp_url: str, queue_name: str
) -> None:
    connection = connect(connection_parameters(amqp_url))
    try:
        first = connection.channel()
        number = first.channel_number
        first.close()
        second = connection.channel()
        assert second.channel_number == number  # pika takes the lowest free number
        second.queue_declare(queue_name, durable=True)
        data, count = _publish_frames(number, queue_name, b"again")
        assert connection._impl.send_frames_now(data, count, number) is Sent.ALL
        wait_for(
            lambda: _messages_in(second, queue_name) == 1,
            timeout=10,
            what="the message written on the channel opened again",
        )
    finally:
        connection.close()
        delete_queues(amqp_url, [queue_name])
