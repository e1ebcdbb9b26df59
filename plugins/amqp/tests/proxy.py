"""A loopback TCP proxy whose connections a test can cut, to lose a connection mid-stream.

``rabbitmqctl close_all_connections`` closes connections politely (a ``connection.close``
frame first); cutting the TCP stream here is what a network fault or a crashed broker
node does: both directions stop at once, whatever was in flight is lost.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from typing import final


@final
class Proxy:
    """Listens on a free loopback port and forwards every connection to ``upstream``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._closed = False
        self._flowing = threading.Event()  # cleared: nothing is forwarded, buffers fill up
        self._flowing.set()
        self.cuts = 0
        threading.Thread(target=self._accept, name="test-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._closed:
                    client.close()
                    server.close()
                    return
                self._pairs.append((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink, self._flowing), daemon=True).start()

    @property
    def connections(self) -> int:
        """Connections open through the proxy now."""
        with self._lock:
            return len(self._pairs)

    def cut(self) -> int:
        """Cut every open connection (both directions, at once); returns how many."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
            self.cuts += 1
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        return len(pairs)

    def pause(self) -> None:
        """Stop forwarding (both ways), the connections left open: what is sent piles up in
        the sockets' buffers, as behind a stalled network."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def through(self, url: str) -> str:
        """``url`` (an amqp:// URL of the upstream) with this proxy as its host and port."""
        parts = urllib.parse.urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._listener.close()
        self.cut()
        self._flowing.set()  # paused pumps see their sockets closed and end


def _pump(source: socket.socket, sink: socket.socket, flowing: threading.Event) -> None:
    try:
        while flowing.wait() and (data := source.recv(65536)):
            sink.sendall(data)
    except OSError:
        pass
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
