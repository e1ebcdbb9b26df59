"""What every rule works with: the Celery app's settings and the migration being built."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any

from attrs import define

from celeriac_migrate._model import Migration
from celeriac_migrate._model import Path
from celeriac_migrate._urls import mask

if TYPE_CHECKING:
    from celery import Celery


@define
class Context:
    """The settings the Celery app sets (by new name), Celery's defaults, and the output.

    :param with_secrets: print passwords as they are, instead of masked.
    """

    app: Celery
    settings: Mapping[str, Any]
    defaults: Mapping[str, Any]
    migration: Migration
    with_secrets: bool = False
    #: Which celeriac plugin serves the broker (``"redis"``, ``"amqp"``, ``"sqlite"`` ...);
    #: known once the broker URL was translated.
    broker_kind: str | None = None
    #: The Celery setting whose rule runs now: the origin written after the keys it sets.
    current: str = ""

    def is_set(self, key: str) -> bool:
        return key in self.settings

    def value(self, key: str) -> Any:
        """The effective value: what the app sets, else Celery's default."""
        return self.settings[key] if key in self.settings else self.defaults.get(key)

    def put(self, path: Path, value: Any, note: str = "") -> None:
        """Set a celeriac key; its comment names the current Celery setting, then ``note``."""
        origin = "; ".join(part for part in (self.current, note) if part)
        self.migration.put(path, value, origin)

    def skip(self, setting: str, why: str, value: Any = None) -> None:
        shown = self.settings.get(setting) if value is None else value
        if isinstance(shown, str) and not self.with_secrets:
            shown = mask(shown)
        self.migration.skip(setting, shown, why)

    def suggest(self, table: Path, key: str, value: Any, why: str) -> None:
        self.migration.suggest(table, key, value, why)

    def url(self, url: str) -> str:
        return url if self.with_secrets else mask(url)


#: A rule carries one Celery setting over: it reads the value and writes keys, or says why not.
Rule = Callable[[Context, Any], None]


def to(path: Path, convert: Callable[[Any], Any] = lambda value: value) -> Rule:
    """A rule for a setting that is one celeriac key: ``to(("worker", "concurrency"))``."""

    def rule(context: Context, value: Any) -> None:
        context.put(path, convert(value))

    return rule


def none(why: str) -> Rule:
    """A rule for a setting with no celeriac equivalent: it is listed with ``why``."""

    def rule(context: Context, value: Any) -> None:
        raise NoEquivalent(why)

    return rule


class NoEquivalent(Exception):  # noqa: N818 - a verdict, not an error
    """Raised by a rule: the setting is listed as having no equivalent, for this reason."""


def seconds(value: Any) -> float | int:
    """A Celery duration (seconds, or a ``timedelta``) as a TOML number, whole when it can be."""
    total = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return int(total) if float(total).is_integer() else total


def as_list(value: Any) -> list[Any]:
    """A Celery list setting (a string with commas, a tuple, a list or a set) as a list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value)
