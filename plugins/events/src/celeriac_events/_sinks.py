"""The built-in event sinks: the broker's fan-out, a JSON-lines file, and a logger.

Each implements :class:`celeriac.EventSink`: ``send`` runs on the worker's hot path from
several threads, so it only buffers (or, for the log sink, hands the event to
:mod:`logging`); ``close`` delivers what is left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from typing import Any
from typing import final

from celeriac.plugin import Broadcaster
from celeriac.plugin import Envelope
from celeriac_events._buffer import BATCH_SIZE
from celeriac_events._buffer import Event
from celeriac_events._buffer import EventBuffer
from celeriac_events._wire import EVENT_CHANNEL
from celeriac_events._wire import dumps
from celeriac_events._wire import encode_events

log = logging.getLogger("celeriac.events")


@final
class BrokerSink:
    """Broadcasts events in batches on the ``celeryev`` channel of a transport with fan-out.

    Every ``interval`` seconds (or once ``batch_size`` events wait) the buffered events go
    out in Celery's shapes (:func:`encode_events`): task events as one list per flush, worker
    events one per message, each with its routing key. Events sent before a transport is bound are kept (up to
    ``max_buffer``) and go out once :meth:`bind` is called.

    :param transport: where to broadcast; ``None`` to bind one later.
    :param encode: turns a flush into envelopes (default :func:`encode_events`).
    """

    def __init__(
        self,
        transport: Broadcaster | None = None,
        *,
        channel: str = EVENT_CHANNEL,
        interval: float = 0.5,
        max_buffer: int = 10_000,
        batch_size: int = BATCH_SIZE,
        encode: Callable[[Sequence[Event]], Sequence[Envelope]] = encode_events,
    ) -> None:
        self.channel = channel
        self._transport = transport
        self._encode = encode
        self._buffer = EventBuffer(
            self._publish,
            interval=interval,
            max_buffer=max_buffer,
            batch_size=batch_size,
            name="celeriac-events-broker",
            autostart=transport is not None,
        )

    def __repr__(self) -> str:
        return f"<BrokerSink channel={self.channel!r} bound={self.bound}>"

    @property
    def bound(self) -> bool:
        return self._transport is not None

    def bind(self, transport: Broadcaster) -> None:
        """Give the sink its transport; events buffered so far go out at the next flush."""
        self._transport = transport
        self._buffer.autostart = True
        if self._buffer.pending():
            self._buffer.start()

    def discard(self) -> None:
        """Drop buffered events and ignore further ones (the transport has no fan-out)."""
        self._buffer.close(discard=True)

    def send(self, event: Mapping[str, Any]) -> None:
        self._buffer.put(event)

    def flush(self) -> int:
        """Broadcast what is buffered now, in the calling thread; returns how many events went."""
        return self._buffer.flush() if self.bound else 0

    def close(self) -> None:
        """Broadcast what is left and stop the flushing thread."""
        if self.bound:
            self._buffer.close()
            return
        lost = self._buffer.pending()
        self._buffer.close(discard=True)
        if lost:
            log.warning("%d events were never sent: no transport was bound to the broker sink", lost)

    def _publish(self, events: list[Event]) -> None:
        assert self._transport is not None  # the buffer starts only once bound
        for envelope in self._encode(events):
            self._transport.broadcast(self.channel, envelope)


@final
class JsonlSink:
    """Appends events to a file, one JSON object per line, written in batches.

    Each batch is a single ``write`` on a file opened for appending, so several workers can
    share one file without interleaving lines (on local file systems). The file is opened
    by the flushing thread at the first batch, not when the sink is built.
    """

    def __init__(self, path: str | Path, *, interval: float = 0.5, max_buffer: int = 10_000) -> None:
        self.path = Path(path)
        self._file: IO[bytes] | None = None
        self._buffer = EventBuffer(
            self._write, interval=interval, max_buffer=max_buffer, name="celeriac-events-jsonl"
        )

    def __repr__(self) -> str:
        return f"<JsonlSink {str(self.path)!r}>"

    def send(self, event: Mapping[str, Any]) -> None:
        self._buffer.put(event)

    def flush(self) -> int:
        """Write what is buffered now; returns how many events were written."""
        return self._buffer.flush()

    def close(self) -> None:
        """Write what is left and close the file."""
        self._buffer.close()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, events: list[Event]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        self._file.write(b"".join(dumps(event) + b"\n" for event in events))
        self._file.flush()


@final
class LogSink:
    """Logs every event on the ``celeriac.events`` logger at one level.

    The message is formatted only if a handler will emit it, so a level the logging
    configuration filters out costs one ``isEnabledFor`` check per event.
    """

    def __init__(self, level: int = logging.INFO, logger: logging.Logger | None = None) -> None:
        self.level = level
        self.logger = logger or log

    def __repr__(self) -> str:
        return f"<LogSink {self.logger.name} {logging.getLevelName(self.level)}>"

    def send(self, event: Mapping[str, Any]) -> None:
        if self.logger.isEnabledFor(self.level):
            self.logger.log(self.level, "%s", _EventText(event))

    def close(self) -> None:
        """Nothing buffered."""


@final
class _EventText:
    """``task-succeeded celeriac@host uuid=… runtime=0.01``, built only when logged."""

    __slots__ = ("event",)
    _STAMPS = frozenset({"type", "hostname", "timestamp", "utcoffset", "pid", "clock"})

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.event = event

    def __str__(self) -> str:
        fields = " ".join(f"{key}={value!r}" for key, value in self.event.items() if key not in self._STAMPS)
        return f"{self.event.get('type')} {self.event.get('hostname')} {fields}".rstrip()
