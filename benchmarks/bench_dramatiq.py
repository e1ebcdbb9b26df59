"""The Dramatiq side of the benchmark: one no-op actor whose results are stored.

On Redis, Dramatiq's ``RedisBroker``; on RabbitMQ (an ``amqp://`` URL), its ``RabbitmqBroker``
with its defaults (no publisher confirms), results on the Redis server of ``BENCH_RESULTS_URL``
(Dramatiq has no RabbitMQ result backend). The worker imports this module (``dramatiq
bench_dramatiq``); the benchmark builds its producer with :func:`make_broker` so that each
run gets its own key namespace (and, on RabbitMQ, its own vhost).
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

ACTOR_NAME = "bench_noop"


def noop() -> None:
    return None


def make_broker(url: str, key_prefix: str, results_url: str | None = None) -> tuple[Any, Any]:
    """A broker with the Results middleware on Redis, and the no-op actor.

    :param key_prefix: starts every key of the run (the broker's and the result backend's
        namespaces; result keys are written readable rather than hashed), so that runs
        share a server without seeing, or deleting, each other's keys.
    :param results_url: the Redis server of the results when ``url`` is RabbitMQ's.
    """
    backend = RedisBackend(
        url=results_url or url, namespace=f"{key_prefix}dramatiq-results", use_namespace_prefix_keys=True
    )
    broker: Any
    if url.startswith("amqp"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url)
    else:
        broker = RedisBroker(url=url, namespace=f"{key_prefix}dramatiq")
    broker.add_middleware(Results(backend=backend))
    dramatiq.set_broker(broker)
    actor = dramatiq.actor(noop, actor_name=ACTOR_NAME, broker=broker, store_results=True)
    return broker, actor


if "BENCH_BROKER_URL" in os.environ:
    broker, actor = make_broker(
        os.environ["BENCH_BROKER_URL"],
        os.environ["BENCH_KEY_PREFIX"],
        os.environ.get("BENCH_RESULTS_URL") or None,
    )
