"""The ``[s3]`` configuration section."""

from __future__ import annotations

from typing import Literal

from attrs import field
from attrs import frozen
from attrs import validators


@frozen(kw_only=True)
class S3Config:
    """``[s3]``: where the bucket is and how the store talks to it.

    Credentials come from boto3's standard chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    ``AWS_PROFILE``, an instance or task role), never from this file.

    :param region: the bucket's region; None takes boto3's.
    :param endpoint_url: another S3 endpoint (MinIO, a local emulator); None for AWS's.
    :param addressing_style: ``auto``, ``virtual`` or ``path`` (emulators often need ``path``).
    :param create_bucket: create the bucket when it is missing (tests, emulators); by default
        a missing bucket is an error naming it.
    :param max_workers: threads that read several results at once (S3 has no multi-get).
    """

    region: str | None = None
    endpoint_url: str | None = None
    addressing_style: Literal["auto", "virtual", "path"] = "auto"
    create_bucket: bool = False
    max_workers: int = field(default=16, validator=validators.ge(1))
    connect_timeout: float = field(default=5.0, validator=validators.gt(0))
    read_timeout: float = field(default=30.0, validator=validators.gt(0))
    max_attempts: int = field(default=3, validator=validators.ge(1))
