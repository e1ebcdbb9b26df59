"""Results as Google Cloud Storage objects: the key-value base over the JSON API and generations.

Each result is the object ``<prefix>celery-task-meta-<task id>``, the JSON Celery's ``gs://``
backend writes under its base path, its expiry time in the object's metadata
(``celeriac-expires``): reads ignore an object past it and the sweep deletes such objects. A
chord's parts are a JSON list in one object, replaced only at the generation that was read
(``ifGenerationMatch``; 0 for the first part), so concurrent workers never lose or
double-count a part.
"""

from __future__ import annotations

import contextlib
import json
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
from celeriac_gcs._config import GcsConfig

T = TypeVar("T")
EXPIRES = "celeriac-expires"
CAS_ATTEMPTS = 100


def parse_url(url: str) -> tuple[str, str]:
    """``gs://bucket/prefix`` -> (bucket, ``prefix/``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("gs", "gcs") or not parts.netloc:
        raise ConfigError(f"result_store {url!r}: expected gs://bucket or gs://bucket/prefix")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


@final
class GcsKeyValue:
    """:class:`celeriac.plugin.KeyValue` on one bucket, under one prefix."""

    def __init__(self, url: str, config: Config) -> None:
        from google.api_core.retry import Retry
        from google.cloud import storage

        self.settings = settings = config.section("gcs", GcsConfig)
        self.bucket_name, self.prefix = parse_url(url)
        self.where = f"{url} (endpoint {settings.endpoint_url or 'https://storage.googleapis.com'})"
        credentials: Any = None
        if settings.credentials_file is not None:
            from google.oauth2 import service_account

            read = service_account.Credentials.from_service_account_file
            credentials = read(settings.credentials_file)  # type: ignore[no-untyped-call]
        elif settings.endpoint_url is not None:
            from google.auth.credentials import AnonymousCredentials

            credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        options = {"api_endpoint": settings.endpoint_url} if settings.endpoint_url else None
        self.client = storage.Client(
            project=settings.project, credentials=credentials, client_options=options
        )
        self.bucket = self.client.bucket(self.bucket_name)
        self._kw = {"timeout": settings.timeout, "retry": Retry(deadline=settings.retry_deadline)}
        self._readers = ThreadPoolExecutor(settings.max_workers, thread_name_prefix="celeriac-gcs")
        self._checked = False
        self._checking = threading.Lock()

    def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self._checked:
            with self._checking:
                if not self._checked:
                    self._ensure_bucket()
                    self._checked = True
        return self._translate(method, *args, **kwargs)

    def _translate(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from google.api_core import exceptions
        from google.auth.exceptions import GoogleAuthError
        from requests.exceptions import ConnectionError as RequestsConnectionError

        try:
            return method(*args, **kwargs)
        except (RequestsConnectionError, exceptions.RetryError, exceptions.ServiceUnavailable) as exc:
            raise StoreUnreachableError(self.where, exc) from exc
        except (exceptions.Unauthorized, exceptions.Forbidden, GoogleAuthError) as exc:
            raise StoreUnreachableError(self.where, f"the credentials were refused ({exc})") from exc

    def _ensure_bucket(self) -> None:
        from google.api_core.exceptions import Conflict

        # Checked once per process: reading a missing object and a missing bucket look alike.
        if self._translate(self.bucket.exists, **self._kw):
            return
        if not self.settings.create_bucket:
            raise StoreUnreachableError(self.where, "the bucket does not exist")
        with contextlib.suppress(Conflict):  # created meanwhile by another process
            self._translate(self.bucket.create, **self._kw)

    def _read(self, key: str, *, expired_as_empty: bool = False) -> tuple[bytes, int] | None:
        """The live object's content and generation, or None."""
        from google.api_core.exceptions import NotFound
        from google.api_core.exceptions import PreconditionFailed

        try:
            blob = self._call(self.bucket.get_blob, self.prefix + key, **self._kw)
            if blob is None:
                return None
            expires = (blob.metadata or {}).get(EXPIRES)
            if expires is not None and float(expires) <= time.time():
                # A chord's expired set is replaced in place (its generation kept for the condition).
                return (b"[]", int(blob.generation)) if expired_as_empty else None
            generation = int(blob.generation)
            body = self._call(blob.download_as_bytes, if_generation_match=generation, **self._kw)
        except NotFound:  # deleted between the two requests
            return None
        except PreconditionFailed:  # replaced between the two requests: read it again
            return self._read(key, expired_as_empty=expired_as_empty)
        return bytes(body), generation

    def get(self, key: str) -> bytes | None:
        found = self._read(key)
        return None if found is None else found[0]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return list(self._readers.map(self.get, keys))

    def _write(self, key: str, value: bytes, expires: float | None, **condition: Any) -> None:
        blob = self.bucket.blob(self.prefix + key)
        blob.metadata = _metadata(expires)
        self._call(
            blob.upload_from_string, value, content_type="application/octet-stream", **condition, **self._kw
        )

    def set(self, key: str, value: bytes, expires: float | None) -> None:
        self._write(key, value, expires)

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            self._call(self.bucket.delete_blob, self.prefix + key, **self._kw)

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        from google.api_core.exceptions import PreconditionFailed

        for attempt in range(CAS_ATTEMPTS):
            found = self._read(key, expired_as_empty=True)
            members: list[str] = json.loads(found[0]) if found is not None else []
            if member in members:
                return 0
            members.append(member)
            try:
                self._write(
                    key,
                    json.dumps(members).encode(),
                    expires,
                    if_generation_match=found[1] if found is not None else 0,
                )
            except PreconditionFailed:
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
                continue
            return len(members)
        raise RuntimeError(f"{self.where}: chord parts of {key!r} not counted after {CAS_ATTEMPTS} attempts")

    def sweep(self) -> int:
        now = time.time()
        doomed = 0
        for blob in self._call(self.client.list_blobs, self.bucket_name, prefix=self.prefix, **self._kw):
            metadata = blob.metadata
            if metadata is None:  # an emulator that lists no metadata: ask for the object's
                fresh = self._call(self.bucket.get_blob, blob.name, **self._kw)
                metadata = (fresh.metadata if fresh is not None else None) or {}
            if float(metadata.get(EXPIRES, "inf")) <= now:
                self.delete(blob.name[len(self.prefix) :])
                doomed += 1
        return doomed

    def close(self) -> None:
        self._readers.shutdown(wait=False)
        self.client.close()


def _metadata(expires: float | None) -> dict[str, str]:
    return {} if expires is None else {EXPIRES: repr(round(time.time() + expires, 3))}
