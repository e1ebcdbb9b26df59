"""Test support: a memcached server of the test's own, started from Debian's ``memcached`` on a
free loopback port and stopped by its PID. Importing this module starts nothing."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

__all__ = ["MemcachedServer", "free_port", "memcached_server"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MemcachedServer:
    """One ``memcached`` process on ``127.0.0.1:port``; :meth:`restart` keeps the port."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.url = f"memcached://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        command = [self.binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "64", "-t", "2"]
        command += ["-u", "root"]  # refused as root without it; ignored otherwise
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    error = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise RuntimeError(f"memcached exited with {self.process.returncode}: {error}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"memcached did not listen on {self.port} within {timeout} s"
                    ) from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def memcached_server() -> Iterator[MemcachedServer]:
    """A running memcached of this test's own; skipped with the reason when Debian's
    ``memcached`` is not installed (failed under ``CI=true``: ``.ci/run`` installs it)."""
    binary = shutil.which("memcached") or (
        "/usr/bin/memcached" if shutil.which("/usr/bin/memcached") else None
    )
    if binary is None:
        from celeriac.testing import service_unreachable

        service_unreachable("memcached is not installed (apt-get install memcached)")
    server = MemcachedServer(binary, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
