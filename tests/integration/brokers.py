"""Every broker a user can choose, as a project directory of its own, for end-to-end tests.

Each case writes a ``celeriac.toml`` and a tasks module into the test's ``tmp_path``, on a
namespace nobody else uses, and removes what it created afterwards:

- ``sqlite``: a broker file (and results) in ``tmp_path``;
- ``redis``, ``redis-kombu``: the Redis at ``REDIS_URL`` (default ``redis://127.0.0.1:6379/15``),
  the streams and the kombu layout, every key (and pub/sub channel) under a prefix of the
  test's own, deleted afterwards;
- ``amqp``: the RabbitMQ at ``AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672//``), on
  a vhost of the module's own when ``rabbitmqctl`` can make one (deleted at the end), queues
  named for the test and deleted after it; results in a SQLite file in ``tmp_path``.

A server that cannot be reached skips its cases with the reason, except under ``CI=true``,
where they fail: CI must not pass by testing nothing.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import textwrap
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

from attrs import frozen

from celeriac.testing import wait_for  # noqa: F401 - kept importable from here for the suite's modules
from celeriac_amqp import testing as amqp_testing
from celeriac_redis import testing as redis_testing

BROKERS = ("sqlite", "redis", "redis-kombu", "amqp")
REDIS_URL = redis_testing.server_url()
AMQP_URL = amqp_testing.server_url()
#: Seconds before a dead worker's messages come back (SQLite, Redis); RabbitMQ needs none.
VISIBILITY_TIMEOUT = 2.0

TASKS = '''
"""Tasks of the broker semantics tests; they report through files, so they can run anywhere."""

import os
import time

from celeriac import Celeriac

app = Celeriac("semtasks")


def note(path, text):
    with open(path, "a") as f:
        f.write(f"{text}\\n")


@app.task
def add(x, y):
    return x + y


@app.task
def record(path, label):
    note(path, f"{label} {time.time()!r} {os.getpid()}")
    return label


def _hold(started, release, seconds):
    note(started, os.getpid())
    deadline = time.monotonic() + seconds
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.getpid()


@app.task
def hold(started, release, seconds=20.0):
    return _hold(started, release, seconds)


@app.task(acks_late=False)
def hold_early_ack(started, release, seconds=20.0):
    return _hold(started, release, seconds)


@app.task(bind=True, max_retries=5)
def flaky(self, path, succeed_at):
    note(path, self.request.retries)
    if self.request.retries < succeed_at:
        raise self.retry(countdown=1)
    return self.request.retries


@app.task(autoretry_for=(ConnectionError,), max_retries=2, default_retry_delay=0.2)
def always_down(path):
    note(path, "attempt")
    raise ConnectionError("the service is down")


@app.task
def routed_report(path):
    note(path, "ran")
    return "routed"
'''


@frozen(kw_only=True)
class BrokerCase:
    """One broker configuration in a project directory.

    :param name: the case's id (``sqlite``, ``redis``, ``redis-kombu``, ``amqp``).
    :param settings: the ``celeriac.toml`` text.
    :param default_queue: the queue tasks go to unless routed.
    :param served_first: the priority a worker takes first: 9 except on the kombu layout,
        which keeps kombu's lower-first order (docs/brokers/redis.md).
    :param server_url: the Redis or RabbitMQ URL; None for SQLite.
    :param key_prefix: the prefix of every Redis key of the case; empty elsewhere.
    """

    name: str
    settings: str
    default_queue: str
    served_first: int
    server_url: str | None = None
    key_prefix: str = ""


def _settings(top: str, plugins: str, extra: str = "") -> str:
    """A ``celeriac.toml``: top-level keys first (TOML puts later keys in the last table)."""
    return (
        f"{top}visibility_timeout = {VISIBILITY_TIMEOUT}\n"
        f"[plugins]\nenable = {plugins}\n[worker]\npoll_timeout = 0.1\n{extra}"
    )


@contextlib.contextmanager
def broker_case(name: str, server_url: str | None) -> Iterator[BrokerCase]:
    """The broker ``name`` on a namespace of its own, whose keys or queues go on leaving.

    :param server_url: the Redis or RabbitMQ URL (one that answers, on a vhost of its own for
        RabbitMQ); None for SQLite, whose file lives in the project directory.
    """
    token = secrets.token_hex(5)
    cleanup: Callable[[], None] = lambda: None  # noqa: E731 - SQLite's file goes with tmp_path
    if name == "sqlite":
        case = BrokerCase(
            name=name,
            settings=_settings('broker = "sqlite:///broker.sqlite3"\n', '["sqlite", "json", "threads"]'),
            default_queue="celery",
            served_first=9,
        )
    elif name in ("redis", "redis-kombu"):
        url = str(server_url)
        prefix = f"celeriac-semantics-{token}:"
        layout = "kombu" if name == "redis-kombu" else "streams"
        case = BrokerCase(
            name=name,
            settings=_settings(
                f'broker = "{url}"\n',
                '["redis", "json", "threads"]',
                f'[redis]\nlayout = "{layout}"\nkey_prefix = "{prefix}"\nresult_key_prefix = "{prefix}"\n'
                f'kombu_global_keyprefix = "{prefix}"\nreclaim_interval = 0.2\nkombu_poll_interval = 0.02\n',
            ),
            default_queue="celery",
            served_first=0 if layout == "kombu" else 9,
            server_url=url,
            key_prefix=prefix,
        )
        cleanup = functools.partial(redis_testing.delete_prefixed, url, prefix)
    elif name == "amqp":
        url = str(server_url)
        queue = f"celeriac-semantics-{token}"
        case = BrokerCase(
            name=name,
            settings=_settings(
                f'broker = "{url}"\nresult_store = "sqlite:///results.sqlite3"\ndefault_queue = "{queue}"\n',
                '["amqp", "sqlite", "json", "threads"]',
                "[amqp]\nmax_priority = 10\n",  # priorities are opt-in, as in Celery
            ),
            default_queue=queue,
            served_first=9,
            server_url=url,
        )
        cleanup = functools.partial(
            amqp_testing.delete_queues, url, [queue, f"{queue}.dead", "q2", "q2.dead"]
        )
    else:
        raise ValueError(f"no broker case {name!r}; known: {', '.join(BROKERS)}")
    try:
        yield case
    finally:
        cleanup()


#: What another program might put on a queue: bytes that are no message at all.
RAW_GARBAGE = (b"\xff\x00 not a message", b'{"valid": "json", "but": "no envelope"}')


def publish_raw_garbage(case: BrokerCase, queue: str) -> None:
    """Put :data:`RAW_GARBAGE` on ``queue`` with the server's own client, past the transport.

    The queue must exist (declared by the transport, so RabbitMQ's arguments match).
    """
    if case.name == "redis":
        import redis

        client = redis.Redis.from_url(str(case.server_url))
        try:
            # The stream of priority band 0 (docs/brokers/redis.md), whose entries carry a
            # packed envelope in field ``m``: garbage there, and then an entry without ``m``.
            band = f"{case.key_prefix}{{{queue}}}:0"
            client.xadd(band, {"m": RAW_GARBAGE[0]})
            client.xadd(band, {"body": RAW_GARBAGE[1]})
        finally:
            client.close()
    elif case.name == "redis-kombu":
        import redis

        client = redis.Redis.from_url(str(case.server_url))
        try:
            for garbage in RAW_GARBAGE:  # kombu's list of priority 0, as Celery would LPUSH
                client.lpush(f"{case.key_prefix}{queue}", garbage)
        finally:
            client.close()
    elif case.name == "amqp":
        import pika

        connection = pika.BlockingConnection(amqp_testing.connection_parameters(str(case.server_url)))
        try:
            channel = connection.channel()
            for garbage in RAW_GARBAGE:
                channel.basic_publish("", queue, garbage)
        finally:
            connection.close()
    else:
        raise ValueError(f"{case.name}: only celeriac writes this broker's messages")


def write_project(directory: Path, case: BrokerCase) -> None:
    """The tasks module ``semtasks`` and a ``celeriac.toml`` on the case's broker."""
    (directory / "semtasks.py").write_text(textwrap.dedent(TASKS))
    routes = '[task_routes]\n"semtasks.routed_*" = "q2"\n'
    (directory / "celeriac.toml").write_text(case.settings + routes)


def lines(path: Path) -> list[str]:
    """The lines a task wrote to ``path``; none when it never ran."""
    return path.read_text().splitlines() if path.exists() else []
