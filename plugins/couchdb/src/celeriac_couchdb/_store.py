"""Results as CouchDB documents: the key-value base over CouchDB's HTTP API and revisions.

A result is the document ``celery-task-meta-<task id>`` with the result JSON as text in
``value``, as Celery's CouchDB backend keeps it, and its expiry time in ``expires_at``
(epoch seconds): reads ignore a document past it, and the sweep deletes such documents (a
``_find`` on ``expires_at``, then ``_bulk_docs``). Every write names the revision it
replaces, so CouchDB's multi-version concurrency control makes a chord's parts (a list in
one document) safe: of concurrent writes to one revision, one wins and the others are
refused (409) and retried.
"""

from __future__ import annotations

import base64
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from typing import final
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlsplit

from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac.plugin import StoreUnreachableError
from celeriac_couchdb._config import CouchConfig

CONFLICT_ATTEMPTS = 100
#: Revisions remembered from reads, so that replacing a document is one request.
KNOWN_REVISIONS = 10_000
SWEEP_PAGE = 1000


def parse_url(url: str) -> tuple[str, str, str | None, str | None]:
    """``couchdb://[user:pass@]host:port/db`` -> (server URL, database, user, password)."""
    parts = urlsplit(url)
    database = parts.path.strip("/")
    if parts.scheme not in ("couchdb", "couchdbs") or not parts.hostname or not database or "/" in database:
        raise ConfigError(f"result_store {url!r}: expected couchdb://host:port/database")
    scheme = "https" if parts.scheme == "couchdbs" else "http"
    port = f":{parts.port}" if parts.port else ""
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return f"{scheme}://{parts.hostname}{port}", database, user, password


@final
class CouchKeyValue:
    """:class:`celeriac.plugin.KeyValue` on one CouchDB database."""

    def __init__(self, url: str, config: Config) -> None:
        import httpx

        self.settings = settings = config.section("couchdb", CouchConfig)
        server, self.database, user, password = parse_url(url)
        self.url = url
        user = settings.username or user
        password = settings.password or password or os.environ.get("COUCHDB_PASSWORD")
        self.http = httpx.Client(
            base_url=f"{server}/{quote(self.database, safe='')}/",
            auth=(user, password or "") if user else None,
            timeout=settings.timeout,
            limits=httpx.Limits(max_connections=settings.max_connections),
            headers={"Accept": "application/json"},
        )
        self._revisions: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._checked = False
        self._checking = threading.Lock()

    # --- HTTP ---------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; unreachable server and refused credentials become StoreUnreachableError."""
        import httpx

        if not self._checked:
            with self._checking:
                if not self._checked:
                    self._ensure_database()
                    self._checked = True
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise StoreUnreachableError(self.url, exc) from exc
        self._refused(response)
        return response

    def _refused(self, response: Any) -> None:
        if response.status_code in (401, 403):
            reason = response.json().get("reason", "") if response.content else ""
            raise StoreUnreachableError(
                self.url, f"the credentials were refused ({response.status_code}: {reason})"
            )

    def _ensure_database(self) -> None:
        import httpx

        try:
            found = self.http.get("")
            self._refused(found)
            if found.status_code == 404:
                if not self.settings.create_database:
                    raise StoreUnreachableError(self.url, f"the database {self.database!r} does not exist")
                created = self.http.put("")
                self._refused(created)
                if created.status_code not in (201, 202, 412):  # 412: created meanwhile
                    raise StoreUnreachableError(self.url, f"could not create the database: {created.text}")
        except httpx.TransportError as exc:
            raise StoreUnreachableError(self.url, exc) from exc

    @staticmethod
    def _id(key: str) -> str:
        return quote(key, safe="")

    # --- revisions ----------------------------------------------------------------------------

    def _remember(self, key: str, revision: str | None) -> None:
        with self._lock:
            if revision is None:
                self._revisions.pop(key, None)
                return
            self._revisions[key] = revision
            self._revisions.move_to_end(key)
            while len(self._revisions) > KNOWN_REVISIONS:
                self._revisions.popitem(last=False)

    def _known(self, key: str) -> str | None:
        with self._lock:
            return self._revisions.get(key)

    def _document(self, key: str) -> dict[str, Any] | None:
        response = self._request("GET", self._id(key))
        if response.status_code == 404:
            self._remember(key, None)
            return None
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        self._remember(key, document["_rev"])
        return document

    # --- KeyValue -----------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        return _value(self._document(key))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        response = self._request(
            "POST", "_all_docs", params={"include_docs": "true"}, json={"keys": list(keys)}
        )
        response.raise_for_status()
        found = {row["key"]: row.get("doc") for row in response.json()["rows"]}
        return [_value(found.get(key)) for key in keys]

    def set(self, key: str, value: bytes, expires: float | None) -> None:
        try:
            text, field = value.decode("utf-8"), "value"
        except UnicodeDecodeError:
            text, field = base64.b64encode(value).decode("ascii"), "value_base64"
        body: dict[str, Any] = {field: text}
        if expires is not None:
            body["expires_at"] = time.time() + expires
        self._replace(key, body)

    def _replace(self, key: str, body: dict[str, Any], revision: str | None = None) -> None:
        """PUT naming the revision last seen; on a conflict read the current one and again."""
        revision = revision or self._known(key)
        for attempt in range(CONFLICT_ATTEMPTS):
            document = {**body, **({"_rev": revision} if revision else {})}
            response = self._request("PUT", self._id(key), json=document)
            if response.status_code in (201, 202):
                self._remember(key, response.json()["rev"])
                return
            if response.status_code != 409:
                response.raise_for_status()
            current = self._document(key)
            revision = current["_rev"] if current is not None else None
            if attempt:
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
        raise RuntimeError(f"{self.url}: {key!r} not written after {CONFLICT_ATTEMPTS} conflicts")

    def delete(self, key: str) -> None:
        for _ in range(CONFLICT_ATTEMPTS):
            document = self._document(key)
            if document is None:
                return
            response = self._request("DELETE", self._id(key), params={"rev": document["_rev"]})
            if response.status_code in (200, 202, 404):
                self._remember(key, None)
                return
            if response.status_code != 409:
                response.raise_for_status()

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        for attempt in range(CONFLICT_ATTEMPTS):
            document = self._document(key)
            live = document is not None and not _expired(document)
            members: list[str] = list(document.get("members", [])) if document is not None and live else []
            if member in members:
                return 0
            members.append(member)
            body: dict[str, Any] = {"members": members}
            if expires is not None:
                body["expires_at"] = time.time() + expires
            if document is not None:
                body["_rev"] = document["_rev"]
            response = self._request("PUT", self._id(key), json=body)
            if response.status_code in (201, 202):
                self._remember(key, response.json()["rev"])
                return len(members)
            if response.status_code != 409:
                response.raise_for_status()
            time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
        raise RuntimeError(
            f"{self.url}: chord parts of {key!r} not counted after {CONFLICT_ATTEMPTS} conflicts"
        )

    def sweep(self) -> int:
        deleted = 0
        while True:
            query = {
                "selector": {"expires_at": {"$lt": time.time()}},
                "fields": ["_id", "_rev"],
                "limit": SWEEP_PAGE,
            }
            response = self._request("POST", "_find", json=query)
            response.raise_for_status()
            docs = response.json().get("docs", [])
            if not docs:
                return deleted
            gone = [{"_id": d["_id"], "_rev": d["_rev"], "_deleted": True} for d in docs]
            result = self._request("POST", "_bulk_docs", json={"docs": gone})
            result.raise_for_status()
            done = [row for row in result.json() if row.get("ok")]
            deleted += len(done)
            for row in done:
                self._remember(row["id"], None)
            if len(docs) < SWEEP_PAGE or not done:
                return deleted

    def close(self) -> None:
        self.http.close()


def _expired(document: dict[str, Any]) -> bool:
    expires = document.get("expires_at")
    return isinstance(expires, int | float) and expires <= time.time()


def _value(document: dict[str, Any] | None) -> bytes | None:
    if document is None or _expired(document):
        return None
    if "value" in document:
        value = document["value"]
        return value.encode("utf-8") if isinstance(value, str) else None
    if "value_base64" in document:
        return base64.b64decode(document["value_base64"])
    return None
