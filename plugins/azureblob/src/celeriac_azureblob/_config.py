"""The ``[azureblob]`` configuration section."""

from __future__ import annotations

from attrs import field
from attrs import frozen
from attrs import validators


@frozen(kw_only=True)
class AzureBlobConfig:
    """``[azureblob]``: which storage account, and how the store uses it.

    :param connection_string: the account's connection string (``AccountName=...;AccountKey=...``
        or a SAS); None reads ``AZURE_STORAGE_CONNECTION_STRING`` from the environment, which
        keeps the key out of files. Never printed: errors name the account's blob endpoint.
    :param create_container: create the container when it is missing; by default a missing
        container is an error naming it.
    :param max_workers: threads that read several results at once.
    :param timeout: seconds to connect and to wait for an answer.
    :param retries: how often a failed call is tried again (the SDK's back-off between).
    """

    connection_string: str | None = field(default=None, repr=False)
    create_container: bool = False
    max_workers: int = field(default=16, validator=validators.ge(1))
    timeout: float = field(default=20.0, validator=validators.gt(0))
    retries: int = field(default=3, validator=validators.ge(0))
