"""The plugin's errors. Each is rebuilt on the client from its stored arguments, so every
constructor takes only plain strings and numbers (see ``celeriac._contract.result_meta``)."""

from __future__ import annotations

import json
from typing import Any

from celeriac.plugin import CeleriacError


class WebhookError(CeleriacError):
    """Base class of this plugin's errors."""


class WebhookRefusedError(WebhookError):
    """A request that the safety rules forbid: scheme, host, or a redirect to another host."""


class WebhookConnectionError(WebhookError):
    """The request did not get a response: connection refused, reset, or timed out."""


class WebhookHTTPError(WebhookError):
    """The server answered with an error status.

    :param message: one line naming the request and the status.
    :param response: the response as JSON text (``status_code``, ``headers``, ``body`` ...),
        text so that it survives the result store; read it with :attr:`response`.
    """

    def __init__(self, message: str, response: str = "{}") -> None:
        super().__init__(message, response)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def response(self) -> dict[str, Any]:
        """The stored response: ``status_code``, ``headers``, ``body`` ..."""
        value = json.loads(self.args[1]) if len(self.args) > 1 else {}
        return value if isinstance(value, dict) else {}

    @property
    def status_code(self) -> int | None:
        code = self.response.get("status_code")
        return code if isinstance(code, int) else None


class SignatureError(WebhookError):
    """A signature header that is missing, malformed, stale or does not match."""
