"""The celeriac side of the benchmark: one no-op task, on the broker named by ``BENCH_BROKER_URL``.

The worker imports this module (``celeriac -A bench_celeriac worker``); the benchmark builds
its producer app with :func:`make_app` so that each run gets a fresh database file.
"""

from __future__ import annotations

import json
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
    """An app on ``broker`` with no config file and no ``CELERIAC_*`` overrides but one: only
    the plugins such a deployment installs enabled (``pip install "celeriac[redis,json,threads]"``,
    as the README says): its broker's and result store's, the JSON serializer and the two pools
    measured. The benchmark's environment has every plugin of the repository installed; left
    to load them all, the app would also run the tracing and event plugins' hooks, which a
    Celery or Dramatiq deployment measured beside it does not have either (see :func:`plugins_for`).

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
    enable = {"CELERIAC_PLUGINS__ENABLE": json.dumps(plugins_for(broker, result_store))}
    app = Celeriac("bench", broker=broker, config=False, env=enable, **settings)
    app.task(name=TASK_NAME)(noop)
    return app


def plugins_for(broker: str, result_store: str | None) -> list[str]:
    """The plugins a deployment on ``broker`` (results in ``result_store``) installs."""
    scheme = {
        "amqp": "amqp",
        "amqps": "amqp",
        "redis": "redis",
        "rediss": "redis",
        "sqlite": "sqlite",
        "sqs": "sqs",
    }
    enabled = [scheme[broker.split(":", 1)[0]], "json", "threads", "prefork"]
    # A benchmark of a plugin itself (plugins/events/benchmarks) names it here.
    enabled += [name for name in os.environ.get("BENCH_EXTRA_PLUGINS", "").split(",") if name]
    if result_store and result_store.startswith("redis") and "redis" not in enabled:
        enabled.append("redis")
    return enabled


if "BENCH_BROKER_URL" in os.environ:
    app = make_app(
        os.environ["BENCH_BROKER_URL"],
        os.environ.get("BENCH_KEY_PREFIX") or None,
        os.environ.get("BENCH_RESULT_STORE") or None,
        os.environ.get("BENCH_LAYOUT") or None,
        os.environ.get("BENCH_AMQP_CONFIRMS") or None,
    )
