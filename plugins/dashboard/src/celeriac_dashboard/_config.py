"""The ``[dashboard]`` configuration section."""

from __future__ import annotations

from attrs import field
from attrs import frozen
from attrs import validators

#: The plugin's TOML table, named after its entry point.
SECTION = "dashboard"
#: Flower's port, so bookmarks, firewall rules and scripts carry over.
DEFAULT_PORT = 5555


def _port(_: object, __: object, value: int) -> None:
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is not between 1 and 65535")


def _prefix(_: object, __: object, value: str) -> None:
    if value and (not value.startswith("/") or value.endswith("/")):
        raise ValueError(f"url_prefix {value!r} must start with '/' and not end with one, e.g. '/flower'")


def _pairs(_: object, __: object, value: tuple[str, ...]) -> None:
    for pair in value:
        user, sep, password = pair.partition(":")
        if not (user and sep and password):
            # The value itself is a secret: say which entry, not what it holds.
            raise ValueError(f"entry {value.index(pair) + 1} of passwords is not 'user:password'")


@frozen(kw_only=True)
class DashboardConfig:
    """``[dashboard]``: where ``celeriac dashboard`` listens, who may use it, what it keeps.

    :param address: the address to bind; loopback by default, so exposing the dashboard is
        a decision (then set ``passwords`` or ``tokens``).
    :param port: the port (Flower's, 5555).
    :param url_prefix: the path the dashboard is served under behind a reverse proxy
        (``/flower``: pages at ``/flower/``, API at ``/flower/api/...``).
    :param passwords: ``"user:password"`` pairs for HTTP basic auth. The key name keeps them
        masked in ``celeriac config`` and ``inspect conf``.
    :param tokens: bearer tokens (``Authorization: Bearer <token>``) for scripts.
    :param read_only: refuse every action (control, revoke, send, requeue, purge, schedule edits).
    :param history: the SQLite file that keeps tasks, their events and the graphs' samples
        across restarts; ``""`` keeps them in memory only.
    :param max_tasks: tasks kept in the history; the least recently updated go first.
    :param memory_tasks: tasks held in memory for folding events (the rest are read back
        from the history when an event for them arrives).
    :param queues: queues whose length is sampled, besides the default queue and the queues
        workers report consuming.
    :param sample_interval: seconds between two samples of queue lengths.
    :param inspect_timeout: seconds to wait for workers' replies to inspect and control.
    :param live_interval: seconds between two pushes of changes to open pages.
    """

    address: str = field(default="127.0.0.1", validator=validators.min_len(1))
    port: int = field(default=DEFAULT_PORT, validator=_port)
    url_prefix: str = field(default="", validator=_prefix)
    passwords: tuple[str, ...] = field(default=(), validator=_pairs)
    tokens: tuple[str, ...] = ()
    read_only: bool = False
    history: str = "celeriac-dashboard.sqlite3"
    max_tasks: int = field(default=100_000, validator=validators.gt(0))
    memory_tasks: int = field(default=10_000, validator=validators.gt(0))
    queues: tuple[str, ...] = ()
    sample_interval: float = field(default=5.0, validator=validators.gt(0))
    inspect_timeout: float = field(default=1.0, validator=validators.gt(0))
    live_interval: float = field(default=0.2, validator=validators.gt(0))
