"""celeriac's configuration from a Flask app's config.

Keys, lowest precedence first: the TOML file (``celeriac.toml``, ``[tool.celeriac]``, or the
file ``CELERIAC_CONFIG_FILE`` names), ``CELERIAC_*`` environment variables, the ``CELERIAC``
dict of the Flask config (the keys of ``celeriac.toml``, tables as dicts), then Flask config
keys ``CELERIAC_<KEY>`` (``__`` separates nesting: ``CELERIAC_WORKER__CONCURRENCY``; case
does not matter, as for environment variables), one setting each, as
``app.config.from_prefixed_env()`` (``FLASK_CELERIAC_BROKER``) or a config class sets them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from celeriac import ConfigError

#: The Flask config key holding a dict of celeriac.toml keys.
TABLE_KEY = "CELERIAC"
#: The Flask config key naming the TOML file to read (a path, or False for none).
FILE_KEY = "CELERIAC_CONFIG_FILE"
PREFIX = "CELERIAC_"
#: Parameters of ``Celeriac()`` that are no celeriac.toml key: refused, never passed on.
_NOT_KEYS = frozenset({"config", "env", "main", "autoload_plugins"})


@frozen(kw_only=True)
class FlaskSettings:
    """What ``Celeriac()`` is given for one Flask app: the file to read and the settings over it."""

    file: str | os.PathLike[str] | bool | None
    settings: Mapping[str, Any]


def read_flask_config(config: Mapping[str, Any]) -> FlaskSettings:
    """The celeriac settings in a Flask config (``app.config``).

    Raises :class:`~celeriac.ConfigError` naming the Flask key when one has the wrong shape.
    """
    table = config.get(TABLE_KEY, {})
    if not isinstance(table, Mapping):
        raise ConfigError(
            f"Flask config {TABLE_KEY} must be a dict of celeriac.toml keys, got {type(table).__name__}"
        )
    settings: dict[str, Any] = {}
    for key, value in table.items():
        _set(settings, [str(key)], value)
    for key, value in config.items():
        if key.startswith(PREFIX) and key != FILE_KEY:
            _set(settings, key[len(PREFIX) :].lower().split("__"), _lowered(value))
    file = config.get(FILE_KEY)
    if file is not None and not isinstance(file, str | os.PathLike | bool):
        raise ConfigError(f"Flask config {FILE_KEY} must be a path or False, got {file!r}")
    return FlaskSettings(file=file, settings=_unshadowed(settings))


def _set(target: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``value`` at ``path``, merging dicts into what is there (a table from ``CELERIAC``
    and a ``CELERIAC_WORKER__POOL`` key both land in ``worker``)."""
    for part in path[:-1]:
        existing = target.get(part)
        if not isinstance(existing, dict):
            existing = target[part] = {}
        target = existing
    last = path[-1]
    if isinstance(value, Mapping):
        existing = target.get(last)
        merged: dict[str, Any] = dict(existing) if isinstance(existing, dict) else {}
        for key, item in value.items():
            _set(merged, [str(key)], item)
        target[last] = merged
    else:
        target[last] = value


def _lowered(value: Any) -> Any:
    """Keys under a ``CELERIAC_<KEY>`` key are as case-blind as the key itself (and as the
    ``CELERIAC_*`` environment): ``from_prefixed_env()`` makes ``FLASK_CELERIAC_WORKER__POOL``
    into ``{"CELERIAC_WORKER": {"POOL": ...}}``."""
    if isinstance(value, Mapping):
        return {str(key).lower(): _lowered(item) for key, item in value.items()}
    return value


def _unshadowed(settings: dict[str, Any]) -> dict[str, Any]:
    """The ``[plugins]`` table passed dotted (``plugins.disable``): ``Celeriac(plugins=...)``
    takes plugin objects."""
    result: dict[str, Any] = {}
    for key, value in settings.items():
        if key in _NOT_KEYS:
            raise ConfigError(f"Flask config: {key!r} is not a celeriac setting (the keys of celeriac.toml)")
        if key == "plugins":
            if not isinstance(value, Mapping):
                raise ConfigError(f"Flask config: celeriac's 'plugins' must be a table, got {value!r}")
            result.update({f"plugins.{sub}": item for sub, item in value.items()})
        else:
            result[key] = value
    return result
