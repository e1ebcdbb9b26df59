"""A migration as celeriac.toml text: keys with their origin, suggestions, what is left behind."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError
from importlib.metadata import distribution
from typing import Any

import tomlkit
from tomlkit.items import Item
from tomlkit.items import Table

from celeriac_migrate._model import Migration
from celeriac_migrate._model import Path

#: Top-level keys in the order docs/configuration.md lists them; tables after them.
_TOP = [
    "imports",
    "broker",
    "result_store",
    "serializer",
    "result_serializer",
    "accept",
    "result_accept",
    "compression",
    "default_queue",
    "default_priority",
    "result_expires",
    "acks_late",
    "task_always_eager",
    "task_eager_propagates",
    "visibility_timeout",
]
_TABLES = ("worker", "task_defaults", "tasks", "task_routes", "beat")
#: Tables whose sub-tables are written as their own ``[a."b"]`` headers.
_SUPER = {("tasks",), ("beat", "schedule"), ("amqp", "queues")}
_SERIALIZERS = {
    "pickle": "pickle",
    "application/x-python-serialize": "pickle",
    "yaml": "yaml",
    "application/x-yaml": "yaml",
    "msgpack": "msgpack",
    "application/x-msgpack": "msgpack",
    "auth": "signing",
    "application/data": "signing",
}
_WIDTH = 100


def render(migration: Migration, *, source: str) -> str:
    """The TOML document for ``migration`` of the Celery app named ``source``."""
    doc = tomlkit.document()
    needed = needed_plugins(migration.values)
    missing = [name for name in needed if not _installed(name)]
    header = [
        f"celeriac.toml for the Celery app {source}, written by `celeriac migrate celery`.",
        "After each key: the Celery setting it comes from. Commented-out keys keep a Celery",
        "default that differs from celeriac's: uncomment them to keep Celery's behaviour. The",
        "end lists every setting that has no celeriac equivalent, and why.",
        "",
        f'Plugins it needs: pip install "celeriac[{",".join(n.removeprefix("celeriac-") for n in needed)}]"',
    ]
    if missing:
        header.append(f"(not installed here: {', '.join(missing)})")
    for line in header:
        doc.add(tomlkit.comment(line) if line else tomlkit.comment(""))
    doc.add(tomlkit.nl())
    values = migration.values
    for key in _ordered(values, _TOP):
        if not isinstance(values[key], dict):
            doc.add(key, _item((key,), values[key], migration))
    _suggestions(doc, (), migration)
    for key in _ordered(values, _TABLES):
        if isinstance(values[key], dict):
            doc.add(tomlkit.nl())
            doc.add(key, _table((key,), values[key], migration))
    _unmapped(doc, migration)
    return tomlkit.dumps(doc)


def needed_plugins(values: Mapping[str, Any]) -> list[str]:
    """The plugin distributions a configuration uses, to install beside the kernel."""
    names = {"json"}
    for key in ("broker", "result_store"):
        scheme = str(values.get(key) or "").partition("://")[0]
        kind = {"rpc": "amqp", "amqps": "amqp", "rediss": "redis", "sentinel": "redis"}.get(scheme, scheme)
        if kind.startswith("redis"):
            kind = "redis"
        if kind in ("redis", "amqp", "sqlite"):
            names.add(kind)
    if "broker" not in values:
        names.add("sqlite")
    for key in ("serializer", "result_serializer", "accept", "result_accept"):
        given = values.get(key)
        for name in [given] if isinstance(given, str) else given or ():
            if name in _SERIALIZERS:
                names.add(_SERIALIZERS[name])
    if values.get("compression"):
        names.add("compression")
    names.add(str(values.get("worker", {}).get("pool", "threads")))
    if values.get("beat", {}).get("schedule"):
        names.add("cron")
    if "events" in values or values.get("worker", {}).get("send_events"):
        names.add("events")
    names.update(section for section in ("signing", "prefork") if section in values)
    return sorted(f"celeriac-{name}" for name in names)


def _installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


def _ordered(values: Mapping[str, Any], first: Iterable[str]) -> list[str]:
    known = [key for key in first if key in values]
    return known + sorted(key for key in values if key not in known)


def _table(path: Path, mapping: Mapping[str, Any], migration: Migration) -> Table:
    nested = [k for k, v in mapping.items() if isinstance(v, dict) and _is_table((*path, k))]
    origin = migration.origins.get(path)
    table = tomlkit.table(is_super_table=path in _SUPER or (len(nested) == len(mapping) and not origin))
    if origin:
        table.add(tomlkit.comment(origin))
    for key, value in mapping.items():
        if key not in nested:
            table.add(key, _item((*path, key), value, migration))
    _suggestions(table, path, migration)
    for key in nested:
        table.add(key, _table((*path, key), mapping[key], migration))
    return table


def _is_table(path: Path) -> bool:
    return len(path) == 1 or path[:-1] in _SUPER or path in _SUPER


def _item(path: Path, value: Any, migration: Migration) -> Item:
    item: Item = tomlkit.item(_inline(value))
    origin = migration.origins.get(path)
    if origin:
        item.comment(origin)
    return item


def _inline(value: Any) -> Any:
    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        table.update({key: _inline(each) for key, each in value.items()})
        return table
    if isinstance(value, list | tuple):
        array = tomlkit.array()
        array.extend(_inline(each) for each in value)
        return array
    return value


def _suggestions(container: Any, path: Path, migration: Migration) -> None:
    for suggestion in migration.suggestions:
        if suggestion.table == path:
            shown = tomlkit.item(_inline(suggestion.value)).as_string()
            container.add(tomlkit.comment(f"{suggestion.key} = {shown}  # {suggestion.why}"))


def _unmapped(doc: Any, migration: Migration) -> None:
    doc.add(tomlkit.nl())
    doc.add(tomlkit.comment("-" * (_WIDTH - 2)))
    if not migration.unmapped:
        doc.add(tomlkit.comment("Every Celery setting this app sets has a celeriac equivalent above."))
        return
    count = len(migration.unmapped)
    doc.add(tomlkit.comment(f"Not carried over: {count} Celery setting(s) with no celeriac equivalent."))
    for each in migration.unmapped:
        doc.add(tomlkit.comment(""))
        doc.add(tomlkit.comment(f"{each.setting} = {each.value}"))
        for line in textwrap.wrap(each.why, _WIDTH - 6):
            doc.add(tomlkit.comment(f"    {line}"))
