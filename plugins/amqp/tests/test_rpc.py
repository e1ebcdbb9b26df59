"""``rpc://`` against a real RabbitMQ: replies to the client's queue, a worker process, Celery."""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import states
from celeriac.plugin import Config
from celeriac.plugin import DeferredStore
from celeriac.plugin import ReplyQueue
from celeriac.plugin import ResultRecord
from celeriac.plugin import ResultStore
from celeriac.testing import wait_for
from celeriac.testing import worker_thread
from celeriac_amqp import AmqpConfig
from celeriac_amqp import make_result_store
from celeriac_amqp._link import Link
from celeriac_amqp._link import WriteLostError
from celeriac_amqp.testing import connection_parameters
from celeriac_amqp.testing import delete_queues
from celeriac_amqp.testing import private_vhost

from .conftest import TASKS
from .conftest import WorkerProcess
from .conftest import celeriac_worker
from .proxy import Proxy

pytestmark = pytest.mark.integration


def rpc_config(amqp_url: str) -> Config:
    return Config(broker=amqp_url, result_store="rpc://", sections={"amqp": AmqpConfig()})


def record(task_id: str, state: str, reply_to: str | None, result: Any = None) -> ResultRecord:
    payload = f'{{"status": "{state}", "result": {result or "null"}, "task_id": "{task_id}"}}'.encode()
    return ResultRecord(
        task_id=task_id, state=state, payload=payload, content_type="application/json", reply_to=reply_to
    )


@pytest.fixture
def stores(amqp_url: str) -> Iterator[tuple[Any, Any]]:
    """A client's store and a worker's, each on its own connection."""
    client = make_result_store("rpc://", rpc_config(amqp_url))
    worker = make_result_store("rpc://", rpc_config(amqp_url))
    yield client, worker
    client.close()
    worker.close()


def test_is_a_result_store_with_a_reply_queue(stores: tuple[Any, Any]) -> None:
    client, _ = stores
    assert isinstance(client, ResultStore)
    assert isinstance(client, ReplyQueue)


def test_worker_replies_reach_the_client_that_asked(stores: tuple[Any, Any]) -> None:
    client, worker = stores
    queue = client.reply_queue()
    assert client.reply_queue() == queue  # declared once
    assert client.get("t1") is None
    worker.store(record("t1", states.STARTED, queue))
    worker.store(record("t1", states.SUCCESS, queue, 5))
    worker.store(record("t1", states.FAILURE, queue))  # a late duplicate run cannot undo SUCCESS
    worker.store(record("t2", states.FAILURE, queue))
    done = client.wait("t1", states.READY_STATES, timeout=5)
    assert done is not None and done.state == states.SUCCESS and b'"result": 5' in done.payload
    # Replies travel in order on one queue: t2's reply came after t1's late FAILURE, so that
    # one has been received (and refused) by now.
    assert client.wait("t2", states.READY_STATES, timeout=5) is not None
    found = client.get_many(["t1", "t2", "t3"])
    assert [r.state if r else None for r in found] == ["SUCCESS", "FAILURE", None]
    assert client.wait("t3", states.READY_STATES, timeout=0.2) is None
    client.forget("t1")
    assert client.get("t1") is None
    assert worker.get("t1") is None  # the worker keeps nothing it sent


def test_each_waiter_sleeps_on_its_own_task_and_is_woken_by_its_reply(stores: tuple[Any, Any]) -> None:
    # A reply wakes the threads waiting for its task, not every waiter: two threads wait for
    # w-0, one each for w-1..w-4, and w-4's reply never comes.
    client, worker = stores
    queue = client.reply_queue()
    got: dict[str, list[str | None]] = {}
    lock = threading.Lock()

    def wait(task_id: str, timeout: float) -> None:
        done = client.wait(task_id, states.READY_STATES, timeout=timeout)
        with lock:
            got.setdefault(task_id, []).append(None if done is None else done.state)

    waiters = [threading.Thread(target=wait, args=("w-0", 20))]
    waiters += [threading.Thread(target=wait, args=(f"w-{n}", 20 if n < 4 else 1.0)) for n in range(5)]
    for thread in waiters:
        thread.start()
    wait_for(lambda: len(client._waiters) == 5, timeout=10, what="five tasks waited for")
    assert client._waiters["w-0"][1] == 2
    for n in reversed(range(4)):
        worker.store(record(f"w-{n}", states.SUCCESS, queue))
    for thread in waiters:
        thread.join(30)
    assert got == {"w-0": ["SUCCESS", "SUCCESS"], **{f"w-{n}": ["SUCCESS"] for n in (1, 2, 3)}, "w-4": [None]}
    assert client._waiters == {}  # nothing left behind by those woken or timed out


def test_replies_handed_over_while_the_connection_is_stuck_time_out_together(amqp_url: str) -> None:
    """Each handed-over reply's time limit runs from the hand-over, so a worker waiting for
    many of them gives up after one ``operation_timeout``, not one per reply; a reply given up
    on before its write began is never sent later."""
    config = Config(
        broker=amqp_url, result_store="rpc://", sections={"amqp": AmqpConfig(operation_timeout=2.0)}
    )
    client = make_result_store("rpc://", rpc_config(amqp_url))
    worker = make_result_store("rpc://", config)
    try:
        queue = client.reply_queue()
        gate = threading.Event()
        worker.store(record("t0", states.SUCCESS, queue, 0))  # connected
        worker._link.post(lambda link: gate.wait(20))  # the I/O thread is stuck
        pending = [worker.store_deferred(record(f"t{n}", states.SUCCESS, queue, n)) for n in (1, 2, 3)]
        started = time.monotonic()
        assert not any(one.finished() for one in pending)
        # Asked with time to spare, finished() turns True when the time limit passes.
        assert pending[0].finished(timeout=5)
        for one in pending:
            with pytest.raises(TimeoutError, match="did not answer within 2 s"):
                one.wait()
        assert time.monotonic() - started < 4.5  # one after another would take 6 s at least
        gate.set()
        worker.store(record("t4", states.SUCCESS, queue, 4))
        assert client.wait("t4", states.READY_STATES, timeout=10) is not None
        assert client.get_many(["t1", "t2", "t3"]) == [None, None, None]
    finally:
        client.close()
        worker.close()


class HeldReplies:
    """Replaces ``Link.write`` for replies (the unconfirmed channel), and sends every reply
    through it rather than from the caller's thread: each waits for ``gate``
    (``held`` says one is waiting), ``fail`` makes the next one raise; ``log`` notes each
    write and each acknowledgement, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = threading.Event()
        self.held = threading.Event()
        self.fail = 0
        self.log: list[str] = []
        write = Link.write

        def held(link: Link, channel: Any, method: bytes, message: Any) -> None:
            if channel is not link.unconfirmed:  # a task message, not a reply
                write(link, channel, method, message)
                return
            self.held.set()
            self.gate.wait(20)
            if self.fail:
                self.fail -= 1
                self.log.append("write failed")
                raise RuntimeError("test: the reply could not be written")
            write(link, channel, method, message)
            self.log.append("written")

        monkeypatch.setattr(Link, "write", held)
        # Every reply through the I/O thread: one written at once from the pool thread
        # (Link.write_now) would not be held.
        monkeypatch.setattr(Link, "write_now", lambda link, method, message: None)

    def watch_acks(self, app: Celeriac) -> None:
        ack = app.transport.ack

        def logged(deliveries: Any) -> None:
            self.log.extend("ack" for _ in deliveries)
            ack(deliveries)

        app.transport.ack = logged  # type: ignore[method-assign]


def rpc_app(url: str, queue: str, name: str) -> Celeriac:
    return Celeriac(
        name,
        broker=url,
        result_store="rpc://",
        default_queue=queue,
        env={"CELERIAC_PLUGINS__ENABLE": '["amqp", "json", "threads"]'},
        config=False,
    )


@pytest.fixture
def replies(monkeypatch: pytest.MonkeyPatch) -> HeldReplies:
    return HeldReplies(monkeypatch)


@pytest.fixture
def adding(
    amqp_url: str, queue_name: str, replies: HeldReplies
) -> Iterator[tuple[Celeriac, Celeriac, list[int]]]:
    """A worker's app with ``t.add`` (which notes its first argument in the list), its
    acknowledgements logged in ``replies``, and a client's app."""
    worker_app, client = rpc_app(amqp_url, queue_name, "w"), rpc_app(amqp_url, queue_name, "c")
    ran: list[int] = []

    @worker_app.task(name="t.add")
    def add(x: int, y: int) -> int:
        ran.append(x)
        return x + y

    replies.watch_acks(worker_app)
    yield worker_app, client, ran
    client.close()
    worker_app.close()


def test_a_worker_acknowledges_a_task_only_once_its_reply_is_written(
    adding: tuple[Celeriac, Celeriac, list[int]], replies: HeldReplies, queue_name: str
) -> None:
    """The pool thread hands the reply over and goes on (store_deferred); the settler waits
    for the write before the ack."""
    worker_app, client, ran = adding
    assert isinstance(worker_app.result_store, DeferredStore)
    with worker_thread(worker_app, concurrency=1):
        first = client.send_task("t.add", (1, 1))
        wait_for(replies.held.is_set, 20, "the first reply's write is held")
        # The one pool thread is free while that write waits: the next task runs.
        second = client.send_task("t.add", (2, 2))
        wait_for(lambda: ran == [1, 2], 20, "the second task ran")
        assert "ack" not in replies.log  # neither message is let go of yet
        replies.gate.set()
        assert (first.get(timeout=20), second.get(timeout=20)) == (2, 4)
        wait_for(lambda: replies.log.count("ack") == 2, 20, "both acknowledged")
    # Never more messages acknowledged than replies written, at any point:
    assert all(
        replies.log[:n].count("ack") <= replies.log[:n].count("written") for n in range(len(replies.log) + 1)
    ), replies.log
    assert client.transport.queue_length(queue_name) == 0


def test_a_reply_that_could_not_be_written_gives_the_task_back_to_run_again(
    adding: tuple[Celeriac, Celeriac, list[int]], replies: HeldReplies
) -> None:
    worker_app, client, ran = adding
    replies.gate.set()
    replies.fail = 1
    with worker_thread(worker_app, concurrency=1):
        assert client.send_task("t.add", (3, 4)).get(timeout=30) == 7
        wait_for(lambda: "ack" in replies.log, 20, "acknowledged")
    assert ran == [3, 3]  # the first run's reply was lost, so its message came back
    assert replies.log == ["write failed", "written", "ack"]


def test_a_reply_with_nothing_queued_before_it_is_written_from_the_callers_thread(
    stores: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hand-over to the I/O thread (whose way is ``Link.write``): the pending write is
    over when ``store_deferred`` returns, and the reply arrives."""
    client, worker = stores
    queue = client.reply_queue()
    worker.store(record("t0", states.SUCCESS, queue, 0))  # connected, the reply channel open
    through_io: list[bytes] = []
    write = Link.write

    def noted(link: Link, channel: Any, method: bytes, message: Any) -> None:
        through_io.append(method)
        write(link, channel, method, message)

    monkeypatch.setattr(Link, "write", noted)
    pending = worker.store_deferred(record("t1", states.SUCCESS, queue, 1))
    assert pending.finished()
    done = client.wait("t1", states.READY_STATES, timeout=10)
    assert done is not None and b'"result": 1' in done.payload
    assert through_io == []


def test_a_reply_never_overtakes_one_handed_to_the_io_thread(stores: tuple[Any, Any]) -> None:
    """While a call is queued or running on the connection, replies queue behind it, so a
    task's progress reply cannot come after its final one."""
    client, worker = stores
    queue = client.reply_queue()
    worker.store(record("t0", states.SUCCESS, queue, 0))
    gate = threading.Event()
    worker._link.post(lambda link: gate.wait(20))  # the I/O thread is busy
    progress = worker.store_deferred(record("t1", "PROGRESS", queue, 1))
    final = worker.store_deferred(record("t1", states.FAILURE, queue, 2))
    assert not progress.finished() and not final.finished()  # both queued, neither written
    gate.set()
    progress.wait()
    final.wait()
    done = client.wait("t1", states.READY_STATES, timeout=10)
    assert done is not None and done.state == states.FAILURE  # the last one to arrive


def test_a_reply_larger_than_the_socket_takes_at_once_arrives_whole(
    stores: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply written from the caller's thread that the socket takes only part of: the I/O
    thread sends the rest, before anything written after it."""
    client, worker = stores
    queue = client.reply_queue()
    worker.store(record("t0", states.SUCCESS, queue, 0))
    impl = worker._link.connection._impl
    impl._transport._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    tails: list[int] = []  # scheduled only when the socket took part of a write
    send_tail = type(impl)._send_tail

    def noted(connection: Any) -> None:
        tails.append(1)
        send_tail(connection)

    monkeypatch.setattr(type(impl), "_send_tail", noted)
    big = '"' + "x" * 4_000_000 + '"'
    worker.store_deferred(record("t1", states.SUCCESS, queue, big)).wait()  # the rest sent too
    worker.store(record("t2", states.SUCCESS, queue, 2))
    done = client.wait("t1", states.READY_STATES, timeout=30)
    assert done is not None and big.encode() in done.payload
    assert client.wait("t2", states.READY_STATES, timeout=30) is not None
    assert tails  # the socket took part of it; the I/O thread sent the rest


def test_a_reply_cut_off_before_its_rest_was_written_counts_as_not_written(amqp_url: str) -> None:
    """The socket takes part of a large reply; the network stalls before the rest goes out,
    then the connection is cut: the write fails (so the worker gives the task's message back
    and the task runs again) rather than count a reply that never arrived as written."""
    parts = urllib.parse.urlsplit(amqp_url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    client = make_result_store("rpc://", rpc_config(amqp_url))
    worker = make_result_store("rpc://", rpc_config(proxy.through(amqp_url)))
    try:
        queue = client.reply_queue()
        worker.store(record("t0", states.SUCCESS, queue, 0))  # connected, through the proxy
        proxy.pause()
        big = '"' + "x" * 8_000_000 + '"'  # more than the sockets between hold
        pending = worker.store_deferred(record("t1", states.SUCCESS, queue, big))
        assert not pending.finished(timeout=0.5)  # the rest cannot go out
        proxy.cut()
        proxy.resume()  # the worker's store connects again
        with pytest.raises(WriteLostError, match="before the rest of the message was written"):
            pending.wait()
        worker.store(record("t2", states.SUCCESS, queue, 2))  # the store goes on
        assert client.wait("t2", states.READY_STATES, timeout=30) is not None
        assert client.get("t1") is None
    finally:
        proxy.close()
        client.close()
        worker.close()


def test_the_rest_of_a_write_left_for_a_connection_gone_meanwhile_is_dropped(amqp_url: str) -> None:
    """The I/O thread's callback sending the rest of a write can run after pika let go of the
    lost connection's transport: it drops the rest (the message counts as not written, see
    above) instead of failing the I/O thread."""
    worker = make_result_store("rpc://", rpc_config(amqp_url))
    worker.store(record("t0", states.SUCCESS, "celeriac.reply.nobody-listens", 0))  # connected
    impl = worker._link.connection._impl
    worker.close()
    assert impl._transport is None
    impl._tail = b"the rest"
    impl._send_tail()
    assert impl._tail == b""


def test_records_without_a_reply_queue_stay_in_this_process(stores: tuple[Any, Any]) -> None:
    client, worker = stores
    client.store(record("g1", states.SUCCESS, None, "[1, 2]"))  # a group saved here
    assert client.get("g1") is not None and worker.get("g1") is None


def test_reply_to_a_client_that_has_gone_is_dropped(stores: tuple[Any, Any]) -> None:
    """Storing for a client whose queue is gone raises nothing, and the worker's store goes on
    delivering to clients that are there (the unroutable reply did not break its channel)."""
    client, worker = stores
    worker.store(record("t1", states.SUCCESS, "celeriac.reply.nobody-listens"))
    queue = client.reply_queue()
    worker.store(record("t2", states.SUCCESS, queue, 2))
    done = client.wait("t2", states.READY_STATES, timeout=5)
    assert done is not None and done.state == states.SUCCESS
    assert client.get("t1") is None


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl (a local RabbitMQ)")
def test_reply_queue_outlives_a_dropped_connection(amqp_url: str) -> None:
    # A vhost of this test's own: the connections in it are this client's and worker's alone.
    with private_vhost(amqp_url) as url:
        client = make_result_store("rpc://", rpc_config(url))
        worker = make_result_store("rpc://", rpc_config(url))
        try:
            reply_after_the_connections_closed(client, worker, connection_parameters(url).virtual_host)
        finally:
            client.close()
            worker.close()


def reply_after_the_connections_closed(client: Any, worker: Any, vhost: str) -> None:
    queue = client.reply_queue()
    before = connections(vhost)
    assert before, "the client and the worker are connected"
    subprocess.run(
        ["rabbitmqctl", "close_all_connections", "-p", vhost, "test: connection dropped"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    # RabbitMQ closes them asynchronously: the reply below must travel on new connections.
    wait_for(lambda: not connections(vhost) & before, 20, "the old connections closed")
    worker.store(record("t9", states.SUCCESS, queue, 9))  # sent while the client reconnects, or after
    done = client.wait("t9", states.READY_STATES, timeout=20)
    assert done is not None and done.state == states.SUCCESS
    assert client.reply_queue() == queue


def connections(vhost: str) -> set[str]:
    """The RabbitMQ process ids of the vhost's client connections, from rabbitmqctl (which
    lists every vhost's: the vhost column picks this test's)."""
    listed = subprocess.run(
        ["rabbitmqctl", "list_connections", "-q", "--no-table-headers", "vhost", "pid"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    rows = (line.split("\t") for line in listed.stdout.splitlines())
    return {row[1].strip() for row in rows if len(row) == 2 and row[0] == vhost}


def test_configuration_errors_name_the_cause(amqp_url: str) -> None:
    redis = Config(broker="redis://127.0.0.1:6379/0", sections={"amqp": AmqpConfig()})
    with pytest.raises(ConfigError, match="broker must be amqp:// or amqps://"):
        make_result_store("rpc://", redis)
    with pytest.raises(ConfigError, match="takes no host"):
        make_result_store("rpc://elsewhere:5672/", rpc_config(amqp_url))


# --- through real worker processes --------------------------------------------------------


@pytest.fixture
def result_prefix() -> str:
    return "unused:"  # no Redis here: results travel over RabbitMQ


PROGRESS_TASK = """

@app.task(bind=True)
def progress(self, marker):
    self.update_state(state="PROGRESS", meta={"done": 50})
    while not os.path.exists(marker):
        time.sleep(0.02)
    return "finished"
"""


@pytest.fixture
def project(tmp_path: Path, amqp_url: str, queue_name: str) -> Path:
    (tmp_path / "proj.py").write_text(textwrap.dedent(TASKS) + PROGRESS_TASK)
    (tmp_path / "celeriac.toml").write_text(
        f'broker = "{amqp_url}"\nresult_store = "rpc://"\ndefault_queue = "{queue_name}"\n'
        '[plugins]\nenable = ["amqp", "json", "threads", "prefork"]\n'
        "[worker]\npoll_timeout = 0.2\n"
    )
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_worker_process_replies_to_the_client(
    client: Celeriac, project: Path, start_process: Callable[..., WorkerProcess], pool: str
) -> None:
    """With ``prefork`` each child replies on its own connection, STARTED, progress and
    final states alike (``rpc://`` records are not carried to the worker: celeriac_prefork._writes)."""
    worker = start_process(celeriac_worker("-P", pool, "-c", "4"))
    results = [client.send_task("proj.add", (n, n)) for n in range(20)]
    assert [r.get(timeout=20) for r in results] == [2 * n for n in range(20)]
    assert results[3].state == states.SUCCESS  # read again: kept by the client
    sent = time.monotonic()
    assert client.send_task("proj.add", (1, 1), countdown=1).get(timeout=20) == 2
    assert time.monotonic() - sent >= 1.0
    failed = client.send_task("proj.fail")
    with pytest.raises(ValueError, match="broken on purpose"):
        failed.get(timeout=20)
    assert "ValueError: broken on purpose" in (failed.traceback or "")
    marker = project / "go"
    running = client.send_task("proj.progress", (str(marker),))
    progress = client.result_store.wait(running.id, frozenset({"PROGRESS"}), 20)
    assert progress is not None and running.state == "PROGRESS" and running.info == {"done": 50}
    marker.touch()
    assert running.get(timeout=20) == "finished"
    expired = client.send_task("proj.add", (1, 1), expires=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    revoked = client.result_store.wait(expired.id, states.READY_STATES, 20)
    assert revoked is not None and revoked.state == states.REVOKED  # sent by the consumer, not run
    from celeriac import chord
    from celeriac import group
    from celeriac import signature

    adds = [signature("proj.add", (n, 1), app=client) for n in range(5)]
    assert group(adds).apply_async().get(timeout=20) == [1, 2, 3, 4, 5]
    with pytest.raises(ConfigError, match="chords need a result store with atomic counters"):
        chord(adds, signature("proj.add", (1,), app=client)).apply_async()
    from celeriac import chain

    sent_before = client.transport.queue_length("celery")
    with pytest.raises(ConfigError, match="chains need a result store that keeps results"):
        chain(
            signature("proj.add", (1, 1), app=client), signature("proj.add", (2,), app=client)
        ).apply_async()
    with pytest.raises(ConfigError, match="rpc://"):
        (signature("proj.add", (1, 1), app=client) | signature("proj.add", (2,), app=client)).apply_async()
    assert client.transport.queue_length("celery") == sent_before  # nothing was sent
    assert worker.proc.poll() is None


# --- Celery on rpc:// ------------------------------------------------------------------------

CELERY_PROJECT = """
import os
from celery import Celery

app = Celery("celery_proj", broker=os.environ["INTEROP_URL"], backend="rpc://")
app.conf.update(
    task_default_queue=os.environ["INTEROP_QUEUE"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

@app.task(name="proj.add")
def add(x, y):
    return x + y

@app.task(name="proj.fail")
def fail():
    raise ValueError("broken on purpose")
"""


@pytest.fixture
def celery_app(
    project: Path, amqp_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    pytest.importorskip("celery")
    (project / "celery_proj.py").write_text(textwrap.dedent(CELERY_PROJECT))
    monkeypatch.setenv("INTEROP_URL", amqp_url)
    monkeypatch.setenv("INTEROP_QUEUE", queue_name)
    spec = importlib.util.spec_from_file_location("celery_proj", project / "celery_proj.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module.app
    module.app.close()


@pytest.mark.slow
def test_celery_worker_replies_to_a_celeriac_client(
    celery_app: Any, client: Celeriac, queue_name: str, start_process: Callable[..., WorkerProcess]
) -> None:
    start_process(
        [
            *(sys.executable, "-m", "celery", "-A", "celery_proj", "worker", "-P", "threads", "-c", "2"),
            *("-Q", queue_name, "-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        "ready.",
    )
    assert client.send_task("proj.add", (2, 3)).get(timeout=20) == 5
    failed = client.send_task("proj.fail")
    with pytest.raises(ValueError, match="broken on purpose"):
        failed.get(timeout=20)
    assert failed.state == states.FAILURE


@pytest.mark.slow
def test_celeriac_worker_replies_to_a_celery_client(
    celery_app: Any, amqp_url: str, start_process: Callable[..., WorkerProcess]
) -> None:
    start_process(celeriac_worker("-c", "2"))
    assert celery_app.send_task("proj.add", (2, 3)).get(timeout=20) == 5
    failed = celery_app.send_task("proj.fail")
    with pytest.raises(ValueError, match="broken on purpose"):
        failed.get(timeout=20)
    assert failed.status == "FAILURE"
    oid = celery_app.backend.oid
    delete_queues(amqp_url, [oid])
