"""The ``[dynamodb]`` configuration section."""

from __future__ import annotations

from attrs import field
from attrs import frozen
from attrs import validators


@frozen(kw_only=True)
class DynamoConfig:
    """``[dynamodb]``: where the table is and how the store uses it.

    Credentials come from boto3's standard chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    ``AWS_PROFILE``, an instance or task role), never from this file.

    :param region: the table's region; None takes boto3's.
    :param endpoint_url: another endpoint (DynamoDB Local, a local emulator); None for AWS's.
    :param create_table: create the table (on-demand capacity, TTL on ``ttl``) when missing;
        by default a missing table is an error naming it.
    :param consistent_read: strongly consistent reads, so a result is seen as soon as it is
        written (eventually consistent reads cost half but may miss it for a moment).
    :param celery_ids: write item ids as Celery's DynamoDB backend does, the text of a Python
        bytes value (``b'celery-task-meta-<task id>'``), so Celery and celeriac read each
        other's results; false writes the plain key.
    """

    region: str | None = None
    endpoint_url: str | None = None
    create_table: bool = False
    consistent_read: bool = True
    celery_ids: bool = True
    connect_timeout: float = field(default=5.0, validator=validators.gt(0))
    read_timeout: float = field(default=30.0, validator=validators.gt(0))
    max_attempts: int = field(default=3, validator=validators.ge(1))
