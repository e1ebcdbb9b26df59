"""A boto3 client for S3 and the errors that name the store and its endpoint."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from typing import TypeVar

from celeriac.plugin import StoreUnreachableError
from celeriac_s3._config import S3Config

T = TypeVar("T")
#: Error codes with which AWS refuses the caller's credentials or rights.
REFUSED = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
)


def make_client(settings: S3Config) -> Any:
    """A thread-safe S3 client on boto3's credential chain; connects on first use."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        max_pool_connections=32,
        s3={"addressing_style": settings.addressing_style},
    )
    session = boto3.session.Session(region_name=settings.region)
    return session.client("s3", endpoint_url=settings.endpoint_url, config=config)


def code_of(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def call(where: str, method: Callable[..., T], **kwargs: Any) -> T:
    """``method(**kwargs)``; a dead endpoint, refused credentials or a missing bucket become
    :class:`StoreUnreachableError` naming ``where`` (the store's URL and endpoint)."""
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
    from botocore.exceptions import EndpointConnectionError
    from botocore.exceptions import NoCredentialsError

    try:
        return method(**kwargs)
    except NoCredentialsError as exc:
        raise StoreUnreachableError(
            where, "no AWS credentials (AWS_ACCESS_KEY_ID, a profile or a role)"
        ) from exc
    except EndpointConnectionError as exc:
        raise StoreUnreachableError(where, exc) from exc
    except ClientError as exc:
        code = code_of(exc)
        if code in REFUSED or (status_of(exc) == 403 and code not in ("PreconditionFailed",)):
            message = re.sub(r"\s+", " ", str(exc.response.get("Error", {}).get("Message", "")))
            raise StoreUnreachableError(where, f"the credentials were refused ({code}: {message})") from exc
        if code == "NoSuchBucket":
            raise StoreUnreachableError(where, "the bucket does not exist") from exc
        raise
    except BotoCoreError as exc:
        raise StoreUnreachableError(where, exc) from exc
