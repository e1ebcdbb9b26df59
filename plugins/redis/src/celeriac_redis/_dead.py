"""Dead-letter streams, one per queue (``<prefix>{<queue>}:dead``), shared by both layouts.

An entry holds the packed envelope (``m``), the ``reason``, the ``queue``, the number of
``deliveries`` and ``failed_at`` (server milliseconds). Its id is ``<queue>@<entry id>``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from celeriac.plugin import DeadLetter
from celeriac.plugin import Envelope
from celeriac.plugin import MessageError
from celeriac_redis._client import command
from celeriac_redis._packing import unpack

if TYPE_CHECKING:
    import redis


def list_dead_letters(
    client: redis.Redis, queues: Sequence[str], dead_key: Callable[[str], str], limit: int
) -> list[DeadLetter]:
    """The oldest ``limit`` dead letters of ``queues``, read in one pipeline."""
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            command(pipe, "XRANGE", dead_key(queue), "-", "+", "COUNT", limit)
        replies = pipe.execute()
    letters = [
        _letter(queue, entry) for queue, entries in zip(queues, replies, strict=True) for entry in entries
    ]
    letters.sort(key=lambda letter: letter.failed_at)
    return letters[:limit]


#: Count a dead-letter stream's entries and delete it, in one step: a worker that buries a
#: message meanwhile either lands before (counted, deleted) or after (kept).
_PURGE = "local n = redis.call('XLEN', KEYS[1]) redis.call('DEL', KEYS[1]) return n"


def purge_dead_letters(client: redis.Redis, queues: Sequence[str], dead_key: Callable[[str], str]) -> int:
    """Delete the dead letters of ``queues`` and count them: one script call per queue, since
    on Redis Cluster each queue's stream lives in a slot of its own."""
    script = client.register_script(_PURGE)  # computes the SHA locally; loads on first use
    return sum(int(script(keys=[dead_key(queue)])) for queue in queues)


def known_queues(client: redis.Redis, registry: str) -> list[str]:
    return sorted(text(name) for name in command(client, "SMEMBERS", registry))


def split_id(dead_letter_id: str) -> tuple[str, str] | None:
    """``(queue, entry id)`` of a dead letter's id, or None when it is not one."""
    queue, sep, entry_id = dead_letter_id.rpartition("@")
    return (queue, entry_id) if sep and queue and entry_id else None


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _letter(queue: str, entry: Any) -> DeadLetter:
    entry_id, fields = entry
    return DeadLetter(
        id=f"{queue}@{text(entry_id)}",
        queue=queue,
        envelope=_envelope(fields.get(b"m", b"")),
        reason=fields.get(b"reason", b"").decode(errors="replace"),
        failed_at=int(fields.get(b"failed_at", b"0")) / 1000,
    )


def _envelope(data: bytes) -> Envelope:
    # An entry that never was a packed envelope (another program's, dead-lettered for that)
    # is listed with its bytes as the body, instead of making the whole listing fail.
    try:
        return unpack(data)
    except MessageError:
        return Envelope(body=data, content_type="application/octet-stream")
