"""The payload of Celery's ``auth`` serializer (``celery/security/serialization.py``, 5.5+).

``base64(b64(signer) SEP b64(signature) SEP content_type SEP content_encoding SEP body)``,
where ``SEP`` is ``b"\\x00\\x01"``, ``b64`` is standard base64 and ``body`` is the inner
serializer's output, which the signature covers. Reading splits at the first four separators
only, so the body may contain the separator.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from attrs import frozen

from celeriac.plugin import MessageError

SEPARATOR: Final = b"\x00\x01"


@frozen(kw_only=True)
class Payload:
    """The fields of a signed payload."""

    signer: str
    signature: bytes
    content_type: str
    content_encoding: str
    body: bytes


def pack(payload: Payload) -> bytes:
    """Lay out a payload as Celery's ``SecureSerializer._pack`` does."""
    fields = SEPARATOR.join(
        [
            base64.b64encode(payload.signer.encode("utf-8")),
            base64.b64encode(payload.signature),
            payload.content_type.encode("utf-8"),
            payload.content_encoding.encode("utf-8"),
            payload.body,
        ]
    )
    return base64.b64encode(fields)


def unpack(data: bytes) -> Payload:
    """Read a payload; raises :class:`MessageError` when ``data`` is not one."""
    try:
        raw = base64.b64decode(bytes(data), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MessageError(f"not a signed message: the body is not base64 ({exc})") from exc
    fields = raw.split(SEPARATOR, 4)
    if len(fields) != 5:
        raise MessageError(
            f"not a signed message: expected 5 fields separated by \\x00\\x01, found {len(fields)}"
        )
    signer, signature, content_type, content_encoding, body = fields
    try:
        return Payload(
            signer=base64.b64decode(signer, validate=True).decode("utf-8"),
            signature=base64.b64decode(signature, validate=True),
            content_type=content_type.decode("utf-8"),
            content_encoding=content_encoding.decode("utf-8"),
            body=body,
        )
    except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise MessageError(f"not a signed message: malformed signer or signature field ({exc})") from exc
