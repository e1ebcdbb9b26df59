"""One envelope as one binary string, the value of a stream entry's ``m`` field.

Layout: a 12-byte header with the lengths of the content type, the content encoding, the
JSON headers and the JSON properties, then those four, then the body as it is. Lua
scripts move these strings between keys without looking inside; only Python reads them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

from celeriac.errors import MessageError
from celeriac.protocols import Envelope

_HEADER = struct.Struct(">HHII")


def pack(envelope: Envelope) -> bytes:
    content_type = envelope.content_type.encode()
    encoding = envelope.content_encoding.encode()
    headers = _dumps(envelope.headers)
    properties = _dumps(envelope.properties)
    return b"".join(
        (
            _HEADER.pack(len(content_type), len(encoding), len(headers), len(properties)),
            content_type,
            encoding,
            headers,
            properties,
            envelope.body,
        )
    )


def unpack(data: bytes) -> Envelope:
    """Read a packed envelope; a truncated or garbled one is a :class:`MessageError`."""
    try:
        type_len, encoding_len, headers_len, properties_len = _HEADER.unpack_from(data)
        start = _HEADER.size
        cuts = []
        for length in (type_len, encoding_len, headers_len, properties_len):
            cuts.append(data[start : start + length])
            start += length
        if start > len(data):
            raise MessageError(f"packed envelope is truncated ({len(data)} bytes, header says {start}+)")
        return Envelope(
            body=data[start:],
            content_type=cuts[0].decode(),
            content_encoding=cuts[1].decode(),
            headers=json.loads(cuts[2]),
            properties=json.loads(cuts[3]),
        )
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise MessageError(f"not a packed celeriac envelope: {exc}") from exc


def _dumps(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()
