"""Deprecated in plugin API 1.1, to be removed in 1.2: kombu's JSON envelope now lives in
celeriac-redis, the one plugin that uses it. ``celeriac.plugin.to_kombu`` and
``from_kombu`` warn and do what they did."""

from __future__ import annotations

import base64
import binascii
import uuid
import warnings
from collections.abc import Mapping
from typing import Any

from celeriac._model.errors import MessageError
from celeriac._model.records import Envelope


def _deprecated(name: str) -> None:
    warnings.warn(
        f"celeriac.plugin.{name} is deprecated (plugin API 1.1) and goes in 1.2; "
        "a transport that shares a kombu virtual-transport broker keeps its own envelope code",
        DeprecationWarning,
        stacklevel=3,
    )


def to_kombu(envelope: Envelope, *, exchange: str = "", routing_key: str = "") -> dict[str, Any]:
    """Deprecated: the envelope as kombu's ``Channel.prepare_message`` would lay it out."""
    _deprecated("to_kombu")
    properties = dict(envelope.properties)
    properties.setdefault("delivery_info", {"exchange": exchange, "routing_key": routing_key})
    properties["body_encoding"] = "base64"
    properties.setdefault("delivery_tag", str(uuid.uuid4()))
    return {
        "body": base64.b64encode(envelope.body).decode("ascii"),
        "content-encoding": envelope.content_encoding,
        "content-type": envelope.content_type,
        "headers": dict(envelope.headers),
        "properties": properties,
    }


def from_kombu(data: Mapping[str, Any]) -> Envelope:
    """Deprecated: read a kombu JSON envelope."""
    _deprecated("from_kombu")
    if not isinstance(data, Mapping) or "body" not in data:
        raise MessageError("not a kombu envelope: no 'body'")
    properties = dict(data.get("properties") or {})
    body = data["body"]
    if properties.get("body_encoding") == "base64":
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, TypeError) as exc:
            raise MessageError(f"kombu envelope body is not valid base64: {exc}") from exc
    else:
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return Envelope(
        body=raw,
        content_type=data.get("content-type") or "application/json",
        content_encoding=data.get("content-encoding") or "utf-8",
        headers=dict(data.get("headers") or {}),
        properties=properties,
    )
