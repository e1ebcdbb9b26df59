"""Broker and result backend: URLs, transport options, TLS and the Redis backend's settings."""

from __future__ import annotations

import ssl
from typing import Any

from celeriac_migrate import _urls
from celeriac_migrate._context import Context
from celeriac_migrate._context import NoEquivalent
from celeriac_migrate._context import seconds

#: Celery's broker when none is configured (kombu's default connection).
CELERY_DEFAULT_BROKER = "amqp://guest:guest@localhost:5672//"
#: Celery's (kombu's) visibility timeout on Redis when the transport options give none.
CELERY_REDIS_VISIBILITY = 3600

BROKER_SETTINGS = (
    "broker_url",
    "broker_transport",
    "broker_host",
    "broker_port",
    "broker_user",
    "broker_password",
    "broker_vhost",
    "broker_read_url",
    "broker_write_url",
)
RESULT_SETTINGS = (
    "result_backend",
    "result_backend_transport_options",
    # Read into the result store's URL and section (celeriac-s3, -gcs, -azureblob).
    "s3_bucket",
    "s3_base_path",
    "s3_region",
    "s3_endpoint_url",
    "gcs_bucket",
    "gcs_base_path",
    "gcs_project",
    "azureblockblob_container_name",
    "azureblockblob_base_path",
)


def broker(context: Context) -> None:
    """``broker`` from ``broker_url`` (or the old host/port/user settings, joined as kombu joins them)."""
    pieces = [key for key in BROKER_SETTINGS[1:7] if context.is_set(key)]
    if context.is_set("broker_url"):
        url = _joined(context.settings["broker_url"])
        context.current = "broker_url"
    elif pieces:
        url = context.app.connection_for_write().as_uri(include_password=True)
        context.current = ", ".join(pieces)
    else:
        context.current = ""
        context.broker_kind = "amqp"
        context.put(("broker",), CELERY_DEFAULT_BROKER, "Celery's default broker (no broker_url is set)")
        return
    translated = _urls.broker(url)
    if translated.url is None:
        context.skip(
            context.current, translated.note + "; without `broker` celeriac uses its SQLite file", url
        )
        return
    context.broker_kind = translated.kind
    notes = [translated.note]
    if _urls.has_password(translated.url) and not context.with_secrets:
        notes.append("password hidden: set CELERIAC_BROKER, or print with --with-secrets")
    context.put(("broker",), context.url(translated.url), "; ".join(n for n in notes if n))
    for key in ("broker_read_url", "broker_write_url"):
        if context.is_set(key):
            context.skip(key, "celeriac reads and writes through the one `broker` URL")


def result_backend(context: Context) -> None:
    """``result_store`` from ``result_backend``; no backend turns results off, as in Celery."""
    context.current = "result_backend"
    if not context.is_set("result_backend"):
        context.current = ""
        context.put(
            ("result_store",),
            "",
            "no result_backend: results off, as in Celery; "
            "unset, celeriac would keep results in the broker's Redis or SQLite",
        )
    else:
        url = _joined(context.settings["result_backend"])
        translated = _urls.result_backend(url, context.broker_kind, context.settings)
        if translated.url is None:
            context.skip("result_backend", translated.note, url)
        else:
            for path, value in translated.keys.items():
                secret = path[-1] == "connection_string" and not context.with_secrets
                context.put(
                    path,
                    "**" if secret else value,
                    "secret hidden: print with --with-secrets" if secret else "",
                )
            notes = [translated.note]
            if _urls.has_password(translated.url) and not context.with_secrets:
                notes.append("password hidden: set CELERIAC_RESULT_STORE, or print with --with-secrets")
            context.put(("result_store",), context.url(translated.url), "; ".join(n for n in notes if n))
    options = context.settings.get("result_backend_transport_options") or {}
    context.current = "result_backend_transport_options"
    for key, value in options.items():
        if key == "global_keyprefix":
            context.put(("redis", "result_key_prefix"), value)
        else:
            context.skip(f"result_backend_transport_options[{key!r}]", "no celeriac equivalent", value)


def transport_options(context: Context) -> None:
    """``broker_transport_options``: the visibility timeout, key prefixes, Redis connection settings."""
    options = dict(context.settings.get("broker_transport_options") or {})
    context.current = "broker_transport_options"
    if "visibility_timeout" in options:
        context.put(("visibility_timeout",), seconds(options.pop("visibility_timeout")))
    elif context.broker_kind == "redis":
        context.current = ""
        context.put(
            ("visibility_timeout",),
            CELERY_REDIS_VISIBILITY,
            "Celery's on Redis; celeriac's own default is 300 (its workers renew their leases)",
        )
        context.current = "broker_transport_options"
    for key, value in options.items():
        setting = f"broker_transport_options[{key!r}]"
        target = _REDIS_OPTIONS.get(key) if context.broker_kind == "redis" else None
        if target is not None:
            context.put(("redis", target), _plain(value))
        elif context.broker_kind == "redis" and key == "sentinel_kwargs" and isinstance(value, dict):
            if "password" in value and context.with_secrets:
                context.put(("redis", "sentinel_password"), value["password"])
            elif "password" in value:
                context.suggest(
                    ("redis",), "sentinel_password", "...", "sentinel_kwargs password, not printed"
                )
        elif key == "confirm_publish" and context.broker_kind == "amqp":
            context.skip(setting, "celeriac-amqp always publishes with confirms", value)
        else:
            context.skip(
                setting, f"no celeriac equivalent for this {context.broker_kind or ''} option", value
            )


_REDIS_OPTIONS = {
    "global_keyprefix": "kombu_global_keyprefix",
    "priority_steps": "priority_steps",
    "max_connections": "max_connections",
    "socket_timeout": "socket_timeout",
    "socket_connect_timeout": "socket_connect_timeout",
    "socket_keepalive": "socket_keepalive",
    "health_check_interval": "health_check_interval",
    "master_name": "master_name",
    "client_name": "client_name",
}

#: Celery's ``redis_*`` result backend settings that celeriac-redis has: one ``[redis]``
#: section serves the broker and the result store alike.
REDIS_BACKEND = {
    "redis_max_connections": "max_connections",
    "redis_socket_timeout": "socket_timeout",
    "redis_socket_connect_timeout": "socket_connect_timeout",
    "redis_socket_keepalive": "socket_keepalive",
}


def redis_backend(context: Context, value: Any) -> None:
    """A rule for the settings in :data:`REDIS_BACKEND`."""
    store = context.migration.get(("result_store",))
    if not (isinstance(store, str) and _urls.scheme_of(store) in _urls.REDIS_SCHEMES):
        raise NoEquivalent("a setting of Celery's Redis result backend, and the result store is not Redis")
    context.put(("redis", REDIS_BACKEND[context.current]), _plain(value), "the broker's connections too")


def use_ssl(context: Context) -> None:
    """``broker_use_ssl`` and ``redis_backend_use_ssl`` as the plugins' ``ssl_*`` keys."""
    for key in ("broker_use_ssl", "redis_backend_use_ssl"):
        value = context.settings.get(key)
        if not value:
            continue
        context.current = key
        section = "amqp" if key == "broker_use_ssl" and context.broker_kind == "amqp" else "redis"
        if key == "broker_use_ssl" and context.broker_kind not in ("amqp", "redis"):
            context.skip(key, "TLS options of a broker celeriac has no transport for")
            continue
        if value is True:
            if section == "amqp":
                url = context.migration.get(("broker",))
                if isinstance(url, str) and url.startswith("amqp://"):
                    context.put(
                        ("broker",), "amqps://" + url.removeprefix("amqp://"), "broker_use_ssl = True"
                    )
            continue
        for name, option in dict(value).items():
            target = _SSL.get(str(name))
            if target is None:
                context.skip(f"{key}[{name!r}]", "no celeriac equivalent", option)
            elif target == "cert_reqs":
                _cert_reqs(context, section, option)
            else:
                context.put((section, target), str(option))


_SSL = {
    "ssl_ca_certs": "ssl_ca_certs",
    "ca_certs": "ssl_ca_certs",
    "ssl_certfile": "ssl_certfile",
    "certfile": "ssl_certfile",
    "ssl_keyfile": "ssl_keyfile",
    "keyfile": "ssl_keyfile",
    "ssl_cert_reqs": "cert_reqs",
    "cert_reqs": "cert_reqs",
}


def _cert_reqs(context: Context, section: str, value: Any) -> None:
    names = {ssl.CERT_NONE: "none", ssl.CERT_OPTIONAL: "optional", ssl.CERT_REQUIRED: "required"}
    level = names.get(value, str(value).lower().removeprefix("cert_"))
    if section == "amqp":
        context.put(("amqp", "ssl_verify"), level != "none")
    else:
        context.put(("redis", "ssl_cert_reqs"), level)


def _joined(url: Any) -> str:
    """kombu accepts a list of failover URLs as well as a ``;``-joined string."""
    return ";".join(url) if isinstance(url, list | tuple) else str(url)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
