"""Waiting for the broker at worker start: a broker that is down is not a reason to exit.

Operators start workers and brokers in any order (systemd, containers), so a worker that
cannot reach its broker tries again with a back-off, for as long as it runs unless
``[worker] broker_retry_attempts`` bounds it, saying so once per attempt, and stops at once
when asked to (SIGTERM) while it waits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celeriac._contract.protocols import Transport
from celeriac._contract.shutdown import ShutdownState
from celeriac._model.config import WorkerConfig
from celeriac._model.errors import CeleriacError
from celeriac._model.redaction import redact_url

log = logging.getLogger("celeriac.worker")


class BrokerUnreachableError(CeleriacError):
    """The broker did not answer within ``[worker] broker_retry_attempts`` attempts."""


def wait_for_broker(
    transport: Transport,
    queues: Sequence[str],
    url: str,
    settings: WorkerConfig,
    shutdown: ShutdownState,
) -> bool:
    """Declare ``queues`` until the broker answers; False when a shutdown came first.

    Declaring is what the consumer does first anyway, and every transport has it: a broker
    that takes the declarations takes the worker.

    :raises BrokerUnreachableError: after ``broker_retry_attempts`` failed attempts.
    """
    attempt = 0
    while not shutdown.requested.is_set():
        try:
            for queue in queues:
                transport.declare_queue(queue)
        except CeleriacError:
            raise  # bad configuration, not an outage
        except Exception as exc:
            attempt += 1
            limit = settings.broker_retry_attempts
            where = redact_url(url)
            reason = redact_url(f"{type(exc).__name__}: {exc}")
            if limit is not None and attempt >= limit:
                raise BrokerUnreachableError(
                    f"cannot reach the broker {where} after {attempt} attempts ({reason})"
                ) from exc
            delay = min(settings.broker_retry_base * 2 ** (attempt - 1), settings.broker_retry_max)
            of = f"/{limit}" if limit is not None else ""
            log.warning(
                "cannot reach the broker %s (%s); attempt %d%s, trying again in %.1f s",
                where,
                reason,
                attempt,
                of,
                delay,
            )
            shutdown.requested.wait(delay)
            continue
        if attempt:
            log.warning("the broker %s answers again after %d failed attempts", redact_url(url), attempt)
        return True
    return False
