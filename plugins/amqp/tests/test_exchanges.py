"""Named exchanges on a real RabbitMQ: topic, direct and fanout, ``[amqp.queues]``, errors."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import RoutingError
from celeriac import chain
from celeriac import signature
from celeriac.testing import wait_for
from celeriac_amqp.testing import delete_exchanges
from celeriac_amqp.testing import delete_queues

from .conftest import WorkerProcess
from .conftest import celeriac_worker

pytestmark = [pytest.mark.integration]

Names = Callable[[str], str]


@pytest.fixture
def names(amqp_url: str) -> Iterator[Names]:
    """Queue and exchange names of this test's own; all deleted afterwards."""
    suffix = secrets.token_hex(4)
    made: list[str] = []

    def name(base: str) -> str:
        made.append(f"{base}-{suffix}")
        return made[-1]

    yield name
    delete_queues(amqp_url, [q for n in made for q in (n, f"{n}.dead")])
    delete_exchanges(amqp_url, made)


def make_app(project: Path, toml: str) -> Celeriac:
    """The project's app with more configuration (``[amqp.queues]``, routes) in its file."""
    config = project / "celeriac.toml"
    config.write_text(config.read_text() + toml)
    return Celeriac("proj", config=config, env={})


def queue_toml(queue: str, exchange: str, kind: str, key: str | None = None) -> str:
    line = f'routing_key = "{key}"\n' if key is not None else ""
    return f'[amqp.queues."{queue}"]\nexchange = "{exchange}"\nexchange_type = "{kind}"\n{line}'


def received(app: Celeriac, queue: str, expected: int, timeout: float = 5.0) -> list[str]:
    """Task ids taken from the queue (acknowledged), once ``expected`` arrived or in time."""
    ids: list[str] = []
    deadline = time.monotonic() + timeout
    while len(ids) < expected and time.monotonic() < deadline:
        deliveries = app.transport.fetch([queue], 10, 0.2)
        ids.extend(d.envelope.headers["id"] for d in deliveries)
        app.transport.ack(deliveries)
    return ids


def test_topic_exchange_routes_by_pattern(project: Path, names: Names) -> None:
    media, audio, exchange = names("media"), names("audio"), names("media-x")
    app = make_app(
        project,
        queue_toml(media, exchange, "topic", "media.video.#")
        + queue_toml(audio, exchange, "topic", "#.audio"),
    )
    try:
        # Nothing consumes yet: publishing declares the bound queues, so nothing is lost.
        video = app.send_task("proj.add", (1, 2), exchange=exchange, routing_key="media.video")
        hd = app.send_task("proj.add", (1, 2), exchange=exchange, routing_key="media.video.hd")
        sound = app.send_task("proj.add", (1, 2), exchange=exchange, routing_key="media.audio")
        later = app.send_task("proj.add", (1, 2), exchange=exchange, routing_key="media.video", countdown=0.3)
        assert sorted(received(app, media, 3)) == sorted([video.id, hd.id, later.id])
        assert received(app, audio, 1) == [sound.id]
        with pytest.raises(RoutingError, match=rf"exchange '{exchange}' routes the routing key 'media.text'"):
            app.send_task("proj.add", (1, 2), exchange=exchange, routing_key="media.text")
        assert app.transport.queue_length(media) == app.transport.queue_length(audio) == 0
    finally:
        app.close()


def test_direct_exchange_and_task_routes_table(project: Path, names: Names) -> None:
    video, audio, exchange = names("video"), names("audio"), names("direct-x")
    app = make_app(
        project,
        queue_toml(video, exchange, "direct", "video")
        + queue_toml(audio, exchange, "direct")  # the routing key defaults to the queue's name
        + f'[task_routes]\n"proj.add" = {{exchange = "{exchange}", routing_key = "video"}}\n'
        + f'"proj.greet" = {{queue = "{audio}"}}\n',
    )
    try:
        routed = app.send_task("proj.add", (1, 2))
        by_name = app.send_task("proj.add", (1, 2), routing_key=audio)
        by_queue = app.send_task("proj.greet", ("ann",))  # a queue: the default exchange
        assert received(app, video, 1) == [routed.id]
        assert sorted(received(app, audio, 2)) == sorted([by_name.id, by_queue.id])
    finally:
        app.close()


def test_fanout_exchange_runs_one_task_on_two_workers(
    project: Path, names: Names, start_process: Callable[..., WorkerProcess]
) -> None:
    first, second, exchange = names("first"), names("second"), names("fanout-x")
    app = make_app(project, queue_toml(first, exchange, "fanout") + queue_toml(second, exchange, "fanout"))
    try:
        start_process(celeriac_worker("-Q", first, "-c", "1"))
        start_process(celeriac_worker("-Q", second, "-c", "1"))
        marker = project / "ran.txt"
        result = app.send_task("proj.slow", (0, str(marker)), exchange=exchange)
        assert result.get(timeout=20) == 0
        wait_for(lambda: marker.exists() and len(marker.read_text().split()) == 2, what="two runs")
        assert len(set(marker.read_text().split())) == 2  # two worker processes ran it
    finally:
        app.close()


def test_a_chain_step_goes_to_the_exchange_its_signature_names(
    project: Path, names: Names, start_process: Callable[..., WorkerProcess]
) -> None:
    """``.set(exchange=, routing_key=)`` on a later step of a chain: the worker that continues
    the chain publishes that step to the exchange, and its bound queue's worker runs it."""
    first, media, exchange = names("first"), names("media"), names("media-x")
    app = make_app(project, queue_toml(media, exchange, "topic", "media.#"))
    try:
        app.transport.declare_queue(media)  # declared and bound before anything is routed there
        start_process(celeriac_worker("-Q", f"{first},{media}", "-c", "2"))
        add = signature("proj.add", app=app)
        workflow = chain(
            add.clone((1, 2)).set(queue=first),
            add.clone((10,)).set(exchange=exchange, routing_key="media.video"),
        )
        assert workflow.delay().get(timeout=20) == 13
        with pytest.raises(RoutingError, match=exchange):  # nothing is bound to "other.key"
            add.clone((1, 1)).set(exchange=exchange, routing_key="other.key").delay()
    finally:
        app.close()


def test_unknown_exchange_is_an_error_naming_it(project: Path, names: Names) -> None:
    app = make_app(project, "")
    missing = names("missing-x")
    try:
        with pytest.raises(RoutingError, match=f"RabbitMQ has no exchange '{missing}'"):
            app.send_task("proj.add", (1, 2), exchange=missing, routing_key="k")
        with pytest.raises(RoutingError, match=f"no exchange '{missing}'"):
            app.send_task("proj.add", (1, 2), exchange=missing, countdown=5)
        # The transport goes on working after the broker closed its channel.
        assert app.send_task("proj.add", (1, 2)).id
    finally:
        app.close()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[amqp.queues.q]\nrouting_key = "k"\n', r"\[amqp.queues.q\] routing_key is set without an exchange"),
        (
            '[amqp.queues.a]\nexchange = "x"\nexchange_type = "topic"\n[amqp.queues.b]\nexchange = "x"\n',
            "exchange 'x' is declared both 'topic' and 'direct'",
        ),
        ('[amqp.queues.q]\nexchange = "x"\nexchange_type = "headers"\n', "exchange_type"),
        ('[amqp.queues.q]\nexchange = "amq.topic"\n', "'amq.topic' cannot be bound"),
        (
            '[amqp.queues.q]\nbindings = [{routing_key = "k"}]\n',
            r"'amqp.queues.q.bindings.0.exchange' is required",
        ),
    ],
)
def test_bad_queue_tables_are_config_errors(project: Path, toml: str, message: str) -> None:

    def connect() -> None:
        app = make_app(project, toml)  # the structure is checked here, the bindings below
        try:
            _ = app.transport
        finally:
            app.close()

    with pytest.raises(ConfigError, match=message):
        connect()


def test_consuming_declares_and_binds(project: Path, names: Names, amqp_url: str) -> None:
    queue, exchange = names("consumed"), names("consumed-x")
    sender = Celeriac("proj", broker=amqp_url, result_store="", config=False, env={})
    worker_side = make_app(project, queue_toml(queue, exchange, "topic", "jobs.*"))
    try:
        assert worker_side.transport.fetch([queue], 1, 0) == []  # as `worker -Q <queue>` does
        sent = sender.send_task("proj.add", (1, 2), exchange=exchange, routing_key="jobs.one")
        assert received(worker_side, queue, 1) == [sent.id]
    finally:
        sender.close()
        worker_side.close()
