"""Serving a registry on ``/metrics`` over HTTP, with an error that names a busy port."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client import start_http_server

from celeriac.plugin import ConfigError


@contextlib.contextmanager
def serving(registry: CollectorRegistry, address: str, port: int, *, setting: str) -> Iterator[None]:
    """Serve ``registry`` on ``http://address:port/metrics`` from a daemon thread until exit.

    :param setting: the option or key that chose the port, named in errors.
    :raises ConfigError: when the address cannot be bound, e.g. the port is in use.
    """
    try:
        server, thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"cannot serve Prometheus metrics on {address}:{port}: port {port} is already in use "
                f"(set {setting} to a free port)"
            ) from exc
        raise ConfigError(
            f"cannot serve Prometheus metrics on {address}:{port} ({setting}): {exc.strerror or exc}"
        ) from exc
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
