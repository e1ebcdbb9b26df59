"""``--autoreload`` (development): restart the worker when the app's Python source changes.

The step watches, with watchfiles, the directories of the app's module and of every
registered task's module (nothing installed in site-packages); on a change it asks for a
warm shutdown marked as a restart, and the command line runs the same command again, so
every pool (threads, prefork, asyncio, gevent, eventlet, solo) starts on the new code.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from typing import ClassVar

from attrs import frozen

from celeriac._contract.bootsteps import StepContext
from celeriac._model.config import Config

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac

log = logging.getLogger("celeriac.worker")


def watched_paths(app: Celeriac) -> list[Path]:
    """The source directories of the app and its tasks, outside the installed packages."""
    installed = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib", "stdlib")}
    modules = {task.fn.__module__ for task in app.tasks.values()}
    if app.import_path:
        modules.add(app.import_path.partition(":")[0])
    paths: set[Path] = set()
    for name in modules:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if not file:
            continue
        directory = Path(file).resolve().parent
        if any(directory.is_relative_to(root) for root in installed):
            continue
        paths.add(directory)
    return sorted(paths)


@frozen
class AutoreloadStep:
    name: ClassVar[str] = "kernel.autoreload"
    requires: ClassVar[frozenset[str]] = frozenset({"kernel.consumer"})

    def enabled(self, config: Config) -> bool:
        return config.worker.autoreload

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        import watchfiles

        paths = watched_paths(ctx.app)
        stop = threading.Event()

        def watch() -> None:
            if not paths:
                return
            for changes in watchfiles.watch(*paths, watch_filter=watchfiles.PythonFilter(), stop_event=stop):
                changed = sorted({path for _, path in changes})
                log.warning("autoreload: %s changed; restarting the worker", ", ".join(changed))
                ctx.shutdown.request(restart=True)
                return

        log.info(
            "autoreload: watching %s",
            ", ".join(map(str, paths)) or "nothing (no source outside site-packages)",
        )
        thread = threading.Thread(target=watch, name="celeriac-autoreload", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)
