"""Queue names and URLs: kombu's naming, creation on first use, dead-letter queues."""

from __future__ import annotations

import json
import string
import threading
from typing import Any
from typing import final

from celeriac_sqs._client import Endpoint
from celeriac_sqs._client import SqsError
from celeriac_sqs._client import call
from celeriac_sqs._client import code_of
from celeriac_sqs._config import SqsConfig

FIFO = ".fifo"
#: kombu's ``CHARS_REPLACE_TABLE``: dots become dashes, other punctuation but ``-_`` underscores.
_TABLE = {ord(c): "_" for c in string.punctuation if c not in "-_."}
_TABLE[ord(".")] = "-"
#: SQS's limit on queue names.
MAX_NAME = 80
MISSING = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def sqs_name(prefix: str, queue: str) -> str:
    """The SQS name of ``queue``, as kombu's ``canonical_queue_name`` makes it, so Celery and
    celeriac agree on it: ``celery`` stays ``celery``, ``a.b`` becomes ``a-b``, ``x.fifo`` keeps
    its suffix."""
    full = prefix + queue
    if full.endswith(FIFO):
        return full[: -len(FIFO)].translate(_TABLE) + FIFO
    return full.translate(_TABLE)


def is_fifo(name: str) -> bool:
    return name.endswith(FIFO)


@final
class Queues:
    """Queue URLs by celeriac queue name, looked up (or created) once per transport."""

    def __init__(self, client: Any, endpoint: Endpoint, settings: SqsConfig, visibility_timeout: int) -> None:
        self._client = client
        self._endpoint = endpoint
        self._settings = settings
        self._visibility = visibility_timeout
        self._urls: dict[str, str] = {}
        self._dead: dict[str, tuple[str, str]] = {}  # queue -> (dead-letter queue name, URL)
        self._lock = threading.Lock()

    def name(self, queue: str) -> str:
        name = sqs_name(self._settings.queue_prefix, queue)
        if len(name) > MAX_NAME:
            raise SqsError(f"queue {queue!r} is {name!r} on SQS, longer than SQS's {MAX_NAME} characters")
        return name

    def url(self, queue: str) -> str:
        """The queue's URL; created if missing and ``[sqs] create_queues`` allows."""
        found = self._urls.get(queue)
        if found is not None:
            return found
        with self._lock:
            found = self._urls.get(queue)
            if found is None:
                found = self._urls[queue] = self._resolve(self.name(queue), queue)
        return found

    def forget(self, queue: str) -> None:
        """Drop a cached URL (the queue was deleted behind our back)."""
        self._urls.pop(queue, None)
        self._dead.pop(queue, None)

    def _resolve(self, name: str, queue: str, attributes: dict[str, str] | None = None) -> str:
        from botocore.exceptions import ClientError

        try:
            response = call(
                self._endpoint, f"looking up queue {name!r}", self._client.get_queue_url, QueueName=name
            )
            return str(response["QueueUrl"])
        except ClientError as exc:
            if code_of(exc) not in MISSING:
                raise
        if not self._settings.create_queues:
            raise SqsError(
                f"queue {name!r} does not exist at {self._endpoint.label} and [sqs] create_queues is false"
            )
        wanted = {"VisibilityTimeout": str(self._visibility), **self._settings.queue_attributes}
        if is_fifo(name):
            wanted["FifoQueue"] = "true"
        wanted.update(attributes or {})
        if attributes is None and self._settings.redrive_max_receives is not None:
            _, dead_url = self.dead_letter_queue(queue, name)
            arn = self.arn(dead_url)
            policy = {"deadLetterTargetArn": arn, "maxReceiveCount": self._settings.redrive_max_receives}
            wanted["RedrivePolicy"] = json.dumps(policy)
        response = call(
            self._endpoint,
            f"creating queue {name!r}",
            self._client.create_queue,
            QueueName=name,
            Attributes=wanted,
        )
        return str(response["QueueUrl"])

    def attributes(self, url: str, *names: str) -> dict[str, str]:
        response = call(
            self._endpoint,
            f"reading attributes of {url}",
            self._client.get_queue_attributes,
            QueueUrl=url,
            AttributeNames=list(names),
        )
        return dict(response.get("Attributes", {}))

    def arn(self, url: str) -> str:
        return self.attributes(url, "QueueArn")["QueueArn"]

    def dead_letters_of(self, queue: str) -> tuple[str, str]:
        """(name, URL) of the queue's dead-letter queue: its redrive policy's if it has one."""
        found = self._dead.get(queue)
        if found is None:
            name = self.name(queue)
            policy = self.attributes(self.url(queue), "RedrivePolicy").get("RedrivePolicy")
            if policy:
                target = str(json.loads(policy)["deadLetterTargetArn"])
                found = self._by_arn(target)
            else:
                found = self.dead_letter_queue(queue, name)
            self._dead[queue] = found
        return found

    def dead_letter_queue(self, queue: str, name: str) -> tuple[str, str]:
        """Our own dead-letter queue of ``queue``, ``<name><suffix>[.fifo]``, created if missing."""
        suffix = self._settings.dead_letter_suffix
        dead = name[: -len(FIFO)] + suffix + FIFO if is_fifo(name) else name + suffix
        if len(dead) > MAX_NAME:
            raise SqsError(
                f"the dead-letter queue of {queue!r}, {dead!r}, is longer than {MAX_NAME} characters"
            )
        # Dead letters are kept as long as SQS keeps anything: 14 days.
        return dead, self._resolve(dead, queue, {"MessageRetentionPeriod": "1209600"})

    def _by_arn(self, arn: str) -> tuple[str, str]:
        # arn:aws:sqs:<region>:<account>:<name>
        parts = arn.split(":")
        name, account = parts[-1], parts[-2]
        response = call(
            self._endpoint,
            f"looking up the dead-letter queue {arn}",
            self._client.get_queue_url,
            QueueName=name,
            QueueOwnerAWSAccountId=account,
        )
        return name, str(response["QueueUrl"])

    def listed(self, suffix: str) -> list[tuple[str, str]]:
        """(name, URL) of every queue under ``queue_prefix`` whose name ends with ``suffix``."""
        found: list[tuple[str, str]] = []
        kwargs: dict[str, Any] = {"QueueNamePrefix": self._settings.queue_prefix, "MaxResults": 1000}
        while True:
            response = call(self._endpoint, "listing queues", self._client.list_queues, **kwargs)
            for url in response.get("QueueUrls", []):
                name = url.rstrip("/").rsplit("/", 1)[-1]
                if name.endswith(suffix):
                    found.append((name, url))
            token = response.get("NextToken")
            if not token:
                return found
            kwargs["NextToken"] = token
