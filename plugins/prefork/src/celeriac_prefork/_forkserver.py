"""The forkserver zygote: ``python -m celeriac_prefork APP LOGLEVEL LIMITS FD``.

Runs in a fresh interpreter started by the worker: loads the app by its import path (as the
CLI does), then forks children on request. Arguments: the app's ``module:attribute``, the
log level, the JSON child limits, and the descriptor of its socket to the worker.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import socket
import sys
from typing import TYPE_CHECKING

from celeriac.plugin import ConfigError
from celeriac.plugin import Executor
from celeriac.plugin import load_app
from celeriac_prefork._child import Carrier
from celeriac_prefork._child import ChildLimits
from celeriac_prefork._child import serve
from celeriac_prefork._config import PreforkConfig
from celeriac_prefork._zygote import READY
from celeriac_prefork._zygote import exit_now
from celeriac_prefork._zygote import reset_signals
from celeriac_prefork._zygote import serve_forks

if TYPE_CHECKING:
    from celeriac.plugin import Celeriac


def command(import_path: str, loglevel: str, limits: ChildLimits) -> list[str]:
    """The command line that starts a forkserver zygote (its socket's descriptor is appended)."""
    payload = json.dumps(
        {
            "max_tasks": limits.max_tasks,
            "max_memory_kib": limits.max_memory_kib,
            "describe_results": limits.describe_results,
            "carry_records": limits.carry_records,
        }
    )
    return [sys.executable, "-m", "celeriac_prefork", import_path, loglevel, payload]


def zygote_command(
    settings: PreforkConfig, app: Celeriac | None, loglevel: str, limits: ChildLimits
) -> list[str] | None:
    """The forkserver's command line, or None to fork the zygote from this process."""
    import_path = app.import_path if app is not None else None
    if settings.start_method == "fork" or (settings.start_method == "auto" and import_path is None):
        return None
    if import_path is None:
        raise ConfigError(
            "[prefork] start_method = 'forkserver' needs the app's import path: start the worker "
            "with the command line (celeriac -A module:app worker), or use 'fork'"
        )
    return command(import_path, loglevel, limits)


def run(argv: list[str]) -> None:
    """Serve forks until the worker closes the socket, then exit without returning."""
    code = 1
    try:
        main(argv)
        code = 0
    except BaseException:
        logging.getLogger("celeriac.worker").exception("prefork forkserver failed")
    finally:
        exit_now(code)


def main(argv: list[str]) -> None:
    import_path, loglevel, payload, fd = argv
    sock = socket.socket(fileno=int(fd))
    parent_pid = os.getppid()
    multiprocessing.current_process().name = "prefork-zygote"
    reset_signals()
    # The same format as the worker's own log lines (celeriac._cli.main), on the same stderr.
    logging.basicConfig(
        level=loglevel.upper(),
        format="[%(asctime)s: %(levelname)s/%(processName)s] %(message)s",
        stream=sys.stderr,
    )
    app = load_app(import_path, None)
    _warm(app)
    limits = ChildLimits(**json.loads(payload))
    carrier = Carrier() if limits.carry_records else None
    execute = Executor(app, describe_results=limits.describe_results, hand_to=carrier)
    sock.send(READY)
    serve_forks(sock, lambda conn: serve(conn, execute, limits, app), parent_pid)


def _warm(app: Celeriac) -> None:
    """Build a result store here and close it, so that every child forked from this process
    has the store's modules loaded (importing redis-py alone took 0.6 s on the benchmark
    machine, paid by each child's first task before). The child builds its own store, with
    its own connections: nothing built here crosses the fork. A store that cannot be built
    fails in the child, where the task records why."""
    url = app.result_store_url
    if url is None:
        return
    try:
        app.plugins.result_store(url).factory(url, app.config).close()
    except Exception:
        logging.getLogger("celeriac.worker").debug("result store not built in the zygote", exc_info=True)
