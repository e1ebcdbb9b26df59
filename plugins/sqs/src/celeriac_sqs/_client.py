"""boto3 clients for SQS and SNS, and errors that name the endpoint and the cause."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from typing import TypeVar
from urllib.parse import unquote
from urllib.parse import urlsplit

from attrs import frozen

from celeriac.plugin import CeleriacError
from celeriac_sqs._config import SqsConfig

T = TypeVar("T")
#: Error codes with which AWS refuses who the caller is or what it may do.
REFUSED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "InvalidClientTokenId",
        "InvalidSecurity",
        "MissingAuthenticationToken",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "ExpiredToken",
    }
)
DEFAULT_REGION = "us-east-1"


class SqsError(CeleriacError):
    """SQS or SNS could not be used: unreachable, credentials refused, a queue missing."""


@frozen(kw_only=True)
class Endpoint:
    """Where the clients go: the region, the endpoint (None: AWS's own) and URL credentials."""

    region: str
    url: str | None
    access_key: str | None = None
    secret_key: str | None = None

    @property
    def label(self) -> str:
        """The endpoint as errors name it; never a credential."""
        return self.url or f"AWS in {self.region}"


def endpoint_of(broker_url: str, settings: SqsConfig) -> Endpoint:
    """``sqs://`` (AWS), ``sqs://host:port`` (that endpoint over http) or ``sqs://key:secret@``.

    ``[sqs] endpoint_url`` and ``region`` take precedence over the URL and over boto3's
    defaults; credentials in the URL, as kombu allows, over boto3's chain.
    """
    parts = urlsplit(broker_url)
    url = settings.endpoint_url
    if url is None and parts.hostname:
        url = f"http://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    region = settings.region
    if region is None:
        import boto3

        region = boto3.session.Session().region_name or DEFAULT_REGION
    key = unquote(parts.username) if parts.username else None
    secret = unquote(parts.password) if parts.password else None
    return Endpoint(region=region, url=url, access_key=key, secret_key=secret)


def make_client(service: str, endpoint: Endpoint, settings: SqsConfig) -> Any:
    """A thread-safe boto3 client; connects on its first call, not here."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        region_name=endpoint.region,
    )
    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        max_pool_connections=32,  # the consumer, the settler, the timer and the pool threads
    )
    return session.client(service, endpoint_url=endpoint.url, config=config)


def call(endpoint: Endpoint, what: str, method: Callable[..., T], **kwargs: Any) -> T:
    """``method(**kwargs)``, turning a dead endpoint or refused credentials into :class:`SqsError`.

    :param what: what was being done, for the message (``"receiving from 'celery'"``).
    """
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
    from botocore.exceptions import EndpointConnectionError
    from botocore.exceptions import NoCredentialsError

    try:
        return method(**kwargs)
    except NoCredentialsError as exc:
        raise SqsError(
            f"no AWS credentials for {endpoint.label} while {what}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance or task role"
        ) from exc
    except EndpointConnectionError as exc:
        raise SqsError(f"{endpoint.label} is unreachable while {what}: {exc}") from exc
    except ClientError as exc:
        if refused(exc):
            message = str(exc.response.get("Error", {}).get("Message", ""))
            found = re.search(r"<Message>([^<]+)</Message>", message)
            message = found.group(1) if found else message
            raise SqsError(
                f"{endpoint.label} refused the credentials while {what}: {code_of(exc)}: {message}"
            ) from exc
        raise
    except BotoCoreError as exc:
        raise SqsError(f"{endpoint.label} failed while {what}: {exc}") from exc


def refused(exc: BaseException) -> bool:
    """Did AWS refuse the caller? Its code says so, or a 403 (an emulator's error may not parse)."""
    response = getattr(exc, "response", None)
    status = (
        response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
    )
    return code_of(exc) in REFUSED or status == 403


def code_of(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else).

    moto answers SQS's JSON protocol with an XML error body, which botocore does not parse:
    the code is then read from that XML.
    """
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    error = response.get("Error", {})
    code = str(error.get("Code", ""))
    found = re.search(r"<Code>([^<]+)</Code>", str(error.get("Message", "")))
    return found.group(1) if found and code.isdigit() else code
