"""Workflows across frameworks on one Redis: chains, groups and chords sent by one,
executed by the other.

Celery encodes a chain in the first message's ``embed.chain`` (reversed) and a chord's body
in each header message's ``embed.chord``; celeriac reads and writes the same. A chord is
finished by whichever side runs its header: celeriac workers count parts in their own set
(reading the size Celery's client stores when the body carries none), Celery workers in
theirs (reading the size celeriac's client stores where they look for it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import chord
from celeriac import group
from celeriac import signature

from .conftest import WorkerProcess
from .test_celery_interop import celeriac_client  # noqa: F401 - fixtures shared with that module
from .test_celery_interop import celery_app  # noqa: F401
from .test_celery_interop import kombu_project  # noqa: F401
from .test_celery_interop import start_process  # noqa: F401

pytest.importorskip("celery")
pytestmark = [pytest.mark.slow, pytest.mark.integration]

CELERY_WORKER = [
    *(sys.executable, "-m", "celery", "-A", "celery_proj", "worker", "-P", "threads", "-c", "2"),
    *("-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
]


def test_celeriac_chain_and_group_run_on_a_celery_worker(
    celeriac_client: Celeriac,  # noqa: F811
    start_process: Callable[..., WorkerProcess],  # noqa: F811
) -> None:
    start_process(CELERY_WORKER, "ready.")
    workflow = signature("proj.add", (2, 2), app=celeriac_client) | signature(
        "proj.add", (4,), app=celeriac_client
    )
    last = workflow.delay()
    assert last.get(timeout=20) == 8
    assert last.parent is not None
    assert last.parent.get(timeout=5) == 4
    parallel = group(signature("proj.add", (i, i), app=celeriac_client) for i in range(5)).delay()
    assert parallel.get(timeout=20) == [0, 2, 4, 6, 8]


def test_celery_chain_runs_on_a_celeriac_worker(
    celery_app: Any,  # noqa: F811
    start_process: Callable[..., WorkerProcess],  # noqa: F811
) -> None:
    start_process([sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-c", "2"], "ready: consuming")
    from celery import chain as celery_chain

    last = celery_chain(
        celery_app.signature("proj.add", (2, 2)), celery_app.signature("proj.add", (4,))
    ).delay()
    assert last.get(timeout=20) == 8
    assert last.parent.get(timeout=5) == 4


def test_celeriac_chord_runs_on_a_celery_worker(
    celeriac_client: Celeriac,  # noqa: F811
    start_process: Callable[..., WorkerProcess],  # noqa: F811
) -> None:
    start_process(CELERY_WORKER, "ready.")
    header = [signature("proj.add", (i, i), app=celeriac_client) for i in range(5)]
    result = chord(header, signature("proj.total", app=celeriac_client)).delay()
    assert result.get(timeout=20) == 20
    assert result.parent.get(timeout=5) == [0, 2, 4, 6, 8]


def test_celery_chord_runs_on_a_celeriac_worker(
    celery_app: Any,  # noqa: F811
    start_process: Callable[..., WorkerProcess],  # noqa: F811
) -> None:
    start_process([sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-c", "2"], "ready: consuming")
    from celery import chord as celery_chord

    header = [celery_app.signature("proj.add", (i, i)) for i in range(5)]
    result = celery_chord(header)(celery_app.signature("proj.total"))
    assert result.get(timeout=20) == 20
