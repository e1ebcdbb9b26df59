"""Celery's worker flags, mapped onto the configuration keys they stand for.

``celeriac worker --max-tasks-per-child 100`` sets ``[prefork] max_tasks_per_child``: the
values travel to the app in ``$CELERIAC_FLAGS`` (set before the app's module is imported,
so the app, and the pool children that import it again, read them as their top layer) and
``celeriac config`` names the flag as each value's source.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import TypeVar

import click
from attrs import frozen

from celeriac._model.config import FLAGS_ENV

F = TypeVar("F", bound=Callable[..., Any])


@frozen
class Flag:
    """A command-line flag and the configuration key it sets."""

    param: str
    flag: str
    key: str


FLAGS = (
    Flag("autoscale", "--autoscale", "prefork.autoscale"),
    Flag("max_tasks_per_child", "--max-tasks-per-child", "prefork.max_tasks_per_child"),
    Flag("max_memory_per_child", "--max-memory-per-child", "prefork.max_memory_per_child"),
    Flag("time_limit", "--time-limit", "task_defaults.time_limit"),
    Flag("soft_time_limit", "--soft-time-limit", "task_defaults.soft_time_limit"),
    Flag("without_heartbeat", "--without-heartbeat", "worker.heartbeat"),
    Flag("autoreload", "--autoreload", "worker.autoreload"),
)

#: Celery flags for things celeriac does not have: accepted, with the reason printed.
NOTHING_TO_DO = {
    "without_gossip": "--without-gossip: celeriac workers do not gossip; nothing to turn off",
    "without_mingle": "--without-mingle: celeriac workers do not mingle at start-up; nothing to turn off",
}


def worker_flag_options(command: F) -> F:
    """The flags, as click options, for ``worker`` and ``config``."""
    options = [
        click.option(
            "--autoscale",
            metavar="MAX,MIN",
            help="Prefork children between MIN and MAX ([prefork] autoscale).",
        ),
        click.option("--max-tasks-per-child", type=int, help="Replace a prefork child after N tasks."),
        click.option(
            "--max-memory-per-child", type=int, help="Replace a prefork child above N KiB resident."
        ),
        click.option(
            "--time-limit", type=float, help="Hard time limit of every task, seconds ([task_defaults])."
        ),
        click.option("--soft-time-limit", type=float, help="Soft time limit of every task, seconds."),
        click.option(
            "-O",
            "optimization",
            type=click.Choice(["fair", "default"]),
            help="Accepted for Celery: celeriac's pools hand a task to a child only when it is free "
            "(prefork queues behind short tasks only; docs/pools.md).",
        ),
        click.option(
            "--without-heartbeat", is_flag=True, default=None, help="Send no worker-heartbeat events."
        ),
        click.option(
            "--without-gossip", is_flag=True, default=None, help="Accepted for Celery: no gossip here."
        ),
        click.option(
            "--without-mingle", is_flag=True, default=None, help="Accepted for Celery: no mingle here."
        ),
        click.option(
            "--autoreload", is_flag=True, default=None, help="Restart the pool when the app's source changes."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def flag_settings(params: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
    """``{"prefork.max_tasks_per_child": (100, "--max-tasks-per-child")}`` for the flags given."""
    settings: dict[str, tuple[Any, str]] = {}
    for flag in FLAGS:
        value = params.get(flag.param)
        if value is None:
            continue
        if flag.param == "without_heartbeat":
            value = not value
        settings[flag.key] = (value, flag.flag)
    return settings


@contextlib.contextmanager
def applied_flags(params: Mapping[str, Any], note: Callable[[str], None]) -> Iterator[None]:
    """Hand the flags' settings to the app loaded inside (``$CELERIAC_FLAGS``, restored on
    leaving), and print a note for each flag celeriac has nothing to do for."""
    for param, message in NOTHING_TO_DO.items():
        if params.get(param):
            note(f"note: {message}")
    settings = flag_settings(params)
    before = os.environ.get(FLAGS_ENV)
    if settings:
        os.environ[FLAGS_ENV] = json.dumps({key: list(pair) for key, pair in settings.items()})
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(FLAGS_ENV, None)
        else:
            os.environ[FLAGS_ENV] = before


def expand_hostname(name: str) -> str:
    """Celery's node name variables: ``%h`` host name with domain, ``%n`` without, ``%d``
    the domain, ``%%`` a percent sign (``-n w1@%h`` -> ``w1@web1.example.com``)."""
    host = socket.gethostname()  # as Celery: the name the host gives itself, domain and all
    short, _, domain = host.partition(".")
    out: list[str] = []
    index = 0
    while index < len(name):
        char = name[index]
        if char == "%" and index + 1 < len(name):
            code = name[index + 1]
            replacement = {"h": host, "n": short, "d": domain, "%": "%"}.get(code)
            if replacement is not None:
                out.append(replacement)
                index += 2
                continue
        out.append(char)
        index += 1
    return "".join(out)
