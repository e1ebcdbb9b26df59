"""The ``[gcs]`` configuration section."""

from __future__ import annotations

from attrs import field
from attrs import frozen
from attrs import validators


@frozen(kw_only=True)
class GcsConfig:
    """``[gcs]``: which project and credentials, and how the store uses the bucket.

    Credentials are Google's Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``,
    ``gcloud auth application-default login``, the metadata server of GCE, GKE or Cloud Run)
    unless ``credentials_file`` names a service account key file.

    :param project: the project (ADC's when None).
    :param endpoint_url: another endpoint (a local emulator); with it and no ``credentials_file``
        requests go unauthenticated, as emulators expect.
    :param create_bucket: create the bucket when it is missing (tests, emulators).
    :param timeout: seconds each request may take.
    :param retry_deadline: seconds within which a failed idempotent request is tried again.
    :param max_workers: threads that read several results at once.
    """

    project: str | None = None
    endpoint_url: str | None = None
    credentials_file: str | None = None
    create_bucket: bool = False
    timeout: float = field(default=20.0, validator=validators.gt(0))
    retry_deadline: float = field(default=30.0, validator=validators.gt(0))
    max_workers: int = field(default=16, validator=validators.ge(1))
