"""``X-Celeriac-Signature: t=<unix seconds>,v1=<hex>``: HMAC-SHA256 over ``"<t>." + body``.

The scheme (the same shape as Stripe's) is deliberately simple so a receiver in any
language can check it: take ``t`` and ``v1`` from the header, compute
``hex(hmac_sha256(secret, t + "." + raw_body))``, compare in constant time, and refuse a
``t`` too far from the receiver's clock (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from celeriac_webhooks._errors import SignatureError

SIGNATURE_HEADER = "X-Celeriac-Signature"
#: Seconds a signature stays valid by default on the receiving side.
DEFAULT_TOLERANCE = 300.0


def signature(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int | None = None) -> str:
    """The value of the signature header for ``body``, signed now (or at ``timestamp``).

    :returns: ``t=<unix seconds>,v1=<hex>``.
    """
    stamp = int(time.time()) if timestamp is None else timestamp
    return f"t={stamp},v1={signature(secret, body, stamp)}"


def verify(
    secret: str | bytes,
    header: str | None,
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a signature header against the raw request body.

    :param secret: the shared secret.
    :param header: the ``X-Celeriac-Signature`` value (None when absent).
    :param body: the raw body bytes, exactly as received.
    :param tolerance: seconds the timestamp may differ from ``now``; 0 disables the check.
    :returns: the signed timestamp.
    :raises SignatureError: missing, malformed, stale, or not matching.
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        stamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header: no timestamp") from None
    candidates = parts.get("v1", [])
    if not candidates:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header: no v1 signature")
    current = time.time() if now is None else now
    if tolerance and abs(current - stamp) > tolerance:
        raise SignatureError(f"signature timestamp {stamp} is more than {tolerance:.0f} s from now")
    expected = signature(secret, body, stamp)
    # Several v1 values are accepted so a sender can sign with an old and a new secret
    # while the secret is being rotated.
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature does not match")
    return stamp
