"""celeriac against Celery (and, on Redis, Dramatiq and Huey) on one broker: publish rate,
drain rate, round-trip latency.

Run it with ``make bench`` (which installs ``requirements-bench.txt``) or
``.venv/bin/python benchmarks/run.py [--broker sqlite|redis|amqp|sqs] [--peers celery,huey|all|none]
[--n 2000] [--m 100] [--repeats 3]``. ``--peers`` chooses the frameworks measured against
celeriac: Celery on SQLite (the only other one here with a SQLite broker); on Redis Celery
and Huey by default, and Dramatiq too with ``--peers all`` (about a minute more, left out of
the default to keep ``make bench`` within about 6 minutes); ``--peers none`` measures
celeriac alone.

Method
------
Each repeat runs every framework once, in the orders of a Williams design (see
:func:`run_order`): each framework in each place once per as many repeats as there are
frameworks, so that drift on the machine does not favour one side, and with an even number
of them also right after each other one once, so that what one leaves behind does not always
fall on the same next one. (Rotated by one place per repeat, as before, four frameworks kept
their neighbours: the kombu layout always ran right after Huey, and its figure moved when
that changed; see docs/performance.md, the ninth run.) With two
frameworks celeriac runs first on even repeats, the other first on odd ones; with three, the
first three orders are the rotations. A run gets a fresh temporary directory (and on Redis a
key prefix made from its name) and goes through three measurements:

1. **publish** - with no worker running, one producer publishes ``N`` no-op tasks with
   ``task.delay()`` (Dramatiq's ``actor.send()``, Huey's ``task()``), one call after another.
   One task is published first, untimed, so that opening the connection and creating the
   tables is not counted. Reported in tasks/s.
2. **drain** - those ``N`` tasks (plus the untimed first one) are the backlog. The workers are
   started as subprocesses. The clock starts when the first task's result is ready, so worker
   start-up (interpreter, imports, connections) is excluded, and stops when the last of the
   ``N`` is ready: ``N / (t_last - t_first)`` tasks/s. This measures how fast warm workers
   empty a backlog that is already in the broker, with no producer publishing at the same
   time. While they drain, the benchmark looks only at the last task published (is its
   result there? every 5 ms), so that watching takes almost no CPU from the workers; then it
   checks every result (the clock stops later if one was still unfinished) and that all of
   them are successes. Every framework stores every result.
3. **round trip** - with those workers still running and the queue empty, ``M`` sequential
   ``task.delay().get()`` calls (after one untimed call); median, 95th and 99th percentile
   in ms.

The workers are each framework's own CLI, in subprocesses, each with a thread pool of 4:
``celeriac -A bench_celeriac worker -P threads -c 4 -l WARNING``, ``celery -A bench_celery
worker -P threads -c 4 --without-gossip --without-mingle --without-heartbeat -l WARNING``,
``dramatiq bench_dramatiq --processes 1 --threads 4`` and ``huey_consumer bench_huey.huey -w 4
-k thread -q``; one on SQLite, two on Redis. Each is stopped at the end of the run by its PID
(SIGTERM, then SIGKILL on its process group after 5 s). Every wait has a deadline, so a
stuck worker fails the run instead of hanging it.

The report gives, per figure, the median of the repeats and celeriac's ratio to each other
framework, always arranged so that a ratio above 1 means celeriac is better: celeriac/peer
for rates, peer/celeriac for latencies.

On Redis
--------
One server (``BENCH_REDIS_URL``, by default db 14 of the local Redis), broker and results on
it for every framework, each with its defaults except where said: celeriac's streams layout
and its result store; Celery's kombu transport and Redis result backend (pub/sub for
``get()``); Dramatiq's ``RedisBroker`` with the ``Results`` middleware on its ``RedisBackend``
(``get_result(block=True)`` waits with ``BRPOPLPUSH``; an idle Dramatiq worker polls its
queue with a back-off from 5 ms up); Huey's ``RedisHuey`` with ``store_none=True`` (the no-op
returns None, which Huey would otherwise not store) and ``notify_result=True``, its low-latency
option, with which ``result.get(blocking=True)`` waits with ``BLPOP`` instead of polling from
50 ms up. Every key of a run starts with its prefix (Huey, which cannot prefix keys, carries it
in its name: ``huey.<kind>.<name>``), and the run deletes exactly those keys afterwards.

On RabbitMQ
-----------
``--broker amqp``: one server (``BENCH_AMQP_URL``, by default ``amqp://guest:guest@127.0.0.1:5672//``),
celeriac and Celery each with its defaults on it: celeriac's pika transport (publisher
confirms, a queue with ``x-max-priority``) and its ``rpc://`` result store; Celery's kombu/py-amqp
transport and its ``rpc://`` result backend. So results travel as messages to the client's
reply queue on both sides, and nothing but RabbitMQ is involved. Both clients consume their
reply queue: celeriac's ``ready()`` looks in what arrived; Celery's ``ready()`` would empty the
queue with ``basic.get`` and fail past 1000 waiting replies, so its results are watched with
``get(timeout=0.05)`` instead, the way its rpc backend is used: the client then reads its
reply queue almost all the time, as celeriac's does on its own thread (a client that reads
its replies only now and then slows the workers down: RabbitMQ holds back publishers whose
messages pile up for a slow consumer). Celery's client buffers at
most 8192 replies nobody asked for yet, hence N = 5000. celeriac's ``delay()`` returns once
RabbitMQ confirmed the message (publisher confirms, a disk write for a persistent message);
Celery's does not wait for a confirmation, which the publish figure shows. When
``rabbitmqctl`` can reach the server (a local RabbitMQ) every run gets a vhost of its own,
deleted afterwards with everything in it; otherwise runs share the URL's vhost and each
deletes the queues it used.

On SQS
------
``--broker sqs``: moto's server (``moto[server]`` from PyPI), started by the benchmark on a
free loopback port and killed by its PID at the end, with fake credentials; it is the only
SQS here. celeriac's SQS transport against kombu's (Celery's ``sqs`` extra, pycurl for its
worker), each queue under a prefix of the run's own; results for both on the local Redis (as
``--broker redis``), so only the broker differs. Celery's idle worker sleeps
``polling_interval`` after an empty receive; it gets ``--celery-poll-interval`` as on SQLite.
moto answers every call in Python on the same two cores as the workers and the producer, so
the figures measure mostly the emulator: they compare the two clients' use of it, not what
either reaches on Amazon's SQS (where each call is a network round trip, and is billed).

Fairness on SQLite
------------------
celeriac uses ``sqlite:///<file>`` (broker and results in one file). Celery uses kombu's
SQLAlchemy transport, ``sqla+sqlite:///<file>``, and the database result backend,
``db+sqlite:///<file>``, on one file too. Two settings would otherwise compare SQLite
configurations rather than the frameworks, so Celery is given celeriac's values:

* the journal: celeriac opens SQLite in WAL mode with ``synchronous=NORMAL``; SQLAlchemy's
  default is a rollback journal with ``synchronous=FULL`` (a disk sync at every commit).
  Celery's connections get the same two PRAGMAs (``--celery-sqlite-defaults`` turns this off).
* polling: on SQLite both sides poll. celeriac's idle worker backs off from 2 ms to 50 ms and
  ``get()`` from 1 ms to 50 ms; Celery sleeps a fixed ``polling_interval`` (1 s by default) in
  the worker and ``interval`` (0.5 s by default) in ``get()``. Celery gets 0.05 s for both
  (``--celery-poll-interval``), celeriac's longest sleep. With Celery's defaults a round trip
  costs about a second, which would measure only the sleeps.

Everything else is each framework's default (prefetch, acks, serializer: JSON on both sides).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import suppress
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TaskID
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from rich.table import Table

HERE = Path(__file__).resolve().parent
CONCURRENCY = 4
BOOT_TIMEOUT = 60.0
DRAIN_TIMEOUT = 180.0
GET_TIMEOUT = 30.0
STOP_GRACE = 5.0
INSTALL_HINT = (
    "cannot run here, and a comparison without it would be no comparison. Install the other "
    "frameworks with [bold]make bench[/] (which installs requirements-bench.txt under the lock), or "
    "leave it out on purpose with --peers."
)

console = Console()


# --- brokers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerConfig:
    """How each framework reaches one kind of broker, given the run's temporary directory."""

    name: str
    description: str
    celeriac_url: Callable[[Path], str]
    celery_broker_url: Callable[[Path], str]
    celery_backend_url: Callable[[Path], str]
    #: Scenario sizes when not given on the command line: tasks, round trips, worker processes.
    n: int = 2000
    m: int = 100
    workers: int = 1
    #: A key prefix of the run's own (on a shared server), derived from its temporary directory.
    key_prefix: Callable[[Path], str | None] = lambda tmp: None
    #: Deletes what a run left on a shared server; only that run's keys.
    cleanup: Callable[[Path], None] = lambda tmp: None
    #: The frameworks measured against celeriac unless ``--peers`` says otherwise.
    peers: tuple[str, ...] = ("celery",)
    #: celeriac's result store when the broker is none (RabbitMQ); None: the broker's own.
    celeriac_result_store: str | None = None


def results_on_redis(broker: BrokerConfig) -> BrokerConfig:
    """RabbitMQ with every framework's results on the local Redis, under the run's prefix."""

    def cleanup(tmp: Path) -> None:
        amqp_cleanup(tmp)
        redis_cleanup(tmp)

    return dataclasses.replace(
        broker,
        description="one RabbitMQ server for tasks and the local Redis for results, a fresh vhost per run",
        celery_backend_url=lambda tmp: redis_url(),
        celeriac_result_store=redis_url(),
        key_prefix=redis_prefix,
        cleanup=cleanup,
    )


def redis_url() -> str:
    """The server of ``--broker redis``: ``BENCH_REDIS_URL``, by default db 14 of the local Redis."""
    return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def redis_prefix(tmp: Path) -> str:
    return f"bench-{tmp.name}:"


def redis_cleanup(tmp: Path) -> None:
    """Delete the run's keys, found by its prefix; nothing else on the server is touched.

    Huey cannot prefix its keys (``huey.<kind>.<name>``): its name carries the prefix instead.
    """
    import redis
    from bench_huey import huey_name

    client = redis.Redis.from_url(redis_url())
    patterns = (f"{redis_prefix(tmp)}*", f"huey.*.{huey_name(redis_prefix(tmp))}*")
    keys = [key for pattern in patterns for key in client.scan_iter(match=pattern, count=1000)]
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    client.close()


def amqp_base_url() -> str:
    """The server of ``--broker amqp``: ``BENCH_AMQP_URL``, by default the local RabbitMQ's vhost "/"."""
    return os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def amqp_vhost(tmp: Path) -> str:
    return f"bench-{tmp.name}"


def amqp_url(tmp: Path) -> str:
    """The run's own vhost on a local server (made on first use), else ``BENCH_AMQP_URL`` as it is."""
    import urllib.parse

    from celeriac_amqp.testing import rabbitmqctl  # a local server's; False when it refuses

    base = amqp_base_url()
    parts = urllib.parse.urlsplit(base)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return base
    vhost = amqp_vhost(tmp)
    marker = tmp / ".amqp-vhost"
    if not marker.exists():
        if not (
            rabbitmqctl("add_vhost", vhost)
            and rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
        ):
            return base
        marker.write_text(vhost)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + vhost, "", ""))


def amqp_cleanup(tmp: Path) -> None:
    """Delete the run's vhost with everything in it; on a shared vhost, the queues a run uses.
    Dramatiq's results (on Redis, under the run's prefix) go too."""
    from celeriac_amqp.testing import rabbitmqctl

    if (tmp / ".redis-results").exists():
        redis_cleanup(tmp)
    marker = tmp / ".amqp-vhost"
    if marker.exists():
        rabbitmqctl("delete_vhost", marker.read_text())
        return
    import pika

    from celeriac_amqp.testing import connection_parameters  # kombu's vhost convention: "//" is "/"

    connection = pika.BlockingConnection(connection_parameters(amqp_base_url()))
    try:
        for queue in ("celery", "celery.dead"):
            channel = connection.channel()
            with suppress(Exception):
                channel.queue_delete(queue)
            with suppress(Exception):
                channel.close()
    finally:
        connection.close()


def celery_sqs_url() -> str:
    """kombu's SQS URL for the emulator that :func:`broker_server` started (http, with its port)."""
    from urllib.parse import urlsplit

    endpoint = urlsplit(os.environ["BENCH_SQS_ENDPOINT"])
    return f"sqs://testing:testing@{endpoint.hostname}:{endpoint.port}"


@contextmanager
def broker_server(broker: BrokerConfig) -> Iterator[None]:
    """Start what the broker needs that the machine does not run: moto's server for ``sqs``.

    It listens on a free loopback port for the whole benchmark, with fake credentials in this
    process's environment (which the workers inherit), and is killed by its PID at the end.
    """
    if broker.name != "sqs":
        yield
        return
    from celeriac_sqs.testing import AWS_ENV
    from celeriac_sqs.testing import moto_server

    with tempfile.TemporaryDirectory(prefix="bench-moto-") as tmpdir, moto_server(Path(tmpdir)) as endpoint:
        saved = {name: os.environ.get(name) for name in (*AWS_ENV, "BENCH_SQS_ENDPOINT")}
        os.environ.update(AWS_ENV, BENCH_SQS_ENDPOINT=endpoint)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


BROKERS: dict[str, BrokerConfig] = {
    "sqlite": BrokerConfig(
        name="sqlite",
        description="SQLite file, broker and results in one fresh file per framework and run",
        # Four slashes: an absolute path, so that the worker's directory does not matter.
        celeriac_url=lambda tmp: f"sqlite:///{tmp / 'celeriac.sqlite3'}",
        celery_broker_url=lambda tmp: f"sqla+sqlite:///{tmp / 'celery.sqlite3'}",
        celery_backend_url=lambda tmp: f"db+sqlite:///{tmp / 'celery.sqlite3'}",
    ),
    "redis": BrokerConfig(
        name="redis",
        description="one Redis server, broker and results, keys under a fresh prefix per framework and run",
        celeriac_url=lambda tmp: redis_url(),
        celery_broker_url=lambda tmp: redis_url(),
        celery_backend_url=lambda tmp: redis_url(),
        n=20_000,
        m=500,
        workers=2,
        key_prefix=redis_prefix,
        cleanup=redis_cleanup,
        # Dramatiq (about a minute more for 3 repeats) with --peers all: keeps make bench short.
        peers=("celery", "huey", "kombu"),
    ),
    "amqp": BrokerConfig(
        name="amqp",
        description="one RabbitMQ server, tasks and rpc:// results, a fresh vhost per framework and run",
        celeriac_url=amqp_url,
        celery_broker_url=amqp_url,
        celery_backend_url=lambda tmp: "rpc://",
        celeriac_result_store="rpc://",
        # Celery's rpc:// client buffers at most 8192 replies it was not asked for yet.
        n=5000,
        m=500,
        workers=2,
        cleanup=amqp_cleanup,
        peers=("celery", "dramatiq"),
    ),
    "sqs": BrokerConfig(
        name="sqs",
        description=(
            "moto's SQS server started on a free port (queues under a fresh prefix per framework and run), "
            "results on one Redis"
        ),
        celeriac_url=lambda tmp: "sqs://",
        celery_broker_url=lambda tmp: celery_sqs_url(),
        celery_backend_url=lambda tmp: redis_url(),
        celeriac_result_store=redis_url(),
        # moto answers every call in Python on the same two cores, and its ReceiveMessage walks
        # the whole queue: past a few hundred waiting messages it, not the clients, sets the pace.
        n=500,
        m=100,
        workers=2,
        key_prefix=redis_prefix,
        cleanup=redis_cleanup,
    ),
}


# --- frameworks ---------------------------------------------------------------------------


class Handle(Protocol):
    """What a framework's ``delay()`` returns, as far as the benchmark uses it."""

    def ready(self) -> bool: ...

    def successful(self) -> bool: ...


@dataclass
class Settings:
    n: int
    m: int
    repeats: int
    broker: BrokerConfig
    workers: int
    concurrency: int
    #: "threads" (every framework's thread pool) or "prefork" (child processes: celeriac and
    #: Celery ``-P prefork``, Huey ``-k process``, Dramatiq one thread per process).
    pool: str
    #: celeriac's ``[amqp] confirms`` on RabbitMQ: "async" (its default) or "strict".
    amqp_confirms: str
    #: celeriac's ``worker --prefetch`` (messages reserved beyond those running); None: its default.
    prefetch: int | None
    #: None leaves Celery's own intervals (1 s in the worker, 0.5 s in ``get()``).
    celery_poll_interval: float | None
    celery_sqlite_defaults: bool


class WorkerSpec(Protocol):
    """What :func:`start_workers` needs: the worker's command line and its environment."""

    def worker_command(self) -> list[str]: ...

    def worker_env(self) -> dict[str, str]: ...


class Side(WorkerSpec, Protocol):
    """One framework on one broker, for one run: a producer app and a worker command."""

    name: str

    def publish(self) -> Handle: ...

    def flush(self) -> bool:
        """Wait until the broker confirmed what was published; False when nothing confirms."""
        ...

    def round_trip(self) -> None: ...

    def close(self) -> None: ...


class CeleriacSide:
    name = "celeriac"
    layout: str | None = None

    def __init__(self, tmp: Path, settings: Settings) -> None:
        import bench_celeriac

        self.url = settings.broker.celeriac_url(tmp)
        self.prefix = settings.broker.key_prefix(tmp)
        self.result_store = settings.broker.celeriac_result_store
        self.concurrency = settings.concurrency
        self.pool = settings.pool
        self.prefetch = settings.prefetch
        self.confirms = settings.amqp_confirms if settings.broker.name == "amqp" else None
        self.app = bench_celeriac.make_app(
            self.url, self.prefix, self.result_store, self.layout, self.confirms
        )
        self.task = self.app.tasks[bench_celeriac.TASK_NAME]

    def publish(self) -> Handle:
        return self.task.delay()

    def flush(self) -> bool:
        """RabbitMQ: wait for the confirms of the window (app.flush()); else nothing."""
        from celeriac.plugin import ConfirmedPublishing

        if not isinstance(self.app.transport, ConfirmedPublishing):
            return False
        self.app.flush(timeout=GET_TIMEOUT)
        return True

    def round_trip(self) -> None:
        self.task.delay().get(timeout=GET_TIMEOUT)

    def worker_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "celeriac", "-A", "bench_celeriac", "worker"),
            *("-P", self.pool, "-c", str(self.concurrency), "-l", "WARNING"),
            *(() if self.prefetch is None else ("--prefetch", str(self.prefetch))),
        ]

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
        return {
            **env,
            "BENCH_BROKER_URL": self.url,
            "BENCH_KEY_PREFIX": self.prefix or "",
            "BENCH_RESULT_STORE": self.result_store or "",
            "BENCH_LAYOUT": self.layout or "",
            "BENCH_AMQP_CONFIRMS": self.confirms or "",
        }

    def close(self) -> None:
        self.app.close()


class CeleriacKombuSide(CeleriacSide):
    """celeriac on Redis with kombu's layout (lists, as Celery's), instead of streams."""

    name = "celeriac kombu"
    layout = "kombu"


class CeleryRpcHandle:
    """Celery's result on its ``rpc://`` backend, asked the way that backend is meant to be:
    with ``get()``, which consumes the reply queue. Its ``ready()`` instead empties the queue
    with ``basic.get`` at every call and raises ``BacklogLimitExceeded`` once 1000 replies
    wait, which two busy workers reach within one poll. ``get`` waits up to 50 ms, so that
    replies are read nearly all the time; a result that arrives meanwhile returns at once."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.state: str | None = None

    def ready(self) -> bool:
        if self.state is None:
            from celery.exceptions import TimeoutError as CeleryTimeoutError

            try:
                self.result.get(timeout=0.05, propagate=False)
            except CeleryTimeoutError:
                return False
            self.state = str(self.result.state)
        return True

    def successful(self) -> bool:
        return self.ready() and self.state == "SUCCESS"


class CelerySide:
    name = "Celery"

    def __init__(self, tmp: Path, settings: Settings) -> None:
        import bench_celery

        self.broker_url = settings.broker.celery_broker_url(tmp)
        self.backend_url = settings.broker.celery_backend_url(tmp)
        self.poll_interval = settings.celery_poll_interval
        self.wal = not settings.celery_sqlite_defaults
        self.prefix = settings.broker.key_prefix(tmp)
        self.concurrency = settings.concurrency
        self.pool = settings.pool
        self.app = bench_celery.make_app(
            self.broker_url, self.backend_url, self.poll_interval, wal=self.wal, key_prefix=self.prefix
        )
        self.names = itertools.count(1)
        self.task = self.app.tasks[bench_celery.TASK_NAME]

    def publish(self) -> Handle:
        result = self.task.delay()
        if self.backend_url.startswith("rpc:"):
            return CeleryRpcHandle(result)
        handle: Handle = result
        return handle

    def flush(self) -> bool:
        return False

    def round_trip(self) -> None:
        if self.poll_interval is None:
            self.task.delay().get(timeout=GET_TIMEOUT)
        else:
            self.task.delay().get(timeout=GET_TIMEOUT, interval=self.poll_interval)

    def worker_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "celery", "-A", "bench_celery", "worker"),
            *("-P", self.pool, "-c", str(self.concurrency), "-l", "WARNING"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            # A node name per worker: on RabbitMQ two workers named alike fight over one
            # exclusive remote-control queue (<name>.celery.pidbox) and one of them exits.
            *("-n", f"bench{next(self.names)}@%h"),
        ]

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
        return {
            **env,
            "BENCH_BROKER_URL": self.broker_url,
            "BENCH_BACKEND_URL": self.backend_url,
            "BENCH_POLL_INTERVAL": "" if self.poll_interval is None else str(self.poll_interval),
            "BENCH_SQLITE_WAL": "1" if self.wal else "0",
            "BENCH_KEY_PREFIX": self.prefix or "",
        }

    def close(self) -> None:
        self.app.close()


class DramatiqHandle:
    """A Dramatiq message seen through its Results middleware (non-blocking reads)."""

    def __init__(self, message: Any) -> None:
        self.message = message

    def _result(self) -> bool | None:
        """True when stored as a success, False as a failure, None when not there yet."""
        from dramatiq.results import ResultFailure
        from dramatiq.results import ResultMissing

        try:
            self.message.get_result(block=False)
        except ResultMissing:
            return None
        except ResultFailure:
            return False
        return True

    def ready(self) -> bool:
        return self._result() is not None

    def successful(self) -> bool:
        return self._result() is True


class DramatiqSide:
    """Dramatiq's Redis broker (or, on RabbitMQ, its RabbitMQ broker without confirms), with
    the Results middleware on a Redis backend (the same server; on RabbitMQ, ``redis_url()``)."""

    name = "Dramatiq"

    def __init__(self, tmp: Path, settings: Settings) -> None:
        import bench_dramatiq

        self.url = settings.broker.celeriac_url(tmp)
        self.results_url = redis_url() if self.url.startswith("amqp") else ""
        if self.results_url:
            (tmp / ".redis-results").touch()  # the broker's cleanup deletes them
        self.prefix = settings.broker.key_prefix(tmp) or redis_prefix(tmp)
        self.concurrency = settings.concurrency
        self.processes = 1
        if settings.pool == "prefork":  # processes of one thread each
            self.processes, self.concurrency = settings.concurrency, 1
        self.broker, self.actor = bench_dramatiq.make_broker(self.url, self.prefix, self.results_url or None)

    def publish(self) -> Handle:
        return DramatiqHandle(self.actor.send())

    def flush(self) -> bool:
        return False

    def round_trip(self) -> None:
        self.actor.send().get_result(block=True, timeout=int(GET_TIMEOUT * 1000))

    def worker_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "dramatiq", "bench_dramatiq"),
            *("--processes", str(self.processes), "--threads", str(self.concurrency)),
        ]

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("dramatiq_")}
        return {
            **env,
            "BENCH_BROKER_URL": self.url,
            "BENCH_KEY_PREFIX": self.prefix,
            "BENCH_RESULTS_URL": self.results_url,
        }

    def close(self) -> None:
        self.broker.close()
        client = getattr(self.broker, "client", None)  # the Redis broker's
        if client is not None:
            client.close()


class HueyHandle:
    """A Huey result handle; ``ready`` asks without taking the result (Huey's get pops it)."""

    def __init__(self, huey: Any, result: Any) -> None:
        self.huey = huey
        self.result = result

    def ready(self) -> bool:
        return bool(self.huey.storage.has_data_for_key(self.result.id))

    def successful(self) -> bool:
        from huey.exceptions import TaskException

        if not self.ready():
            return False
        try:
            self.result.get(preserve=True)
        except TaskException:
            return False
        return True


class HueySide:
    """Huey's RedisHuey: results stored (``store_none``) and ``get`` woken by ``notify_result``."""

    name = "Huey"

    def __init__(self, tmp: Path, settings: Settings) -> None:
        import bench_huey

        self.url = settings.broker.celeriac_url(tmp)
        self.prefix = settings.broker.key_prefix(tmp) or ""
        self.concurrency = settings.concurrency
        self.kind = "process" if settings.pool == "prefork" else "thread"
        self.huey, self.task = bench_huey.make_huey(self.url, self.prefix)

    def publish(self) -> Handle:
        return HueyHandle(self.huey, self.task())

    def flush(self) -> bool:
        return False

    def round_trip(self) -> None:
        self.task().get(blocking=True, timeout=GET_TIMEOUT)

    def worker_command(self) -> list[str]:
        # -q: warnings only, like the other workers (Huey logs every task at INFO otherwise).
        return [
            *(sys.executable, "-m", "huey.bin.huey_consumer", "bench_huey.huey"),
            *("-w", str(self.concurrency), "-k", self.kind, "-q"),
        ]

    def worker_env(self) -> dict[str, str]:
        return {**os.environ, "BENCH_BROKER_URL": self.url, "BENCH_KEY_PREFIX": self.prefix}

    def close(self) -> None:
        self.huey.storage.conn.close()


@dataclass(frozen=True)
class Framework:
    """One framework of the table: how to build its side, and what it needs to run."""

    name: str
    side: Callable[[Path, Settings], Side]
    #: Modules whose absence means the framework cannot be measured here.
    needs: tuple[str, ...] = ()
    #: Brokers (keys of BROKERS) it can be measured on.
    brokers: tuple[str, ...] = ("sqlite", "redis", "amqp", "sqs")


FRAMEWORKS: dict[str, Framework] = {
    "celeriac": Framework("celeriac", CeleriacSide),
    "Celery": Framework(
        "Celery",
        CelerySide,
        needs=("celery", "kombu.transport.sqlalchemy", "sqlalchemy"),
        brokers=("sqlite", "redis", "amqp", "sqs"),
    ),
    "Dramatiq": Framework(
        "Dramatiq", DramatiqSide, needs=("dramatiq", "redis", "pika"), brokers=("redis", "amqp")
    ),
    "Huey": Framework("Huey", HueySide, needs=("huey", "redis"), brokers=("redis",)),
    "celeriac kombu": Framework("celeriac kombu", CeleriacKombuSide, brokers=("redis",)),
}
#: ``--peers`` names, lower case, in table order.
PEERS = {name.lower().removeprefix("celeriac "): name for name in FRAMEWORKS if name != "celeriac"}


def missing(framework: Framework) -> str | None:
    """Why the framework cannot be measured here, or None when it can."""
    import importlib

    try:
        for module in framework.needs:
            importlib.import_module(module)
    except ImportError as exc:
        return str(exc)
    return None


# --- worker processes ---------------------------------------------------------------------

_RUNNING: dict[int, subprocess.Popen[bytes]] = {}


class RunError(RuntimeError):
    """A run that could not finish: its worker exited, a deadline passed or a task failed."""


class Workers:
    """The worker processes of one run, each with its log file."""

    def __init__(self, procs: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
        self.procs = procs

    def check_alive(self) -> None:
        for proc, log in self.procs:
            if proc.poll() is not None:
                raise RunError(f"a worker exited with code {proc.returncode}:\n{log_tail(log)}")

    def tail(self) -> str:
        return "\n".join(log_tail(log) for _, log in self.procs)

    def stop(self) -> None:
        for proc, _ in self.procs:
            stop_worker(proc)


def start_workers(side: WorkerSpec, tmp: Path, count: int) -> Workers:
    env = side.worker_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    procs = []
    for index in range(count):
        log = tmp / f"worker-{index}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                side.worker_command(),
                cwd=tmp,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches only the benchmark, which
                # then stops the worker itself.
                start_new_session=True,
            )
        _RUNNING[proc.pid] = proc
        procs.append((proc, log))
    return Workers(procs)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a grace period; the whole process group, by its id."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_GRACE)
        # The worker leads its own process group (start_new_session): anything it started
        # and left behind goes with it. The group id is the worker's pid, not a name.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        _RUNNING.pop(proc.pid, None)


def stop_all_workers() -> None:
    for proc in list(_RUNNING.values()):
        stop_worker(proc)


def log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) or "(the worker printed nothing)"


def wait_ready(handle: Handle, workers: Workers, timeout: float, step: float) -> None:
    deadline = time.monotonic() + timeout
    while not handle.ready():
        workers.check_alive()
        if time.monotonic() > deadline:
            raise RunError(f"no result after {timeout:.0f} s; the workers' output:\n{workers.tail()}")
        time.sleep(step)


# --- one run --------------------------------------------------------------------------------


@dataclass
class RunResult:
    publish_per_s: float
    drain_per_s: float
    round_trip_median_ms: float
    round_trip_p95_ms: float
    round_trip_p99_ms: float = 0.0
    #: N over the publish loop plus the wait for the broker's last confirm (celeriac on
    #: RabbitMQ); None where publishing confirms nothing afterwards.
    publish_confirmed_per_s: float | None = None
    #: The 1-minute load average when the run started (the machine is shared).
    load1: float = 0.0


@dataclass
class Display:
    progress: Progress
    overall: TaskID
    step: TaskID

    def phase(self, label: str, total: int) -> None:
        self.progress.reset(self.step, total=total, description=label)

    def advance(self, amount: int = 1) -> None:
        self.progress.advance(self.step, amount)


def run_order(count: int, repeat: int) -> list[int]:
    """The order of ``count`` frameworks in repeat ``repeat``: row ``repeat`` of a Williams
    design. Each framework runs in each place once per ``count`` repeats (no one always on a
    warmer or busier machine), and with an even ``count`` right after each other framework
    once as well, so that what one leaves behind (a busy broker, a machine still settling)
    does not always fall on the same next one. The first row is 0, 1, count-1, 2, count-2, ...;
    each next one adds 1 to every place. (An odd ``count`` needs the mirrored rows too, after
    the first ``count``.)"""
    first = [0]
    low, high = 1, count - 1
    while low <= high:
        first.append(low)
        if low != high:
            first.append(high)
        low, high = low + 1, high - 1
    rows = [[(place + shift) % count for place in first] for shift in range(count)]
    if count % 2:
        rows += [list(reversed(row)) for row in rows]
    return rows[repeat % len(rows)]


def run_once(framework: str, settings: Settings, display: Display, label: str) -> RunResult:
    with tempfile.TemporaryDirectory(prefix=f"bench-{framework.lower()}-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            side = FRAMEWORKS[framework].side(tmp, settings)
            try:
                return _measure(side, tmp, settings, display, label)
            finally:
                side.close()
        finally:
            settings.broker.cleanup(tmp)


def _measure(side: Side, tmp: Path, settings: Settings, display: Display, label: str) -> RunResult:
    n, m = settings.n, settings.m
    # publish: one untimed task opens the connection and creates the tables.
    display.phase(f"{label}: publish", n)
    load1 = os.getloadavg()[0]
    first = side.publish()
    first.ready()  # creates the result tables before a worker races to create them too
    side.flush()
    handles: list[Handle] = []
    chunk = max(n // 100, 1)
    started = time.perf_counter()
    for i in range(n):
        handles.append(side.publish())
        if i % chunk == chunk - 1:
            display.advance(chunk)
    publish_s = time.perf_counter() - started
    confirmed_s = time.perf_counter() - started if side.flush() else None
    display.advance(n % chunk)

    workers = start_workers(side, tmp, settings.workers)
    try:
        # drain: the clock starts when the first (untimed) task is done, i.e. when the worker
        # is up and consuming, and stops when the last of the n is. Only the last task is
        # watched while the worker drains, so that watching costs the worker (which shares
        # the CPUs) almost nothing; the pass over all of them afterwards stops the clock
        # later only if one was still unfinished.
        display.phase(f"{label}: worker start", 1)
        wait_ready(first, workers, BOOT_TIMEOUT, 0.005)
        t_first = time.perf_counter()
        display.phase(f"{label}: drain", 1)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        wait_ready(handles[-1], workers, DRAIN_TIMEOUT, 0.005)
        t_last = time.perf_counter()
        for handle in handles:
            if not handle.ready():
                wait_ready(handle, workers, max(deadline - time.monotonic(), 0.0), 0.005)
                t_last = time.perf_counter()
        drain_s = t_last - t_first
        display.advance()
        failed = sum(not handle.successful() for handle in handles)
        if failed:
            raise RunError(f"{failed} of {n} tasks did not succeed; the workers' output:\n{workers.tail()}")

        # round trip: the worker is warm and the queue is empty.
        display.phase(f"{label}: round trip", m)
        side.round_trip()
        latencies: list[float] = []
        for _ in range(m):
            started = time.perf_counter()
            side.round_trip()
            latencies.append((time.perf_counter() - started) * 1000)
            display.advance()
        workers.check_alive()
    finally:
        workers.stop()
    return RunResult(
        publish_per_s=n / publish_s,
        publish_confirmed_per_s=None if confirmed_s is None else n / confirmed_s,
        load1=load1,
        drain_per_s=n / drain_s,
        round_trip_median_ms=statistics.median(latencies),
        round_trip_p95_ms=percentile(latencies, 95),
        round_trip_p99_ms=percentile(latencies, 99),
    )


def percentile(values: list[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    scenario: str
    unit: str
    higher_is_better: bool


METRICS = (
    Metric("publish_per_s", "publish (no worker)", "tasks/s", higher_is_better=True),
    Metric("publish_confirmed_per_s", "publish, until all confirmed", "tasks/s", higher_is_better=True),
    Metric("drain_per_s", "drain backlog", "tasks/s", higher_is_better=True),
    Metric("round_trip_median_ms", "round trip, median", "ms", higher_is_better=False),
    Metric("round_trip_p95_ms", "round trip, p95", "ms", higher_is_better=False),
    Metric("round_trip_p99_ms", "round trip, p99", "ms", higher_is_better=False),
)


@dataclass
class Report:
    settings: dict[str, Any]
    machine: dict[str, Any]
    runs: dict[str, list[RunResult]] = field(default_factory=dict)

    @property
    def peers(self) -> list[str]:
        """The frameworks measured besides celeriac, in table order."""
        return [name for name in FRAMEWORKS if name != "celeriac" and name in self.runs]

    def median(self, framework: str, key: str) -> float | None:
        values = [getattr(r, key) for r in self.runs.get(framework, [])]
        values = [value for value in values if value is not None]
        return statistics.median(values) if values else None

    def ratio(self, metric: Metric, peer: str = "Celery") -> float | None:
        """celeriac against ``peer``, above 1 when celeriac is better."""
        ours, theirs = self.median("celeriac", metric.key), self.median(peer, metric.key)
        if ours is None or theirs is None or ours == 0 or theirs == 0:
            return None
        return ours / theirs if metric.higher_is_better else theirs / ours

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "machine": self.machine,
            "medians": {
                metric.key: {
                    "unit": metric.unit,
                    **{name.lower(): self.median(name, metric.key) for name in self.runs},
                    # celeriac against each peer, above 1 when celeriac is better
                    "ratios": {peer.lower(): self.ratio(metric, peer) for peer in self.peers},
                }
                for metric in METRICS
            },
            "runs": {name: [asdict(r) for r in runs] for name, runs in self.runs.items()},
        }


def render(report: Report) -> list[Table]:
    """The figures of every framework, then celeriac's ratio against each peer."""
    repeats = report.settings["repeats"]
    peers = report.peers
    names = ["celeriac", *peers]
    figures = Table(title=f"{' vs '.join(names)} on {report.settings['broker']}: median of {repeats} repeats")
    figures.add_column("scenario")
    figures.add_column("unit")
    for name in names:
        figures.add_column(name, justify="right")
    for metric in METRICS:
        cells = [report.median(name, metric.key) for name in names]
        if all(cell is None for cell in cells):
            continue  # a figure no framework has here (confirms, on a broker without them)
        figures.add_row(metric.scenario, metric.unit, *[_fmt(cell) for cell in cells])
    if not peers:
        return [figures]
    ratios = Table(
        title="celeriac against each: above 1 means celeriac is better",
        caption="celeriac/peer for rates, peer/celeriac for latencies",
    )
    ratios.add_column("scenario")
    for peer in peers:
        ratios.add_column(f"vs {peer}", justify="right", style="bold")
    for metric in METRICS:
        cells = [report.ratio(metric, peer) for peer in peers]
        if all(cell is None for cell in cells):
            continue
        ratios.add_row(metric.scenario, *["-" if ratio is None else f"{ratio:.2f}x" for ratio in cells])
    return [figures, ratios]


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version

    versions: dict[str, str | None] = {}
    for package in (
        "celeriac",
        "celeriac-sqlite",
        "celeriac-redis",
        "celeriac-amqp",
        "pika",
        "celery",
        "kombu",
        "amqp",
        "sqlalchemy",
        "dramatiq",
        "huey",
        "redis",
        "hiredis",
    ):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "versions": versions,
    }


def git_commit() -> str | None:
    """The checked-out commit, with ``+dirty`` when the measured code has uncommitted changes."""
    repo = HERE.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "kernel", "plugins"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if changes else head


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark celeriac against Celery (and on Redis Dramatiq and Huey) on one broker.",
        epilog="A ratio above 1 means celeriac is better.",
    )
    parser.add_argument("--broker", choices=sorted(BROKERS), default="sqlite", help="broker for both sides")
    parser.add_argument(
        "--n",
        type=int,
        help="tasks published and drained per run (sqlite 2000, redis 20000, amqp 5000, sqs 500)",
    )
    parser.add_argument(
        "--m", type=int, help="sequential round trips per run (sqlite 100, redis 500, amqp 500, sqs 100)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes (sqlite 1, redis 2, amqp 2, sqs 2; prefork 1)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help=f"threads per worker (default {CONCURRENCY}); with --pool prefork, child processes (default 2)",
    )
    parser.add_argument(
        "--amqp-confirms",
        choices=("async", "strict"),
        default="async",
        help="celeriac's [amqp] confirms on RabbitMQ: async (its default: the confirm window) or strict "
        "(every delay() waits for its confirm)",
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        help="celeriac's worker --prefetch (messages reserved beyond those running); default: its own",
    )
    parser.add_argument(
        "--pool",
        choices=("threads", "prefork"),
        default="threads",
        help="threads (default); prefork: one worker with child processes, against Celery's prefork, "
        "Huey's process workers and Dramatiq processes of one thread",
    )
    parser.add_argument(
        "--results",
        choices=("broker", "redis"),
        default="broker",
        help="RabbitMQ only: celeriac's and Celery's results over rpc:// (default) or on the local Redis, "
        "where Dramatiq keeps its own: the same result path for all three",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per framework; medians are reported")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here as JSON")
    parser.add_argument(
        "--celery-poll-interval",
        type=float,
        default=0.05,
        metavar="SECONDS",
        help="Celery's worker polling_interval and get() interval (its defaults: 1.0 and 0.5)",
    )
    parser.add_argument(
        "--celery-sqlite-defaults",
        action="store_true",
        help="leave Celery's SQLite on SQLAlchemy's journal settings instead of WAL + synchronous=NORMAL",
    )
    parser.add_argument(
        "--celery-defaults",
        action="store_true",
        help="run Celery on its own settings: both of the above (mostly measures its polling sleeps)",
    )
    parser.add_argument(
        "--peers",
        metavar="NAMES",
        help=(
            f"comma-separated frameworks to measure against celeriac, among {', '.join(PEERS)}; "
            "'all' for every one the broker has, 'none' for celeriac alone "
            "(default: celery on sqlite; celery,huey on redis)"
        ),
    )
    parser.add_argument("--celeriac-only", action="store_true", help="the same as --peers none")
    args = parser.parse_args(argv)
    broker = BROKERS[args.broker]
    if args.results == "redis":
        if broker.name != "amqp":
            parser.error("--results redis: only with --broker amqp (other brokers keep results themselves)")
        broker = results_on_redis(broker)
    args.broker_config = broker
    if args.celeriac_only:
        args.peers = "none"
    names = [n.strip().lower() for n in (args.peers or ",".join(broker.peers)).split(",") if n.strip()]
    if "all" in names:
        names = [n for n, name in PEERS.items() if broker.name in FRAMEWORKS[name].brokers]
    unknown = [n for n in names if n not in PEERS and n != "none"]
    if unknown:
        parser.error(f"--peers: unknown {', '.join(unknown)} (known: {', '.join(PEERS)}, all, none)")
    args.peers = [PEERS[n] for n in PEERS if n in names]
    for peer in args.peers:
        if broker.name not in FRAMEWORKS[peer].brokers:
            parser.error(f"--peers: {peer} is not measured on {broker.name}")
    if args.pool == "prefork":
        args.workers = args.workers or 1
        args.concurrency = args.concurrency or 2
    args.concurrency = args.concurrency or CONCURRENCY
    for name in ("n", "m", "workers"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(broker, name))
    for name in ("n", "m", "repeats", "workers", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


@contextmanager
def workers_stopped_on_exit() -> Iterator[None]:
    """Stop every worker on the way out, including on SIGTERM, SIGHUP or Ctrl-C."""

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        stop_all_workers()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(
        n=args.n,
        m=args.m,
        repeats=args.repeats,
        broker=args.broker_config,
        workers=args.workers,
        concurrency=args.concurrency,
        pool=args.pool,
        amqp_confirms=args.amqp_confirms,
        prefetch=args.prefetch,
        celery_poll_interval=None if args.celery_defaults else args.celery_poll_interval,
        celery_sqlite_defaults=args.celery_sqlite_defaults or args.celery_defaults,
    )
    frameworks = ["celeriac", *args.peers]
    for peer in args.peers:
        why = missing(FRAMEWORKS[peer])
        if why is not None:
            # A peer asked for (by default or by --peers) that cannot run fails the run: a table
            # that silently drops a column reads as a comparison that was made.
            console.print(f"[red]error:[/] {peer} {INSTALL_HINT} ({why})")
            return 2

    report = Report(
        settings={
            "broker": settings.broker.name,
            "n": settings.n,
            "m": settings.m,
            "repeats": settings.repeats,
            "workers": settings.workers,
            "concurrency": settings.concurrency,
            "pool": settings.pool,
            "amqp_confirms": settings.amqp_confirms if settings.broker.name == "amqp" else None,
            "results": settings.broker.celeriac_result_store or "the broker",
            "celeriac_prefetch": settings.prefetch,
            "frameworks": frameworks,
            "celery_poll_interval": (
                "celery defaults (1.0, get 0.5)"
                if settings.celery_poll_interval is None
                else settings.celery_poll_interval
            ),
            "celery_sqlite": "sqlalchemy defaults" if settings.celery_sqlite_defaults else "WAL, NORMAL",
        },
        machine=machine(),
    )
    console.print(
        f"[bold]{' vs '.join(frameworks)}[/] on {settings.broker.description}; "
        f"N={settings.n}, M={settings.m}, {settings.repeats} repeats, "
        f"{settings.workers} worker process(es) x {settings.concurrency} {settings.pool}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, commit {report.machine['commit'] or '?'}"
    )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with workers_stopped_on_exit(), broker_server(settings.broker), progress:
        overall = progress.add_task("runs", total=settings.repeats * len(frameworks))
        display = Display(progress, overall, progress.add_task("", total=1))
        for repeat in range(settings.repeats):
            order = [frameworks[index] for index in run_order(len(frameworks), repeat)]
            for framework in order:
                label = f"[{repeat + 1}/{settings.repeats}] {framework}"
                try:
                    result = run_once(framework, settings, display, label)
                except RunError as exc:
                    progress.stop()
                    console.print(f"[red]{label} failed:[/] {exc}")
                    return 1
                report.runs.setdefault(framework, []).append(result)
                confirmed = result.publish_confirmed_per_s
                progress.console.print(
                    f"{label}: publish {result.publish_per_s:,.0f}/s"
                    + ("" if confirmed is None else f" ({confirmed:,.0f}/s until confirmed)")
                    + f", drain {result.drain_per_s:,.0f}/s, "
                    f"round trip {result.round_trip_median_ms:.2f} ms (p95 {result.round_trip_p95_ms:.2f}), "
                    f"load {result.load1:.1f}"
                )
                progress.advance(overall)

    for table in render(report):
        console.print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
