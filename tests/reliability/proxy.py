"""A TCP proxy on loopback whose connections a test can cut: a broker connection dropped mid-run."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import final

from celeriac.testing import free_port


@final
class CuttableProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target``.

    :meth:`cut` closes every open connection and refuses new ones (the listening socket is
    closed) until :meth:`restore`: what a client sees when the network between it and the
    server goes away and comes back.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = self._listen_below_ephemeral()
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._accepting = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
        self._accepting.start()
        self.cuts = 0

    @classmethod
    def _listen_below_ephemeral(cls) -> socket.socket:
        """A listener on a port below the kernel's ephemeral range (:func:`free_port`),
        which it never hands to an outgoing connection: after :meth:`cut` the port stays
        free for :meth:`restore`."""
        for _ in range(20):
            with contextlib.suppress(OSError):  # taken since free_port() looked: another
                return cls._listen(free_port())
        raise RuntimeError("no free port to listen on")

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut() or close()
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)  # the timeout was for connecting: an idle broker is no fault
            with self._lock:
                self._open.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                with self._lock:
                    self._open.discard(sock)

    def cut(self) -> None:
        """Drop every connection (a reset) and stop accepting."""
        self.cuts += 1
        # close() alone does not wake the thread blocked in accept(): it would take one more
        # connection. shutdown() does (on Linux), so nothing is accepted once cut.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            dropped, self._open = list(self._open), set()
        for sock in dropped:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        """Accept connections again on the same port."""
        self._listener = self._listen(self.port)
        self._accepting = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
        self._accepting.start()

    def close(self) -> None:
        self._stopped.set()
        self.cut()


@contextlib.contextmanager
def cuttable_proxy(target: int) -> Iterator[CuttableProxy]:
    proxy = CuttableProxy(target)
    try:
        yield proxy
    finally:
        proxy.close()
