"""The ``[django]`` configuration section."""

from __future__ import annotations

from attrs import field
from attrs import frozen
from attrs import validators

SECTION = "django"


@frozen(kw_only=True)
class DjangoConfig:
    """``[django]``: the outbox relay a worker of a Django project runs.

    :param outbox_relay: run the relay in the worker (a thread publishing unsent outbox rows).
        Several workers may all run it: a row is claimed by one relay at a time.
    :param outbox_interval: seconds between two looks at an empty outbox.
    :param outbox_lease: seconds after which a claimed row that was never marked sent (its relay
        died while publishing) is claimed again.
    :param outbox_database: the database alias of the outbox the relay reads.
    """

    outbox_relay: bool = True
    outbox_interval: float = field(default=1.0, validator=validators.gt(0))
    outbox_lease: float = field(default=60.0, validator=validators.gt(0))
    outbox_database: str = "default"
