"""Worker state that must outlive one message: the ids of revoked tasks.

Bounded (the newest ``maxlen`` ids, none older than ``expires`` seconds) so a busy
cluster cannot grow it without limit, as Celery's ``LimitedSet``. With
``worker.statedb`` set it is saved to that file and loaded at the next start, so a
revoke survives a worker restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from attrs import frozen

from celeriac._contract.bootsteps import StepContext
from celeriac._model.config import Config
from celeriac._worker.keys import REVOKED

log = logging.getLogger("celeriac.worker.state")


class RevokedSet:
    """Task ids not to run, with the time each was revoked."""

    def __init__(self, maxlen: int = 50_000, expires: float = 10_800.0) -> None:
        self.maxlen = maxlen
        self.expires = expires
        self._ids: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._ids)

    def add(self, task_ids: Iterable[str], when: float | None = None) -> None:
        stamp = time.time() if when is None else when
        with self._lock:
            for task_id in task_ids:
                self._ids[task_id] = stamp
                self._ids.move_to_end(task_id)
            self._prune(time.time())

    def _prune(self, now: float) -> None:
        while self._ids and (
            len(self._ids) > self.maxlen or next(iter(self._ids.values())) < now - self.expires
        ):
            self._ids.popitem(last=False)

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-write leaves the previous file."""
        with self._lock:
            data = {"revoked": dict(self._ids)}
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)

    def load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable worker state file %s: %s", path, exc)
            return
        for task_id, when in sorted(data.get("revoked", {}).items(), key=lambda item: item[1]):
            self.add([task_id], when)


@frozen
class StateStep:
    name: ClassVar[str] = "kernel.state"
    requires: ClassVar[frozenset[str]] = frozenset()

    def enabled(self, config: Config) -> bool:
        return True

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        revoked = RevokedSet()
        path = Path(ctx.config.worker.statedb) if ctx.config.worker.statedb else None
        if path is not None:
            revoked.load(path)
        ctx.provide(REVOKED, revoked)
        try:
            yield
        finally:
            if path is not None:
                revoked.save(path)
