"""The ``[webhooks]`` configuration section and its ``[webhooks.sinks.NAME]`` tables."""

from __future__ import annotations

from collections.abc import Mapping

from attrs import field
from attrs import frozen
from attrs import validators

#: The plugin's TOML table, named after its entry point.
SECTION = "webhooks"


@frozen(kw_only=True)
class SinkConfig:
    """``[webhooks.sinks.NAME]``: one HTTP endpoint that receives monitoring events in batches.

    :param url: where batches are POSTed (http or https; subject to ``allowed_hosts``).
    :param events: event types to send (``"task-failed"`` ...); empty sends every event.
    :param secret: signs the batches; unset falls back to ``[webhooks] secret``.
    :param batch_size: events per request at most; a flush starts as soon as this many wait.
    :param interval: seconds between two flushes.
    :param max_buffer: events held at most; past it the oldest are dropped (and counted).
    :param timeout: seconds one request may take.
    :param retries: further attempts of one batch, with exponential back-off from ``backoff``.
    :param backoff: seconds before the first retry of a batch; doubled for each further one.
    :param max_failures: batches failing in a row (after their retries) before the sink is
        disabled until the worker restarts.
    """

    url: str
    events: tuple[str, ...] = ()
    secret: str | None = field(default=None, repr=False)
    batch_size: int = field(default=100, validator=validators.gt(0))
    interval: float = field(default=1.0, validator=validators.gt(0))
    max_buffer: int = field(default=10_000, validator=validators.gt(0))
    timeout: float = field(default=5.0, validator=validators.gt(0))
    retries: int = field(default=3, validator=validators.ge(0))
    backoff: float = field(default=0.5, validator=validators.ge(0))
    max_failures: int = field(default=5, validator=validators.gt(0))


@frozen(kw_only=True)
class WebhooksConfig:
    """``[webhooks]``: how workers make HTTP requests for URL tasks and event sinks.

    :param secret: HMAC-SHA256 key; when set every URL task request is signed
        (``X-Celeriac-Signature``). Never logged or shown.
    :param allowed_hosts: when not empty, the only hosts requests may go to (exact names,
        or ``*.example.com`` for subdomains); checked when sending and again on the worker.
    :param follow_redirects: follow redirects to the same host (scheme, host and port); a
        redirect to another host is followed only when that host is in ``allowed_hosts``.
    :param max_redirects: redirects followed at most.
    :param max_body: bytes of a response body kept in the result; the rest is cut off
        (``truncated`` is then true).
    :param timeout: seconds a URL task request may take, unless the call sets its own.
    :param sinks: the event sinks, by name.
    """

    secret: str | None = field(default=None, repr=False)
    allowed_hosts: tuple[str, ...] = ()
    follow_redirects: bool = True
    max_redirects: int = field(default=5, validator=validators.ge(0))
    max_body: int = field(default=1_048_576, validator=validators.gt(0))
    timeout: float = field(default=30.0, validator=validators.gt(0))
    sinks: Mapping[str, SinkConfig] = field(factory=dict)
