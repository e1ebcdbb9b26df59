"""The Dramatiq side of the benchmark (Redis only): one no-op actor whose results are stored.

The worker imports this module (``dramatiq bench_dramatiq``); the benchmark builds its producer
with :func:`make_broker` so that each run gets its own key namespace.
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


def make_broker(url: str, key_prefix: str) -> tuple[RedisBroker, Any]:
    """A Redis broker with the Results middleware on the same server, and the no-op actor.

    :param key_prefix: starts every key of the run (the broker's and the result backend's
        namespaces; result keys are written readable rather than hashed), so that runs
        share a server without seeing, or deleting, each other's keys.
    """
    backend = RedisBackend(url=url, namespace=f"{key_prefix}dramatiq-results", use_namespace_prefix_keys=True)
    broker = RedisBroker(url=url, namespace=f"{key_prefix}dramatiq")
    broker.add_middleware(Results(backend=backend))
    dramatiq.set_broker(broker)
    actor = dramatiq.actor(noop, actor_name=ACTOR_NAME, broker=broker, store_results=True)
    return broker, actor


if "BENCH_BROKER_URL" in os.environ:
    broker, actor = make_broker(os.environ["BENCH_BROKER_URL"], os.environ["BENCH_KEY_PREFIX"])
