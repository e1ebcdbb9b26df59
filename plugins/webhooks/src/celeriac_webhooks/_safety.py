"""Where requests may go: http(s) only, the ``allowed_hosts`` list, and redirects."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from celeriac_webhooks._errors import WebhookRefusedError

SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_url(url: str, allowed_hosts: Sequence[str]) -> None:
    """Refuse a URL that is not http(s), has no host, or names a host outside the allow-list.

    :param allowed_hosts: exact host names, or ``*.example.com`` for any subdomain; empty
        allows every host.
    :raises WebhookRefusedError: with the reason.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise WebhookRefusedError(f"refused {_safe(url)}: scheme {scheme or '(none)'!r} is not http or https")
    host = (parts.hostname or "").lower()
    if not host:
        raise WebhookRefusedError(f"refused {_safe(url)}: no host")
    if allowed_hosts and not host_allowed(host, allowed_hosts):
        raise WebhookRefusedError(f"refused {_safe(url)}: host {host!r} is not in [webhooks] allowed_hosts")


def host_allowed(host: str, allowed_hosts: Sequence[str]) -> bool:
    """Is ``host`` listed (exactly, or under a ``*.domain`` entry)?"""
    host = host.lower().rstrip(".")
    for listed in allowed_hosts:
        entry = listed.lower().rstrip(".")
        if host == entry or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


def origin(url: str) -> tuple[str, str, int]:
    """Scheme, host and effective port: what "the same host" means for redirects."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def check_redirect(source: str, target: str, allowed_hosts: Sequence[str]) -> None:
    """A redirect stays on the same origin, or goes to a host the allow-list names explicitly."""
    check_url(target, allowed_hosts)
    if origin(source) == origin(target):
        return
    _, host, _ = origin(target)
    if allowed_hosts and host_allowed(host, allowed_hosts):
        return
    raise WebhookRefusedError(
        f"refused redirect from {_safe(source)} to {_safe(target)}: another host "
        "(list it in [webhooks] allowed_hosts to allow it)"
    )


def _safe(url: str) -> str:
    """The URL without user:password and query, fit for errors and logs (query strings and
    user info are where people put tokens)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    shown = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else url[:80]
    return shown + ("?…" if parts.query else "")


safe_url = _safe
