"""The celeriac side of the benchmark: one no-op task, on the broker named by ``BENCH_BROKER_URL``.

The worker imports this module (``celeriac -A bench_celeriac worker``); the benchmark builds
its producer app with :func:`make_app` so that each run gets a fresh database file.
"""

from __future__ import annotations

import os
from typing import Any

from celeriac import Celeriac

TASK_NAME = "bench.noop"


def noop() -> None:
    return None


def make_app(
    broker: str,
    key_prefix: str | None = None,
    result_store: str | None = None,
    layout: str | None = None,
    confirms: str | None = None,
) -> Celeriac:
    """An app on ``broker`` with no config file and no ``CELERIAC_*`` overrides.

    :param key_prefix: on Redis, the prefix of every key the run creates (queues and results),
        so that runs share a server without seeing, or deleting, each other's keys.
    :param result_store: where results go when the broker is not a result store (``rpc://``
        on RabbitMQ); None: the broker's own.
    :param layout: on Redis, ``kombu`` for kombu's layout (lists, as Celery's), else streams.
    :param confirms: on RabbitMQ, ``[amqp] confirms`` (``async``, the default, or ``strict``).
    """
    redis: dict[str, Any] = {"key_prefix": key_prefix, "result_key_prefix": key_prefix} if key_prefix else {}
    if layout == "kombu":
        redis.update(layout="kombu", kombu_global_keyprefix=key_prefix or "")
    settings: dict[str, Any] = {"redis": redis} if redis else {}
    if confirms:
        settings["amqp"] = {"confirms": confirms}
    if result_store:
        settings["result_store"] = result_store
    if broker.startswith("sqs:"):  # moto's server, started by run.py
        endpoint = os.environ["BENCH_SQS_ENDPOINT"]
        settings["sqs"] = {"endpoint_url": endpoint, "queue_prefix": key_prefix or "", "region": "us-east-1"}
    app = Celeriac("bench", broker=broker, config=False, env={}, **settings)
    app.task(name=TASK_NAME)(noop)
    return app


if "BENCH_BROKER_URL" in os.environ:
    app = make_app(
        os.environ["BENCH_BROKER_URL"],
        os.environ.get("BENCH_KEY_PREFIX") or None,
        os.environ.get("BENCH_RESULT_STORE") or None,
        os.environ.get("BENCH_LAYOUT") or None,
        os.environ.get("BENCH_AMQP_CONFIRMS") or None,
    )
