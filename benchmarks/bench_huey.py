"""The Huey side of the benchmark (Redis only): one no-op task whose result is stored.

The consumer imports this module (``huey_consumer bench_huey.huey``); the benchmark builds its
producer with :func:`make_huey` so that each run gets its own keys.
"""

from __future__ import annotations

import os
import re
from typing import Any


def huey_name(key_prefix: str) -> str:
    """Huey's keys are ``huey.<kind>.<name>``: the run's prefix goes into the name."""
    return re.sub("[^A-Za-z0-9_]", "_", f"{key_prefix}huey")


def make_huey(url: str, key_prefix: str) -> tuple[Any, Any]:
    """A Redis Huey storing every result (``store_none``: the task returns None) and waking
    ``result.get(blocking=True)`` through a per-result list (``notify_result``), Huey's
    low-latency option; without it ``get`` polls from 50 ms up."""
    from huey import RedisHuey

    huey = RedisHuey(huey_name(key_prefix), url=url, results=True, store_none=True, notify_result=True)
    task = huey.task(name="bench_noop")(noop)
    return huey, task


def noop() -> None:
    return None


if "BENCH_BROKER_URL" in os.environ:
    huey, task = make_huey(os.environ["BENCH_BROKER_URL"], os.environ["BENCH_KEY_PREFIX"])
