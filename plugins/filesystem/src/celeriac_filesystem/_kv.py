"""A :class:`~celeriac.plugin.KeyValue` in one directory: a file per key.

- A value is written to a temporary file in the same directory and renamed over the key's
  file (``os.replace``, atomic on POSIX), so a reader sees the old value or the new one,
  never part of one; ``fsync = true`` also syncs it to disk before the rename.
- A file expires ``result_expires`` seconds after its modification time, as Celery's
  filesystem backend has it (its cleanup deletes files older than that), so files written by
  either expire alike. A value given another expiry gets the modification time that makes
  it expire then (set before the rename, so a value and its expiry appear together); one
  that never expires gets a time far in the future. With ``result_expires`` 0 nothing
  expires. Readers ignore expired files; :meth:`sweep` deletes them.
- A chord's set is a file of member lines, changed under ``flock`` (other processes) and a
  lock of this process (its threads), so concurrent adds count one at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import secrets
import threading
import time
from collections.abc import Iterator
from collections.abc import Sequence
from io import BufferedRandom
from pathlib import Path
from typing import final
from urllib.parse import quote

from celeriac.plugin import ConfigError
from celeriac.plugin import StoreUnreachableError

#: Modification time of a file that never expires: the year 2200.
NEVER = 7258118400.0
_TEMP = ".tmp-"
#: A temporary file older than this was left by a writer that died before its rename.
_STALE_TEMP = 3600.0


def directory_of(url: str) -> Path:
    """The directory of a ``file:///absolute/path`` (or ``file://localhost/...``) URL."""
    if url.startswith("file://localhost/"):
        path = url[len("file://localhost") :]
    elif url.startswith("file://"):
        path = url[len("file://") :]
    else:
        raise ConfigError(f"result_store {url!r}: a directory is given as file:///absolute/path")
    if not path:
        raise ConfigError(f"result_store {url!r}: no directory in the URL (file:///absolute/path)")
    return Path(path)


def file_name(key: str) -> str:
    """A key as a file name: ``celery-task-meta-<uuid>`` as it is (Celery's name), anything
    that could leave the directory or hide the file (``/``, a leading dot) quoted."""
    name = quote(key, safe="-_.@+=")
    return "%2E" + name[1:] if name.startswith(".") else name


@final
class FilesystemKeyValue:
    """Keys as files of ``directory`` (created on first use).

    :param url: the store's URL, for error messages.
    :param expires: ``result_expires``: a file expires this many seconds after its
        modification time; None: files never expire.
    :param fsync: sync each value to disk before renaming it into place (survives power loss).
    """

    def __init__(self, url: str, directory: Path, *, expires: float | None, fsync: bool = False) -> None:
        self.url = url
        self.directory = directory
        self.horizon = expires
        self.fsync = fsync
        self._root = str(directory)
        self._ready = False
        self._lock = threading.Lock()
        self._temp_prefix = ""
        self._temps = itertools.count()

    def _path(self, key: str) -> str:
        if not self._ready:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                probe = self.directory / f"{_TEMP}probe-{secrets.token_hex(4)}"
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise StoreUnreachableError(self.url, f"the directory cannot be written: {exc}") from exc
            self._ready = True
            # Temporary names: unique per process (pid, which a forked child changes) and call.
            self._temp_prefix = os.path.join(self._root, f"{_TEMP}{secrets.token_hex(4)}-")
        return os.path.join(self._root, file_name(key))

    def get(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as file:
                if self._expired(os.fstat(file.fileno()).st_mtime, time.time()):
                    return None
                return file.read()
        except FileNotFoundError:
            return None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self.get(key) for key in keys]

    def set(self, key: str, value: bytes, expires: float | None) -> None:
        path = self._path(key)
        temp = f"{self._temp_prefix}{os.getpid()}-{next(self._temps)}"
        try:
            with open(temp, "wb") as file:
                file.write(value)
                if self.fsync:
                    file.flush()
                    os.fsync(file.fileno())
            if self.horizon is not None and expires != self.horizon:  # else writing set the right time
                stamp = self._stamp(expires, time.time())
                os.utime(temp, (stamp, stamp))
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        if self.fsync:
            self._sync_directory()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        if "\n" in member:
            raise ValueError(f"a set member cannot hold a newline: {member!r}")
        entry = member.encode() + b"\n"
        with self._locked(self._path(key)) as file:
            now = time.time()
            stat = os.fstat(file.fileno())
            members = [] if self._expired(stat.st_mtime, now) else file.read().splitlines(keepends=True)
            if entry in members:
                return 0
            if not members:
                file.truncate(0)
            file.seek(0, os.SEEK_END)
            file.write(entry)
            file.flush()
            if self.fsync:
                os.fsync(file.fileno())
            stamp = self._stamp(expires, now)
            os.utime(file.fileno(), (stamp, stamp))
            return len(members) + 1

    def _expired(self, mtime: float, now: float) -> bool:
        return self.horizon is not None and mtime + self.horizon <= now

    def _stamp(self, expires: float | None, now: float) -> float:
        """The modification time that makes a file expire ``expires`` seconds from ``now``."""
        if expires is None or self.horizon is None:
            return NEVER
        return now + expires - self.horizon

    @contextlib.contextmanager
    def _locked(self, path: str) -> Iterator[BufferedRandom]:
        with self._lock, open(path, "a+b") as file:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            try:
                file.seek(0)
                yield file
            finally:
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)

    def sweep(self) -> int:
        """Delete files whose time has passed, and temporary files left by dead writers."""
        now = time.time()
        deleted = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                mtime = entry.stat().st_mtime
                if entry.name.startswith(_TEMP):
                    expired = mtime < now - _STALE_TEMP
                else:
                    expired = self._expired(mtime, now)
                if expired and entry.is_file():
                    os.unlink(entry.path)
                    deleted += 1
            except FileNotFoundError:
                continue  # deleted or replaced meanwhile by another process
        return deleted

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Nothing is held open between calls."""
