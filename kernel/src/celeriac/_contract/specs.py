"""Specs: how a plugin offers a component (a name or URL schemes plus a factory).

The kernel picks one by configured name or URL scheme, so a plugin is never constructed
unless used, and ``celeriac plugins`` can say what each offers without constructing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

from attrs import frozen

if TYPE_CHECKING:
    from celeriac._client.pools import PoolContext
    from celeriac._contract.protocols import Pool
    from celeriac._contract.protocols import ResultStore
    from celeriac._contract.protocols import ScheduleStore
    from celeriac._contract.protocols import Transport
    from celeriac._model.config import Config
    from celeriac._model.outcome import Outcome
    from celeriac._model.request import TaskRequest


@frozen(kw_only=True)
class TransportSpec:
    """A transport a plugin offers, picked by the scheme of the ``broker`` URL."""

    schemes: tuple[str, ...]
    factory: Callable[[str, Config], Transport]
    description: str = ""


@frozen(kw_only=True)
class ResultStoreSpec:
    """A result store a plugin offers, picked by the scheme of the ``result_store`` URL."""

    schemes: tuple[str, ...]
    factory: Callable[[str, Config], ResultStore]
    description: str = ""


@frozen(kw_only=True)
class PoolSpec:
    """An execution pool a plugin offers, picked by ``worker.pool``.

    The factory receives a :class:`~celeriac.plugin.PoolContext`: the config, the app, the
    executor that runs one request in this process, the revoked ids and the hooks. Pools that
    run requests elsewhere (child processes) build their own executor there. A factory taking
    ``(config, execute)``, as in API 1.0, is still called so, with a DeprecationWarning.
    """

    name: str
    factory: Callable[[PoolContext], Pool] | Callable[[Config, Callable[[TaskRequest], Outcome]], Pool]
    description: str = ""


@frozen(kw_only=True)
class ScheduleStoreSpec:
    """A beat schedule store a plugin offers, picked by URL scheme."""

    schemes: tuple[str, ...]
    factory: Callable[[str, Config], ScheduleStore]
    description: str = ""


@frozen(kw_only=True)
class ControlCommand:
    """A remote-control command a plugin adds to every worker.

    ``handler(mailbox, **arguments)`` runs in the worker's control thread and returns the
    reply (by convention ``{"ok": ...}``, ``{"error": ...}`` or data for inspect commands).
    """

    name: str
    handler: Callable[..., Any]
    description: str = ""


@frozen(kw_only=True)
class ScheduleType:
    """A kind of schedule for beat entries (``every``, ``cron`` ...), keyed by its TOML field."""

    key: str
    factory: Callable[[Any], Any]
    description: str = ""
