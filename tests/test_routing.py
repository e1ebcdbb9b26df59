"""Routing to exchanges: options, ``task_routes`` tables, and what reaches the transport."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import testing
from celeriac._model.routing import TaskRoute
from celeriac._model.routing import resolve_exchange
from celeriac.plugin import exchange_of


def make_app(config: Path | bool = False, **settings: Any) -> Celeriac:
    return Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=config, **settings)


def delivery_info(app: Celeriac, queue: str) -> tuple[str, str] | None:
    (delivery,) = app.transport.fetch([queue], 1, 0)
    return exchange_of(delivery.envelope)


def test_routes_tables_and_plain_queue_names(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text(
        "[task_routes]\n"
        '"proj.encode" = {exchange = "media", routing_key = "media.video"}\n'
        '"proj.mail.*" = {queue = "mail"}\n'
        '"proj.*" = "plain"\n'
        '[tasks."proj.pinned"]\nexchange = "pinned-x"\nrouting_key = "k"\n'
    )
    app = make_app(file)

    @app.task(name="proj.encode")
    def encode() -> None: ...

    @app.task(name="proj.mail.send")
    def send() -> None: ...

    @app.task(name="proj.other")
    def other() -> None: ...

    @app.task(name="proj.pinned", queue="q")
    def pinned() -> None: ...

    assert (encode.options.exchange, encode.options.routing_key, encode.options.queue) == (
        "media",
        "media.video",
        None,
    )
    assert (send.options.queue, send.options.exchange) == ("mail", None)
    assert (other.options.queue, other.options.exchange) == ("plain", None)
    # [tasks."name"] names a destination: routes do not apply.
    assert (pinned.options.queue, pinned.options.exchange, pinned.options.routing_key) == (
        "q",
        "pinned-x",
        "k",
    )

    encode.delay()  # no queue of its own: the default queue on brokers without exchanges
    assert delivery_info(app, "celery") == ("media", "media.video")
    send.delay()
    assert delivery_info(app, "mail") is None
    pinned.delay()
    assert delivery_info(app, "q") == ("pinned-x", "k")


def test_call_options_override_the_task(tmp_path: Path) -> None:
    app = make_app()

    @app.task(exchange="media", routing_key="media.video", queue="media")
    def encode() -> None: ...

    encode.apply_async(routing_key="media.audio")
    assert delivery_info(app, "media") == ("media", "media.audio")
    encode.apply_async(queue="elsewhere")  # a queue alone: that queue, no exchange
    assert delivery_info(app, "elsewhere") is None
    encode.apply_async(exchange="other")
    assert delivery_info(app, "media") == ("other", "media.video")
    app.send_task("unregistered", exchange="x", routing_key="y", queue="z")
    assert delivery_info(app, "z") == ("x", "y")
    app.send_task("unregistered", exchange="", routing_key="by-name")  # the default exchange
    assert delivery_info(app, "by-name") is None
    with pytest.raises(ValueError, match="routing_key='k' needs an exchange"):
        app.send_task("unregistered", routing_key="k")


def test_groups_keep_the_exchange_of_their_tasks() -> None:
    from celeriac import group

    app = make_app()

    @app.task(exchange="media", routing_key="media.video")
    def encode(n: int) -> int:
        return n

    @app.task
    def plain(n: int) -> int:
        return n

    group(encode.s(1), encode.s(2), plain.s(3)).apply_async()
    found = [exchange_of(d.envelope) for d in app.transport.fetch(["celery"], 10, 0)]
    assert sorted(found, key=str) == [("media", "media.video"), ("media", "media.video"), None]


def test_a_signature_can_name_its_exchange_and_routing_key() -> None:
    """``sig.set(exchange=, routing_key=)``, as in Celery, for a lone call, a group member and
    a later step of a chain (continued from its dict, as a worker continues it)."""
    from celeriac import chain
    from celeriac import group
    from celeriac._client.canvas_wire import from_dict
    from celeriac._client.dispatch import send

    app = make_app()

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    add.s(1, 1).set(exchange="media", routing_key="media.video").delay()
    assert delivery_info(app, "celery") == ("media", "media.video")
    group(add.s(1, 1), add.s(2, 2).set(exchange="media", routing_key="media.audio")).delay()
    found = [exchange_of(d.envelope) for d in app.transport.fetch(["celery"], 10, 0)]
    assert sorted(found, key=str) == [("media", "media.audio"), None]
    add.s(1, 1).set(queue="q", exchange="", routing_key="other").delay()  # the default exchange: by name
    assert delivery_info(app, "other") is None
    step = chain(add.s(1, 1), add.s(5).set(exchange="media", routing_key="later")).tasks[1]
    send(app, from_dict(step.to_dict(), app).clone((2,)))  # the previous result, as a worker adds it
    assert delivery_info(app, "celery") == ("media", "later")
    with pytest.raises(ValueError, match=r"routing_key='k' of \S+add needs an exchange"):
        add.s(1, 1).set(routing_key="k").delay()
    # On a later step too, before anything is sent (the worker continuing the chain would fail).
    with pytest.raises(ValueError, match=r"routing_key='k' of \S+add needs an exchange"):
        chain(add.s(1, 1), group(add.s(2), add.s(3).set(routing_key="k"))).delay()
    with pytest.raises(ValueError, match="routing_key='k'"):
        add.s(1, 1).link(add.s(1).set(routing_key="k")).delay()
    assert app.transport.queue_length("celery") == 0


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('"t" = {routing_key = "k"}', "routing_key 'k' without an exchange"),
        ('"t" = {}', "neither a queue nor an exchange"),
        ('"t" = {exchang = "m"}', "unknown key 'task_routes.t.exchang'"),
        ('"t" = 5', "expected a queue name or a table"),
    ],
)
def test_bad_routes_are_config_errors(tmp_path: Path, toml: str, message: str) -> None:
    file = tmp_path / "c.toml"
    file.write_text(f"[task_routes]\n{toml}\n")

    def register() -> None:
        make_app(file).task(name="t")(lambda: None)

    with pytest.raises(ConfigError, match=message):
        register()


def test_routing_key_without_exchange_on_a_task_is_an_error() -> None:
    app = make_app()
    with pytest.raises(ConfigError, match="task 't': routing_key 'k' without an exchange"):
        app.task(name="t", routing_key="k")(lambda: None)


def test_resolution_rules() -> None:
    task = {"task_exchange": "x", "task_routing_key": "k"}
    assert resolve_exchange(queue=None, exchange=None, routing_key=None, **task) == ("x", "k")
    assert resolve_exchange(queue="q", exchange=None, routing_key=None, **task) is None
    assert resolve_exchange(queue="q", exchange=None, routing_key="r", **task) == ("x", "r")
    assert resolve_exchange(
        queue=None, exchange="y", routing_key=None, task_exchange=None, task_routing_key=None
    ) == (
        "y",
        "",
    )
    assert TaskRoute(queue="q").exchange is None
