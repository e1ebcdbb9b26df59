"""Kombu's JSON envelope, as its virtual transports (Redis, SQS ...) store a message: a helper
two plugins share (celeriac-redis's kombu layout, celeriac-sqs), offered by celeriac.plugin.

``{"body": <base64>, "content-encoding", "content-type", "headers", "properties"}`` with
``properties.body_encoding = "base64"``, ``delivery_info`` and a ``delivery_tag``. Transports
that share a broker with Celery use this to read and write the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from typing import Any

from celeriac._model.errors import MessageError
from celeriac._model.records import Envelope


def to_kombu(envelope: Envelope, *, exchange: str = "", routing_key: str = "") -> dict[str, Any]:
    """The envelope as kombu's ``Channel.prepare_message`` would lay it out."""
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
    """Read a kombu JSON envelope; a missing or non-base64 body is a :class:`MessageError`."""
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
