"""A scripted HTTP server on 127.0.0.1 (a free port), and apps with a worker in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from attrs import field
from attrs import frozen

from celeriac import Celeriac
from celeriac import testing
from celeriac.testing import worker_thread

#: Fast, deterministic retries for the URL task in tests.
FAST_RETRIES = {"celeriac.webhook": {"retry_backoff": 0.05, "retry_jitter": False}}


@frozen(kw_only=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: Mapping[str, str] = field(factory=lambda: {"Content-Type": "text/plain"})
    delay: float = 0.0


@frozen(kw_only=True)
class Received:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    at: float


class Server:
    """Answers each path with its scripted replies in order (the last one repeats)."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.received: list[Received] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                with server._lock:
                    server.received.append(
                        Received(
                            method=self.command,
                            path=path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            at=time.monotonic(),
                        )
                    )
                    replies = server.routes.get(path) or [Reply(status=404, body=b"no route")]
                    reply = replies.pop(0) if len(replies) > 1 else replies[0]
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the client gave up (timeout tests)
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815 - http.server's names

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @staticmethod
    def reply(**fields: Any) -> Reply:
        """A scripted reply (the tests cannot import this module: pytest's importlib mode)."""
        return Reply(**fields)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, *replies: Reply) -> str:
        with self._lock:
            self.routes[path] = list(replies)
        return self.url(path)

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """:func:`celeriac.testing.wait_for`, failing with what the server received."""
        try:
            testing.wait_for(predicate, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; received {self.received!r}") from None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    instance = Server()
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def other_server() -> Iterator[Server]:
    """A second server: another origin (its own port) on 127.0.0.1."""
    instance = Server()
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def make_app() -> Iterator[Callable[..., Celeriac]]:
    """Build apps on their own in-memory broker, with fast URL-task retries; closed afterwards."""
    made: list[Celeriac] = []

    def make(**settings: Any) -> Celeriac:
        settings.setdefault("tasks", FAST_RETRIES)
        instance = Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=False, **settings)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.close()


@pytest.fixture
def app(make_app: Callable[..., Celeriac]) -> Celeriac:
    return make_app()


@pytest.fixture
def worker(app: Celeriac) -> Iterator[Celeriac]:
    """``app`` with a worker consuming in a thread."""
    with worker_thread(app, concurrency=4):
        yield app
