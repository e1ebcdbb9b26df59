"""Results as S3 objects: the key-value base over GetObject, PutObject and conditional writes.

Each result is the object ``<prefix>celery-task-meta-<task id>``, the JSON Celery's S3
backend writes under its ``base_path``. Its expiry time is in the object's metadata
(``x-amz-meta-celeriac-expires``): reads ignore an object past it, and the sweep deletes
such objects. A chord's parts are a JSON list in one object, changed only with a
conditional write (``If-Match`` its ETag, or ``If-None-Match: *`` for the first part), so
concurrent workers never lose or double-count a part.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from typing import final
from urllib.parse import urlsplit

from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac_s3._aws import call
from celeriac_s3._aws import code_of
from celeriac_s3._aws import make_client
from celeriac_s3._config import S3Config

EXPIRES = "celeriac-expires"
#: A conditional write lost to a concurrent one is tried again, this many times at most.
CAS_ATTEMPTS = 100


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, ``prefix/``); the prefix may be empty."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"result_store {url!r}: expected s3://bucket or s3://bucket/prefix")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


@final
class S3KeyValue:
    """:class:`celeriac.plugin.KeyValue` on one bucket, under one prefix."""

    def __init__(self, url: str, config: Config) -> None:
        self.settings = config.section("s3", S3Config)
        self.bucket, self.prefix = parse_url(url)
        endpoint = self.settings.endpoint_url or "AWS"
        self.where = f"{url} (endpoint {endpoint})"
        self.client = make_client(self.settings)
        self._min_age = config.result_expires if config.result_expires > 0 else None
        self._readers = ThreadPoolExecutor(self.settings.max_workers, thread_name_prefix="celeriac-s3")
        self._checked = False
        self._checking = threading.Lock()

    def _call(self, method: Any, **kwargs: Any) -> Any:
        if not self._checked:
            with self._checking:
                if not self._checked:
                    self._ensure_bucket()
                    self._checked = True
        return call(self.where, method, Bucket=self.bucket, **kwargs)

    def _ensure_bucket(self) -> None:
        if not self.settings.create_bucket:
            return
        from botocore.exceptions import ClientError

        try:
            call(self.where, self.client.head_bucket, Bucket=self.bucket)
        except ClientError:
            extra: dict[str, Any] = {}
            region = self.client.meta.region_name
            if region and region != "us-east-1":
                extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
            call(self.where, self.client.create_bucket, Bucket=self.bucket, **extra)

    def _read(self, key: str, *, expired_as_empty: bool = False) -> tuple[bytes, str] | None:
        """The live object's body and ETag, or None."""
        from botocore.exceptions import ClientError

        try:
            found = self._call(self.client.get_object, Key=self.prefix + key)
        except ClientError as exc:
            if code_of(exc) in ("NoSuchKey", "404"):
                return None
            raise
        body: bytes = found["Body"].read()
        expires = found.get("Metadata", {}).get(EXPIRES)
        if expires is not None and float(expires) <= time.time():
            # A chord's expired set is replaced in place (its tag kept for the condition).
            return (b"[]", str(found["ETag"])) if expired_as_empty else None
        return body, str(found["ETag"])

    def get(self, key: str) -> bytes | None:
        found = self._read(key)
        return None if found is None else found[0]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return list(self._readers.map(self.get, keys))

    def set(self, key: str, value: bytes, expires: float | None) -> None:
        self._call(self.client.put_object, Key=self.prefix + key, Body=value, Metadata=_metadata(expires))

    def delete(self, key: str) -> None:
        self._call(self.client.delete_object, Key=self.prefix + key)

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        from botocore.exceptions import ClientError

        for attempt in range(CAS_ATTEMPTS):
            found = self._read(key, expired_as_empty=True)
            members: list[str] = json.loads(found[0]) if found is not None else []
            if member in members:
                return 0
            members.append(member)
            condition = {"IfMatch": found[1]} if found is not None else {"IfNoneMatch": "*"}
            try:
                self._call(
                    self.client.put_object,
                    Key=self.prefix + key,
                    Body=json.dumps(members).encode(),
                    Metadata=_metadata(expires),
                    **condition,
                )
            except ClientError as exc:
                # Another worker's write came first (412), or is under way (409): read again.
                if code_of(exc) not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                    raise
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
                continue
            return len(members)
        raise RuntimeError(f"{self.where}: chord parts of {key!r} not counted after {CAS_ATTEMPTS} attempts")

    def sweep(self) -> int:
        """Delete objects whose expiry passed; only those older than ``result_expires`` are read."""
        if self._min_age is None:
            return 0
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self._min_age)
        now = time.time()
        doomed: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in call(self.where, paginator.paginate, Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                if item["LastModified"] > cutoff:
                    continue
                head = self._call(self.client.head_object, Key=item["Key"])
                expires = head.get("Metadata", {}).get(EXPIRES)
                if expires is not None and float(expires) <= now:
                    doomed.append(item["Key"])
        for start in range(0, len(doomed), 1000):
            objects = [{"Key": k} for k in doomed[start : start + 1000]]
            self._call(self.client.delete_objects, Delete={"Objects": objects, "Quiet": True})
        return len(doomed)

    def close(self) -> None:
        self._readers.shutdown(wait=False)
        self.client.close()


def _metadata(expires: float | None) -> dict[str, str]:
    return {} if expires is None else {EXPIRES: repr(round(time.time() + expires, 3))}
