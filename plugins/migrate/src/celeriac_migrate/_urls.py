"""Celery's broker and result backend URLs in celeriac's forms, and passwords kept out of sight."""

from __future__ import annotations

import re

from attrs import frozen

#: The schemes celeriac-redis serves that Celery also writes.
REDIS_SCHEMES = ("redis", "rediss", "redis+socket", "sentinel")
_PASSWORD = re.compile(r"(://[^:/@;]*:)[^@;]*@")

#: The brokers celeriac has, for the notes about those it has not.
BROKERS = "Redis (celeriac-redis), RabbitMQ (celeriac-amqp) or the embedded SQLite file (celeriac-sqlite)"
#: The result stores celeriac has, likewise.
RESULT_STORES = (
    "Redis (celeriac-redis), SQLite (celeriac-sqlite), RabbitMQ replies (rpc://, celeriac-amqp), or none"
)


@frozen(kw_only=True)
class Translated:
    """A URL for celeriac, or None when there is no equivalent; ``kind`` is what serves it
    (``"redis"``, ``"amqp"``, ``"sqlite"``, ``"memory"``) and ``note`` what to know about it."""

    url: str | None
    kind: str | None
    note: str = ""


def mask(url: str) -> str:
    """``redis://:secret@host`` -> ``redis://:**@host``, in every part of a ``;``-joined list."""
    return _PASSWORD.sub(r"\1**@", url)


def has_password(url: str) -> bool:
    return mask(url) != url


def scheme_of(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else url.lower()


def broker(url: str) -> Translated:
    """A kombu broker URL (``broker_url``) as celeriac's ``broker``."""
    scheme = scheme_of(url)
    rest = url.partition("://")[2]
    if scheme == "sentinel":
        # celeriac-redis reads kombu's sentinel://...;sentinel://... as it is.
        return Translated(url=url, kind="redis")
    if scheme in ("redis", "rediss", "redis+socket"):
        first, _, others = url.partition(";")
        note = f"failover URLs after the first are not used: {mask(others)}" if others else ""
        return Translated(url=first, kind="redis", note=note)
    if scheme in ("amqp", "amqps", "pyamqp", "librabbitmq"):
        first, _, others = rest.partition(";")
        note = ""
        if others:
            note = f"failover URLs after the first are not used (celeriac connects to one): {mask(others)}"
        tls = "amqps" if scheme == "amqps" else "amqp"
        return Translated(url=f"{tls}://{first}", kind="amqp", note=note)
    if scheme == "memory":
        return Translated(url="memory://", kind="memory", note="in this process only: for tests")
    if scheme in ("sqla+sqlite", "sqlalchemy+sqlite"):
        return Translated(
            url=f"sqlite://{rest}",
            kind="sqlite",
            note="celeriac's own SQLite transport in the same file; messages kombu queued there are not read",
        )
    return Translated(
        url=None,
        kind=None,
        note=f"celeriac has no transport for {scheme}:// in this version; use {BROKERS}",
    )


def result_backend(url: str, broker_kind: str | None) -> Translated:
    """A Celery ``result_backend`` as celeriac's ``result_store``."""
    scheme = scheme_of(url)
    rest = url.partition("://")[2]
    if scheme in REDIS_SCHEMES:
        return Translated(url=url, kind="redis")
    if scheme == "rpc":
        note = "" if broker_kind == "amqp" else "rpc:// needs a RabbitMQ broker (celeriac-amqp)"
        return Translated(url="rpc://", kind="amqp", note=note)
    if scheme == "db+sqlite":
        return Translated(url=f"sqlite://{rest}", kind="sqlite", note="celeriac's own table layout")
    if scheme in ("cache+memory", "memory"):
        return Translated(url="memory://", kind="memory", note="in this process only: for tests")
    return Translated(
        url=None,
        kind=None,
        note=f"celeriac has no result store for {scheme}:// in this version; use {RESULT_STORES}",
    )
