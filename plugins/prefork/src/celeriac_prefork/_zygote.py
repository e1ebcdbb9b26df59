"""The zygote: a single-threaded process from which every child is forked.

A worker has threads by the time its pool starts (the timer, later the consumer, the settler
and the pool's supervisor), and ``fork()`` copies only the calling thread: a lock another
thread held at that instant stays locked forever in the child, and that includes C-level
locks (SQLite's allocator mutex, OpenSSL's) that Python cannot reset after a fork. So
children are never forked from the worker. They are forked from a zygote, which never starts
a thread; the first children and every replacement alike. The zygote is started either as

* a **forkserver** (the default when the CLI loaded the app): a fresh interpreter that
  imports the app by its import path, so nothing a thread of the worker held can be
  inherited at all; or
* a **fork** of the worker at pool start, for apps without an import path (built in a
  script or a test). Safe only while no other thread of the worker is inside such a lock.

Either way a child is a copy of a process with the app and its tasks already imported, so a
task starts at once. The parent hands the zygote one end of a fresh socket pair per child
(``SCM_RIGHTS``) and gets back the child's pid and, on Linux, a pidfd: killing through a
pidfd cannot hit an unrelated process that reused the pid, and the pidfd becomes readable
the moment the child exits.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import final

from attrs import frozen

from celeriac.plugin import CeleriacError

log = logging.getLogger("celeriac.worker")
_PID = struct.Struct("!i")
#: How long the parent waits for the zygote to answer one fork.
SPAWN_TIMEOUT = 30.0
#: How long a forkserver zygote may take to import the app.
READY_TIMEOUT = 120.0
READY = b"ready"


class ZygoteLostError(OSError):
    """The zygote process is gone (killed from outside); a new one must be started."""


class ZygoteError(CeleriacError):
    """The zygote could not be started (the app failed to load in a fresh interpreter)."""


@frozen(kw_only=True)
class Spawned:
    """A child just forked: its pid, its pidfd (None without pidfd support) and the parent's end."""

    pid: int
    pidfd: int | None
    conn: Connection


@final
class Zygote:
    """Client side of the fork helper.

    :param child_main: what a child runs, given its end of the socket pair, when the zygote
        is forked from this process; it may be any closure over the worker's objects.
    :param command: start the zygote as this fresh interpreter instead (a forkserver):
        it loads the app itself and receives its socket's descriptor as a last argument.
    """

    def __init__(self, child_main: Callable[[Connection], None], command: list[str] | None = None) -> None:
        self._child_main = child_main
        self._command = command
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def start(self) -> None:
        """Start the zygote: exec a fresh interpreter (``command``) or fork this process."""
        parent_end, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if self._command is not None:
            self._start_server(parent_end, zygote_end, self._command)
            return
        parent_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the zygote
            code = 1
            try:
                parent_end.close()
                multiprocessing.current_process().name = "prefork-zygote"
                reset_signals()
                serve_forks(zygote_end, self._child_main, parent_pid)
                code = 0
            except BaseException:
                log.exception("prefork zygote failed")
            finally:
                exit_now(code)
        zygote_end.close()
        parent_end.settimeout(SPAWN_TIMEOUT)
        self._sock, self.pid = parent_end, pid

    def _start_server(self, parent_end: socket.socket, zygote_end: socket.socket, command: list[str]) -> None:
        fd = zygote_end.fileno()
        try:
            self._proc = subprocess.Popen([*command, str(fd)], pass_fds=[fd])
        finally:
            zygote_end.close()
        parent_end.settimeout(READY_TIMEOUT)
        try:
            ready = parent_end.recv(16)
        except OSError:
            ready = b""
        if ready != READY:
            parent_end.close()
            code = self._proc.poll()
            self._proc.kill()
            self._proc.wait()
            raise ZygoteError(
                f"the prefork zygote could not load the app (exit code {code}); its error is in the log above"
            )
        parent_end.settimeout(SPAWN_TIMEOUT)
        self._sock, self.pid = parent_end, self._proc.pid

    def spawn(self) -> Spawned:
        """Fork one child from the zygote; raises :class:`ZygoteLostError` if it is gone."""
        if self._sock is None:
            raise ZygoteLostError("the zygote is not running")
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            socket.send_fds(self._sock, [b"F"], [child_end.fileno()])
            data, fds, _, _ = socket.recv_fds(self._sock, 64, 1)
        except OSError as exc:
            parent_end.close()
            raise ZygoteLostError(f"the zygote (pid {self.pid}) did not answer: {exc}") from exc
        finally:
            child_end.close()
        if len(data) != _PID.size:
            parent_end.close()
            for fd in fds:
                os.close(fd)
            raise ZygoteLostError(f"the zygote (pid {self.pid}) has exited")
        for fd in fds:
            os.set_inheritable(fd, False)
        return Spawned(
            pid=_PID.unpack(data)[0], pidfd=fds[0] if fds else None, conn=Connection(parent_end.detach())
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Close the zygote's channel (it exits on EOF) and reap it, killing it after ``timeout``."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        elif self.pid:
            _reap_within(self.pid, timeout)
        self.pid = 0


def serve_forks(sock: socket.socket, child_main: Callable[[Connection], None], parent_pid: int) -> None:
    children: set[int] = set()
    while True:
        ready, _, _ = select.select([sock], [], [], 0.5)
        _reap(children)
        if not ready:
            if os.getppid() != parent_pid:
                break  # the worker died without closing the channel
            continue
        try:
            data, fds, _, _ = socket.recv_fds(sock, 64, 1)
        except OSError:
            break
        if not data:
            break
        if fds:
            pid = _fork_child(sock, fds[0], child_main)
            children.add(pid)
            _answer(sock, pid)
    # Collect children that exit soon (the worker stops them before closing the channel);
    # the rest, left running after the worker died, are adopted by init.
    deadline = time.monotonic() + 1.0
    while children and time.monotonic() < deadline:
        time.sleep(0.01)
        _reap(children)


def _fork_child(sock: socket.socket, fd: int, child_main: Callable[[Connection], None]) -> int:
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            sock.close()
            child_main(Connection(fd))
            code = 0
        except BaseException:
            log.exception("prefork child %d failed", os.getpid())
        finally:
            exit_now(code)
    os.close(fd)
    return pid


def _answer(sock: socket.socket, pid: int) -> None:
    """Send the parent the child's pid and a pidfd opened before the child can be reaped."""
    pidfds = []
    if hasattr(os, "pidfd_open"):
        with contextlib.suppress(OSError):  # a kernel older than 5.3: the parent uses the pid
            pidfds.append(os.pidfd_open(pid))
    try:
        socket.send_fds(sock, [_PID.pack(pid)], pidfds)
    finally:
        for fd in pidfds:
            os.close(fd)


def _reap(children: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        if os.WIFSIGNALED(status):
            name = signal.Signals(os.WTERMSIG(status)).name
            log.info("prefork child %d exited: killed by signal %d (%s)", pid, os.WTERMSIG(status), name)
        elif os.WEXITSTATUS(status):
            log.info("prefork child %d exited with code %d", pid, os.WEXITSTATUS(status))


def _reap_within(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        time.sleep(0.01)


def reset_signals() -> None:
    # Ctrl-C reaches the whole foreground process group: the worker decides what happens to
    # running tasks (warm, then cold shutdown), so the zygote and its children ignore SIGINT.
    # So with SIGTERM, which systemd, container runtimes and `kill -TERM -PGID` send to the
    # whole group: an idle child or the zygote that died of it would be replaced during the
    # worker's warm shutdown. A child takes SIGTERM's default while it runs a request
    # (``serve``), so revoking with terminate still stops the task.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)


def exit_now(code: int) -> None:
    # os._exit: a forked copy must not run the worker's atexit handlers or flush its
    # inherited buffers a second time; what this process printed is flushed first.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed stream must not stop the exit
            stream.flush()
    os._exit(code)
