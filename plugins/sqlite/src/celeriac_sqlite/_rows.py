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


class BadRowError(ValueError):
    """A row whose columns do not make an envelope (written by hand or by another program)."""


def envelope_from_row(
    body: bytes, content_type: str, content_encoding: str, headers: str, properties: str
) -> Envelope:
    """The envelope a row stores; :class:`BadRowError` names the column that is not a JSON object."""
    return Envelope(
        body=body,
        content_type=content_type,
        content_encoding=content_encoding,
        headers=_mapping("headers", headers),
        properties=_mapping("properties", properties),
    )


def _mapping(column: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise BadRowError(f"the {column} column is not JSON ({exc}): {str(text)[:80]!r}") from None
    if not isinstance(value, dict):
        raise BadRowError(f"the {column} column is not a JSON object: {str(text)[:80]!r}")
    return value


def repaired(headers: str, properties: str) -> tuple[str, str]:
    """Columns a dead letter can be listed with: a bad one is kept as text under ``raw``."""
    fixed = []
    for column, text in (("headers", headers), ("properties", properties)):
        try:
            _mapping(column, text)
            fixed.append(text)
        except BadRowError:
            fixed.append(_dumps({"raw": str(text)}))
    return fixed[0], fixed[1]


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))
