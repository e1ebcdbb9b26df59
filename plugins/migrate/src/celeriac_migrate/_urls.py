"""Celery's broker and result backend URLs in celeriac's forms, and passwords kept out of sight."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlsplit

from attrs import field
from attrs import frozen

#: The schemes celeriac-redis serves that Celery also writes.
REDIS_SCHEMES = ("redis", "rediss", "redis+socket", "sentinel")
_PASSWORD = re.compile(r"(://[^:/@;]*:)[^@;]*@")

#: The brokers celeriac has, for the notes about those it has not.
BROKERS = (
    "Redis (celeriac-redis), RabbitMQ (celeriac-amqp), Amazon SQS (celeriac-sqs) "
    "or the embedded SQLite file (celeriac-sqlite)"
)
#: The result stores celeriac has, likewise.
RESULT_STORES = (
    "Redis (celeriac-redis), SQLite (celeriac-sqlite), RabbitMQ replies (rpc://, celeriac-amqp), "
    "SQL databases (db+..., celeriac-sqlalchemy), memcached (celeriac-memcached), files "
    "(file://, celeriac-filesystem), S3, DynamoDB, Azure Blob, Google Cloud Storage, CouchDB, or none"
)


@frozen(kw_only=True)
class Translated:
    """A URL for celeriac, or None when there is no equivalent; ``kind`` is what serves it
    (``"redis"``, ``"amqp"``, ``"sqlite"``, ``"memory"``, ``"s3"`` ...), ``note`` what to know
    about it, and ``keys`` the plugin settings it implies (``{("s3", "region"): "eu-west-1"}``)."""

    url: str | None
    kind: str | None
    note: str = ""
    keys: Mapping[tuple[str, ...], Any] = field(factory=dict)


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
    if scheme == "sqs":
        note = "celeriac-sqs; credentials come from the AWS environment (boto3), not the URL"
        return Translated(url="sqs://", kind="sqs", note=note if "@" in rest else "celeriac-sqs")
    return Translated(
        url=None,
        kind=None,
        note=f"celeriac has no transport for {scheme}:// in this version; use {BROKERS}",
    )


def result_backend(
    url: str, broker_kind: str | None, settings: Mapping[str, Any] | None = None
) -> Translated:
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
    return _cloud_backend(url, scheme, rest, settings or {})


Keys = dict[tuple[str, ...], Any]


def _cloud_backend(url: str, scheme: str, rest: str, settings: Mapping[str, Any]) -> Translated:
    """The result stores of celeriac's other plugins, which read and write Celery's layouts."""
    if scheme.startswith("db+"):
        return Translated(url=url, kind="sqlalchemy", note="celeriac-sqlalchemy, Celery's tables")
    if scheme in {"cache+memcached", "cache+pylibmc"}:
        return Translated(
            url=f"memcached://{rest}", kind="memcached", note="celeriac-memcached, Celery's keys"
        )
    if scheme == "file":
        return Translated(url=url, kind="filesystem", note="celeriac-filesystem, Celery's file names")
    if scheme == "couchdb":
        return Translated(url=url, kind="couchdb", note="celeriac-couchdb, Celery's documents")
    build = _BUILDERS.get(scheme)
    if build is not None:
        return build(url, rest, settings)
    return Translated(
        url=None,
        kind=None,
        note=f"celeriac has no result store for {scheme}:// in this version; use {RESULT_STORES}",
    )


def _s3(url: str, rest: str, settings: Mapping[str, Any]) -> Translated:
    bucket = settings.get("s3_bucket")
    if not bucket:
        return Translated(url=None, kind=None, note="s3:// without s3_bucket: no bucket to store results in")
    prefix = str(settings.get("s3_base_path") or "").strip("/")
    keys: Keys = {
        ("s3", key): settings[f"s3_{key}"] for key in ("region", "endpoint_url") if settings.get(f"s3_{key}")
    }
    return Translated(
        url=f"s3://{bucket}/{prefix}".rstrip("/"), kind="s3", note="celeriac-s3, Celery's keys", keys=keys
    )


def _gcs(url: str, rest: str, settings: Mapping[str, Any]) -> Translated:
    parts = urlsplit(url)
    bucket = parts.netloc or settings.get("gcs_bucket")
    if not bucket:
        return Translated(url=None, kind=None, note="gs:// without a bucket (gcs_bucket)")
    prefix = (parts.path.strip("/") or str(settings.get("gcs_base_path") or "")).strip("/")
    project = parse_qs(parts.query).get("gcs_project", [settings.get("gcs_project")])[0]
    keys: Keys = {("gcs", "project"): project} if project else {}
    return Translated(
        url=f"gs://{bucket}/{prefix}".rstrip("/"),
        kind="gcs",
        note="celeriac-gcs, Celery's objects",
        keys=keys,
    )


def _azure(url: str, rest: str, settings: Mapping[str, Any]) -> Translated:
    container = settings.get("azureblockblob_container_name") or "celery"
    prefix = str(settings.get("azureblockblob_base_path") or "").strip("/")
    keys: Keys = {("azureblob", "connection_string"): unquote(rest)} if rest else {}
    return Translated(
        url=f"azureblob://{container}/{prefix}".rstrip("/"),
        kind="azureblob",
        note="celeriac-azureblob, Celery's blob names; the connection string goes to [azureblob]",
        keys=keys,
    )


def _dynamodb(url: str, rest: str, settings: Mapping[str, Any]) -> Translated:
    """Celery's ``dynamodb://KEY:SECRET@REGION/TABLE`` or ``dynamodb://@localhost:8000/TABLE``."""
    parts = urlsplit(url)
    table = parts.path.strip("/") or "celery"
    keys: Keys = {}
    host = parts.hostname
    if host and host != "localhost" and parts.port is None:
        keys[("dynamodb", "region")] = host
    elif host:
        keys[("dynamodb", "endpoint_url")] = f"http://{host}:{parts.port or 8000}"
    note = "celeriac-dynamodb, Celery's items"
    if parts.username:
        note += "; credentials come from the AWS environment (boto3), not the URL"
    return Translated(url=f"dynamodb://{table}", kind="dynamodb", note=note, keys=keys)


_BUILDERS = {"s3": _s3, "gs": _gcs, "gcs": _gcs, "azureblockblob": _azure, "dynamodb": _dynamodb}
