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
        elif isinstance(value, str):
            clean[key] = redact_url(value)
        else:
            clean[key] = value
    return clean
