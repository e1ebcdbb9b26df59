"""How an envelope is stored in a row: the body as a blob, headers and properties as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from celeriac.plugin import Envelope


def envelope_columns(envelope: Envelope) -> tuple[bytes, str, str, str, str]:
    return (
        envelope.body,
        envelope.content_type,
        envelope.content_encoding,
        _dumps(envelope.headers),
        _dumps(envelope.properties),
    )


def envelope_from_row(
    body: bytes, content_type: str, content_encoding: str, headers: str, properties: str
) -> Envelope:
    return Envelope(
        body=body,
        content_type=content_type,
        content_encoding=content_encoding,
        headers=json.loads(headers),
        properties=json.loads(properties),
    )


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))
