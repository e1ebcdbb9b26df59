"""Remote control between Celery's tools and celeriac workers, and back, on Redis and RabbitMQ.

Commands and replies travel both ways. Requests share the ``celery.pidbox`` fan-out; replies
go as kombu's pidbox sends them, to the direct exchange ``reply.celery.pidbox`` under the
client's routing key (on Redis, LPUSHed onto the lists found through kombu's binding set),
so each side's client reads the other side's workers' answers from a queue of its own.
"""

from __future__ import annotations

import importlib
import secrets
import signal
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)


def test_celery_control_commands_reach_a_celeriac_worker(project: Any) -> None:
    hostname = f"w-{secrets.token_hex(3)}@interop"
    worker = project.celeriac_worker(hostname)
    project.command("-m", "celery", "-A", "celery_proj", "control", "shutdown", "-d", hostname, "-t", "1")
    assert worker.wait(timeout=30) == 0, worker.output()
    assert f"{hostname} shutting down" in worker.output()


def test_celeriac_control_commands_reach_a_celery_worker(project: Any) -> None:
    hostname = f"c-{secrets.token_hex(3)}@interop"
    worker = project.celery_worker(hostname)
    project.command("-m", "celeriac", "-A", "proj", "control", "shutdown", "-d", hostname)
    worker.wait(timeout=30)
    assert "Got shutdown from remote" in worker.output()


def test_celery_inspect_ping_gets_a_celeriac_workers_reply(project: Any) -> None:
    hostname = f"w-{secrets.token_hex(3)}@interop"
    project.celeriac_worker(hostname)
    output = project.command(
        "-m", "celery", "-A", "celery_proj", "inspect", "ping", "-d", hostname, "-t", "3"
    )
    assert "pong" in output, output


def test_celeriac_ping_gets_a_celery_workers_reply(project: Any) -> None:
    hostname = f"c-{secrets.token_hex(3)}@interop"
    worker = project.celery_worker(hostname)
    try:
        output = project.command(
            "-m", "celeriac", "-A", "proj", "control", "ping", "-d", hostname, "--timeout", "3"
        )
        assert "pong" in output, output
    finally:
        worker.signal(signal.SIGTERM)


def test_celery_inspect_gets_a_celeriac_workers_stats_in_process(project: Any, monkeypatch: Any) -> None:
    """Celery's ``app.control.inspect()``, as Flower calls it, with more than one reply each."""
    hostname = f"w-{secrets.token_hex(3)}@interop"
    project.celeriac_worker(hostname)
    monkeypatch.setenv("INTEROP_URL", project.url)
    monkeypatch.syspath_prepend(str(project.directory))
    celery_proj = importlib.import_module("celery_proj")
    try:
        inspect = celery_proj.app.control.inspect(destination=[hostname], timeout=3)
        assert inspect.ping() == {hostname: {"ok": "pong"}}
        stats = inspect.stats()[hostname]
        assert stats["sw_ident"] == "celeriac" and stats["pool"]["max-concurrency"] >= 1
        assert "proj.add" in inspect.registered()[hostname]
        control = celery_proj.app.control
        [limited] = control.rate_limit("proj.add", "10/m", destination=[hostname], reply=True, timeout=3)
        assert limited[hostname] == {"ok": "rate limit of proj.add set to 10/m"}
        # What celeriac has no command for is answered, not left to time out.
        [refused] = control.broadcast("memdump", destination=[hostname], reply=True, timeout=3)
        assert "unknown command" in refused[hostname]["error"]
        # Celery's pool_restart (with its reload arguments) reaches celeriac's, which says why
        # a thread pool cannot restart apart from the worker.
        [restart] = control.pool_restart(destination=[hostname], reply=True, timeout=3)
        assert "cannot restart apart from it" in restart[hostname]["error"]
    finally:
        celery_proj.app.close()
        sys.modules.pop("celery_proj", None)


def test_celeriac_ping_gets_a_celeriac_workers_reply(project: Any, client: Any) -> None:
    """celeriac to celeriac: the reply comes back through the same direct route."""
    hostname = f"w-{secrets.token_hex(3)}@interop"
    project.celeriac_worker(hostname)
    assert client.control.ping(destination=[hostname], timeout=5, limit=1) == [{hostname: {"ok": "pong"}}]


def test_celeriac_and_celery_workers_both_answer_one_ping(project: Any, client: Any) -> None:
    ours, theirs = f"w-{secrets.token_hex(3)}@interop", f"c-{secrets.token_hex(3)}@interop"
    project.celeriac_worker(ours)
    worker = project.celery_worker(theirs)
    try:
        replies = client.control.ping(destination=[ours, theirs], timeout=5, limit=2)
        assert sorted(next(iter(reply)) for reply in replies) == sorted([ours, theirs])
    finally:
        worker.signal(signal.SIGTERM)
