"""Keep secrets out of what the CLI prints and workers report (``celeriac config``, ``inspect conf``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SECRET_WORDS = ("secret", "password", "passphrase", "token", "key_password")
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def redact_url(url: str) -> str:
    """Hide a password in a URL: ``redis://:secret@host`` -> ``redis://:***@host``."""
    return _URL_PASSWORD.sub(r"\1***@", url)


def redact(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with the values of secret-looking keys masked and URL passwords hidden."""
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            clean[key] = redact(value)
        elif any(word in key.lower() for word in _SECRET_WORDS) and value:
            clean[key] = "***"
        else:
            clean[key] = _redact_value(value)
    return clean


def _redact_value(value: Any) -> Any:
    """URL passwords hidden in a string, or in the strings of a list (failover URLs ...)."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(item) for item in value)
    return value
