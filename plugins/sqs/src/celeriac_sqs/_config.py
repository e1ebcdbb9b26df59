"""The ``[sqs]`` configuration section."""

from __future__ import annotations

from collections.abc import Mapping

from attrs import field
from attrs import frozen
from attrs import validators


@frozen(kw_only=True)
class SqsConfig:
    """``[sqs]``: where the queues are and how the transport uses them.

    Credentials are never set here: boto3's standard chain finds them (``AWS_ACCESS_KEY_ID``
    and ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` and ``~/.aws/credentials``, SSO, an
    instance or task role), as for every AWS tool.

    :param region: the AWS region; None takes boto3's (``AWS_REGION``, ``AWS_DEFAULT_REGION``,
        the profile), else ``us-east-1`` as kombu does.
    :param endpoint_url: another SQS endpoint (a VPC endpoint, a local emulator); None for AWS's.
        A host in the broker URL (``sqs://host:port``) is used when this is unset.
    :param queue_prefix: put before every queue name (kombu's ``queue_name_prefix``).
    :param wait_time_seconds: the longest long poll (SQS allows 0-20 s); a fetch waits at
        most as long as the worker asks (``worker.poll_timeout``).
    :param dead_letter_suffix: the dead-letter queue of queue ``q`` is ``q<suffix>`` (``.fifo``
        kept last), unless ``q`` has an SQS redrive policy, whose queue is used instead.
    :param redrive_max_receives: when set, queues this transport creates get an SQS redrive
        policy to their dead-letter queue after this many receives: a backstop for messages
        no celeriac worker gets to (keep it above ``worker.max_deliveries``).
    :param create_queues: create missing queues; False makes a missing queue an error.
    :param queue_attributes: more ``CreateQueue`` attributes for queues this transport creates
        (``KmsMasterKeyId``, ``MessageRetentionPeriod`` ...).
    :param message_group_id: the ``MessageGroupId`` of messages sent to FIFO queues that name none.
    :param base64_bodies: encode message bodies in base64 as kombu does by default
        (``sqs_base64_encoding``); both forms are read.
    :param broadcast: remote control and events over SNS topics, one per channel, each
        subscriber reading a queue of its own (as kombu's ``supports_fanout``).
    :param connect_timeout: seconds to connect to the endpoint.
    :param read_timeout: seconds to wait for an answer; above ``wait_time_seconds``.
    :param max_attempts: attempts of each call (boto3's standard retry mode).
    """

    region: str | None = None
    endpoint_url: str | None = None
    queue_prefix: str = ""
    wait_time_seconds: int = field(default=20, validator=[validators.ge(0), validators.le(20)])
    dead_letter_suffix: str = field(default="-dead-letters", validator=validators.min_len(1))
    redrive_max_receives: int | None = field(default=None, validator=validators.optional(validators.ge(1)))
    create_queues: bool = True
    queue_attributes: Mapping[str, str] = field(factory=dict)
    message_group_id: str = "default"
    base64_bodies: bool = True
    broadcast: bool = False
    connect_timeout: float = field(default=5.0, validator=validators.gt(0))
    read_timeout: float = field(default=30.0, validator=validators.gt(0))
    max_attempts: int = field(default=3, validator=validators.ge(1))
