"""What a migration produces: celeriac keys with their origin, suggestions, and what has no equivalent."""

from __future__ import annotations

from typing import Any

from attrs import define
from attrs import field
from attrs import frozen

#: A key's place in the TOML document: ``("worker", "concurrency")``, ``("tasks", "proj.add", "queue")``.
Path = tuple[str, ...]


@frozen(kw_only=True)
class Suggestion:
    """A line left commented out in ``table``: a Celery default that differs from celeriac's,
    or a value the user has to complete. Uncommenting it keeps Celery's behaviour."""

    table: Path
    key: str
    value: Any
    why: str


@frozen(kw_only=True)
class Unmapped:
    """A Celery setting with no celeriac equivalent, as set in the app, and why."""

    setting: str
    value: str
    why: str


@define
class Migration:
    """The celeriac configuration built from one Celery app, and what could not be carried over.

    Every Celery setting the app changes ends in :attr:`values` (with its origin in
    :attr:`origins`) or in :attr:`unmapped`; :mod:`celeriac_migrate._render` prints both.
    """

    values: dict[str, Any] = field(factory=dict)
    #: The comment after a key: the Celery setting it comes from, and anything to check.
    origins: dict[Path, str] = field(factory=dict)
    suggestions: list[Suggestion] = field(factory=list)
    unmapped: list[Unmapped] = field(factory=list)

    def put(self, path: Path, value: Any, origin: str) -> None:
        """Set the key at ``path``; a second value for one key replaces the first (and its origin)."""
        table = self.values
        for part in path[:-1]:
            table = table.setdefault(part, {})
        table[path[-1]] = value
        self.origins[path] = origin

    def get(self, path: Path) -> Any:
        """The value at ``path``, or None."""
        table: Any = self.values
        for part in path:
            if not isinstance(table, dict) or part not in table:
                return None
            table = table[part]
        return table

    def suggest(self, table: Path, key: str, value: Any, why: str) -> None:
        self.suggestions.append(Suggestion(table=table, key=key, value=value, why=why))

    def skip(self, setting: str, value: Any, why: str) -> None:
        """Record a setting celeriac has no equivalent for (``value`` masked by the caller if secret)."""
        self.unmapped.append(Unmapped(setting=setting, value=_short_repr(value), why=why))


def _short_repr(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
