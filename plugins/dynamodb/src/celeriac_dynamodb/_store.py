"""Results as DynamoDB items: the key-value base over GetItem, BatchGetItem and UpdateItem.

An item is Celery's DynamoDB backend layout: ``id`` (the key, a string), ``result`` (the
value, binary), ``timestamp``, and ``ttl`` (epoch seconds) on which the table's TTL deletes
expired items. DynamoDB deletes them in its own time (typically within days), so reads
ignore an item whose ``ttl`` has passed. A chord's parts are a string set, grown by one
conditional ``UpdateItem`` (``ADD``) per part: atomic, and a part added twice counts once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any
from typing import final
from urllib.parse import urlsplit

from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac.plugin import StoreUnreachableError
from celeriac.plugin import ValueRefusedError
from celeriac_dynamodb._aws import call
from celeriac_dynamodb._aws import code_of
from celeriac_dynamodb._aws import make_client
from celeriac_dynamodb._config import DynamoConfig

#: DynamoDB's item size limit is 400 KB, attribute names included.
MAX_VALUE = 400 * 1024 - 1024
BATCH_GET = 100


def parse_url(url: str) -> str:
    """``dynamodb://table`` (or Celery's ``dynamodb://.../table``) -> the table's name."""
    parts = urlsplit(url)
    table = parts.path.strip("/") or parts.netloc
    if parts.scheme != "dynamodb" or not table or "/" in table:
        raise ConfigError(f"result_store {url!r}: expected dynamodb://table")
    return table


@final
class DynamoKeyValue:
    """:class:`celeriac.plugin.KeyValue` on one table whose hash key is ``id``."""

    def __init__(self, url: str, config: Config) -> None:
        self.settings = config.section("dynamodb", DynamoConfig)
        self.table = parse_url(url)
        self.where = f"{url} (endpoint {self.settings.endpoint_url or 'AWS'})"
        self.client = make_client(self.settings)
        self._checked = False
        self._checking = threading.Lock()

    def _call(self, method: Any, **kwargs: Any) -> Any:
        if not self._checked:
            with self._checking:
                if not self._checked:
                    self._ensure_table()
                    self._checked = True
        return call(self.where, method, **kwargs)

    def _ensure_table(self) -> None:
        if not self.settings.create_table:
            return
        from botocore.exceptions import ClientError

        try:
            call(self.where, self.client.describe_table, TableName=self.table)
            return
        except StoreUnreachableError as exc:
            if code_of(exc.__cause__ or exc) != "ResourceNotFoundException":
                raise
        try:
            call(
                self.where,
                self.client.create_table,
                TableName=self.table,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if code_of(exc) != "ResourceInUseException":  # another process created it first
                raise
        waiter = self.client.get_waiter("table_exists")
        call(self.where, waiter.wait, TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        call(
            self.where,
            self.client.update_time_to_live,
            TableName=self.table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
        )

    def _id(self, key: str) -> str:
        """The item's ``id``: Celery's DynamoDB backend keeps ``str()`` of its bytes key, so its
        ids read ``b'celery-task-meta-<task id>'``; with ``celery_ids`` (the default) ours do too."""
        return f"b'{key}'" if self.settings.celery_ids else key

    def _key(self, item_id: str) -> str:
        if self.settings.celery_ids and item_id.startswith("b'") and item_id.endswith("'"):
            return item_id[2:-1]
        return item_id

    def get(self, key: str) -> bytes | None:
        found = self._call(
            self.client.get_item,
            TableName=self.table,
            Key={"id": {"S": self._id(key)}},
            ConsistentRead=self.settings.consistent_read,
            ProjectionExpression="#r, #t",
            ExpressionAttributeNames={"#r": "result", "#t": "ttl"},
        )
        return _value(found.get("Item"))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        found: dict[str, bytes | None] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"id": {"S": self._id(key)}} for key in unique[start : start + BATCH_GET]],
                    "ConsistentRead": self.settings.consistent_read,
                }
            }
            while request:
                response = self._call(self.client.batch_get_item, RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    found[self._key(item["id"]["S"])] = _value(item)
                request = response.get("UnprocessedKeys") or {}
                if request:
                    time.sleep(0.05)  # throttled: the rest is asked again
        return [found.get(key) for key in keys]

    def set(self, key: str, value: bytes, expires: float | None) -> None:
        if len(value) > MAX_VALUE:
            raise ValueRefusedError(
                f"a result of {len(value)} bytes is over DynamoDB's item size (400 KB) in {self.where}"
            )
        item: dict[str, Any] = {
            "id": {"S": self._id(key)},
            "result": {"B": value},
            "timestamp": {"N": repr(round(time.time(), 3))},
        }
        if expires is not None:
            item["ttl"] = {"N": str(int(time.time() + expires + 0.999))}
        self._call(self.client.put_item, TableName=self.table, Item=item)

    def delete(self, key: str) -> None:
        self._call(self.client.delete_item, TableName=self.table, Key={"id": {"S": self._id(key)}})

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        """One conditional ``ADD`` to the set; a set whose ``ttl`` passed (not yet deleted by
        DynamoDB) is replaced, under the condition that it still has that ``ttl``."""
        from botocore.exceptions import ClientError

        now = int(time.time())
        update = "ADD members :m"
        values: dict[str, Any] = {":m": {"SS": [member]}, ":member": {"S": member}, ":now": {"N": str(now)}}
        if expires is not None:
            update += " SET #t = :t"
            values[":t"] = {"N": str(int(time.time() + expires + 0.999))}
        for _ in range(100):
            try:
                response = self._call(
                    self.client.update_item,
                    TableName=self.table,
                    Key={"id": {"S": self._id(key)}},
                    UpdateExpression=update,
                    ConditionExpression=(
                        "(attribute_not_exists(members) OR NOT contains(members, :member))"
                        " AND (attribute_not_exists(#t) OR #t > :now)"
                    ),
                    ExpressionAttributeValues=values,
                    ExpressionAttributeNames={"#t": "ttl"},
                    ReturnValues="ALL_NEW",
                )
                return len(response["Attributes"]["members"]["SS"])
            except ClientError as exc:
                if code_of(exc) != "ConditionalCheckFailedException":
                    raise
            replaced = self._replace_expired(key, member, values.get(":t"), now)
            if replaced is not None:
                return replaced
        raise RuntimeError(f"{self.where}: chord parts of {key!r} not counted after 100 attempts")

    def _replace_expired(self, key: str, member: str, ttl: dict[str, str] | None, now: int) -> int | None:
        """After a failed add: 0 when the set is live (the member is in it then); 1 when its
        ``ttl`` had passed and it was started anew with the member; None when another writer
        changed it meanwhile (add again)."""
        from botocore.exceptions import ClientError

        item = self._call(
            self.client.get_item, TableName=self.table, Key={"id": {"S": self._id(key)}}, ConsistentRead=True
        ).get("Item")
        old = None if item is None else item.get("ttl")
        if item is not None and (old is None or float(old["N"]) > now):
            return 0
        fresh: dict[str, Any] = {"id": {"S": self._id(key)}, "members": {"SS": [member]}}
        if ttl is not None:
            fresh["ttl"] = ttl
        condition = "attribute_not_exists(id)" if item is None else "#t = :old"
        extra: dict[str, Any] = (
            {}
            if item is None
            else {"ExpressionAttributeNames": {"#t": "ttl"}, "ExpressionAttributeValues": {":old": old}}
        )
        try:
            self._call(
                self.client.put_item, TableName=self.table, Item=fresh, ConditionExpression=condition, **extra
            )
        except ClientError as exc:
            if code_of(exc) != "ConditionalCheckFailedException":
                raise
            return None
        return 1

    def sweep(self) -> int:
        """DynamoDB's TTL deletes expired items itself; reads ignore them until then."""
        return 0

    def close(self) -> None:
        self.client.close()


def _value(item: dict[str, Any] | None) -> bytes | None:
    if item is None or "result" not in item:
        return None
    ttl = item.get("ttl")
    if ttl is not None and float(ttl["N"]) <= time.time():
        return None
    return bytes(item["result"]["B"])
