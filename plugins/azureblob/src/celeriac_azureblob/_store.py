"""Results as Azure block blobs: the key-value base over the blob API and ETag conditions.

Each result is the blob ``<prefix>celery-task-meta-<task id>`` in one container, its
expiry time in the blob's metadata (``celeriac_expires``): reads ignore a blob past it and
the sweep deletes such blobs. A chord's parts are a JSON list in one blob, replaced only
while its ETag is unchanged (``If-Match``; ``If-None-Match: *`` for the first part), so
concurrent workers never lose or double-count a part.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from typing import TypeVar
from typing import final
from urllib.parse import urlsplit

from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac.plugin import StoreUnreachableError
from celeriac_azureblob._config import AzureBlobConfig

T = TypeVar("T")
EXPIRES = "celeriac_expires"
CAS_ATTEMPTS = 100


def parse_url(url: str) -> tuple[str, str]:
    """``azureblob://container/prefix`` -> (container, ``prefix/``)."""
    parts = urlsplit(url)
    if parts.scheme != "azureblob" or not parts.netloc:
        raise ConfigError(
            f"result_store {url!r}: expected azureblob://container or azureblob://container/prefix"
        )
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


@final
class AzureBlobKeyValue:
    """:class:`celeriac.plugin.KeyValue` on one container, under one prefix."""

    def __init__(self, url: str, config: Config) -> None:
        from azure.storage.blob import BlobServiceClient

        self.settings = config.section("azureblob", AzureBlobConfig)
        self.container_name, self.prefix = parse_url(url)
        secret = self.settings.connection_string or os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if not secret:
            raise ConfigError(
                f"result_store {url!r}: no connection string ([azureblob] connection_string or "
                "AZURE_STORAGE_CONNECTION_STRING)"
            )
        service = BlobServiceClient.from_connection_string(
            secret,
            retry_total=self.settings.retries,
            connection_timeout=self.settings.timeout,
            read_timeout=self.settings.timeout,
        )
        self.where = f"{url} (endpoint {service.url.split('?')[0].rstrip('/')})"
        self.container = service.get_container_client(self.container_name)
        self._readers = ThreadPoolExecutor(self.settings.max_workers, thread_name_prefix="celeriac-azureblob")
        self._checked = False
        self._checking = threading.Lock()

    def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self._checked:
            with self._checking:
                if not self._checked:
                    if self.settings.create_container:
                        self._ensure_container()
                    self._checked = True
        return self._translate(method, *args, **kwargs)

    def _translate(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from azure.core.exceptions import ClientAuthenticationError
        from azure.core.exceptions import HttpResponseError
        from azure.core.exceptions import ResourceNotFoundError
        from azure.core.exceptions import ServiceRequestError

        try:
            return method(*args, **kwargs)
        except ServiceRequestError as exc:
            raise StoreUnreachableError(self.where, exc) from exc
        except ClientAuthenticationError as exc:
            reason = f"the credentials were refused ({getattr(exc, 'error_code', None) or exc.reason})"
            raise StoreUnreachableError(self.where, reason) from exc
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "ContainerNotFound":
                raise StoreUnreachableError(self.where, "the container does not exist") from exc
            raise
        except HttpResponseError as exc:
            # Azure answers a bad key with AuthenticationFailed, Azurite with AuthorizationFailure;
            # both are a 403 (a 412 or 409 of a conditional write is not this).
            if exc.status_code != 403:
                raise
            reason = f"the credentials were refused ({getattr(exc, 'error_code', None) or exc.reason})"
            raise StoreUnreachableError(self.where, reason) from exc

    def _ensure_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            self._translate(self.container.create_container)

    def _read(self, key: str, *, expired_as_empty: bool = False) -> tuple[bytes, str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            download = self._call(lambda: self.container.download_blob(self.prefix + key))
            body = download.readall()
        except ResourceNotFoundError:
            return None
        expires = (download.properties.metadata or {}).get(EXPIRES)
        if expires is not None and float(expires) <= time.time():
            # A chord's expired set is replaced in place (its tag kept for the condition).
            return (b"[]", str(download.properties.etag)) if expired_as_empty else None
        return body, str(download.properties.etag)

    def get(self, key: str) -> bytes | None:
        found = self._read(key)
        return None if found is None else found[0]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return list(self._readers.map(self.get, keys))

    def set(self, key: str, value: bytes, expires: float | None) -> None:
        self._call(
            self.container.upload_blob, self.prefix + key, value, overwrite=True, metadata=_metadata(expires)
        )

    def delete(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self._call(self.container.delete_blob, self.prefix + key)

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError
        from azure.core.exceptions import ResourceModifiedError

        for attempt in range(CAS_ATTEMPTS):
            found = self._read(key, expired_as_empty=True)
            members: list[str] = json.loads(found[0]) if found is not None else []
            if member in members:
                return 0
            members.append(member)
            condition: dict[str, Any] = (
                {"etag": found[1], "match_condition": MatchConditions.IfNotModified, "overwrite": True}
                if found is not None
                else {"overwrite": False}
            )
            try:
                self._call(
                    self.container.upload_blob,
                    self.prefix + key,
                    json.dumps(members).encode(),
                    metadata=_metadata(expires),
                    **condition,
                )
            except (ResourceModifiedError, ResourceExistsError):
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
                continue
            return len(members)
        raise RuntimeError(f"{self.where}: chord parts of {key!r} not counted after {CAS_ATTEMPTS} attempts")

    def sweep(self) -> int:
        now = time.time()
        blobs = self._call(self.container.list_blobs, name_starts_with=self.prefix, include=["metadata"])
        doomed = [b.name for b in blobs if float((b.metadata or {}).get(EXPIRES, "inf")) <= now]
        for start in range(0, len(doomed), 256):
            self._call(self.container.delete_blobs, *doomed[start : start + 256])
        return len(doomed)

    def close(self) -> None:
        self._readers.shutdown(wait=False)
        self.container.close()


def _metadata(expires: float | None) -> dict[str, str]:
    return {} if expires is None else {EXPIRES: repr(round(time.time() + expires, 3))}
