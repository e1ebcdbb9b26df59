"""Encoding task messages and results with the serializers and compressors plugins offer.

The ``accept`` list is enforced here, on every decode: a worker never deserializes a
content type it was not told to trust (pickle stays off unless listed).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from celeriac._contract.protocols import Compressor
from celeriac._contract.protocols import Serializer
from celeriac._model.errors import ConfigError
from celeriac._model.errors import ContentDisallowedError
from celeriac._model.errors import MessageError
from celeriac._model.errors import SerializationError
from celeriac._model.message import TaskMessage
from celeriac._model.records import Envelope


class Codec:
    """Serializers and compressors chosen by configuration, with the accept list applied."""

    def __init__(
        self,
        serializers: Mapping[str, Serializer],
        compressors: Mapping[str, Compressor],
        *,
        serializer: str,
        accept: Iterable[str],
        compression: str | None = None,
        result_accept: Iterable[str] | None = None,
    ) -> None:
        self._by_name = dict(serializers)
        self._by_type = {s.content_type: s for s in serializers.values()}
        self._compressors = {c.content_type: c for c in compressors.values()}
        self.default = self.serializer(serializer, "serializer")
        self.accept = frozenset(self._content_type(item) for item in accept)
        #: What a result reader trusts; the task ``accept`` list unless set on its own.
        self.result_accept = (
            frozenset(self._content_type(item) for item in result_accept)
            if result_accept is not None
            else self.accept
        )
        self.compressor: Compressor | None = None
        #: Bodies shorter than this are sent uncompressed (an optional ``threshold`` attribute).
        self.compression_threshold = 0
        if compression:
            if compression not in compressors:
                raise ConfigError(
                    f"config key 'compression' = {compression!r}: no such compressor "
                    f"(installed: {', '.join(sorted(compressors)) or 'none'})"
                )
            self.compressor = compressors[compression]
            self.compression_threshold = int(getattr(self.compressor, "threshold", 0))
        # A serializer wrapping another (signing) may look it up here, once all are known.
        for candidate in self._by_name.values():
            bind = getattr(candidate, "bind", None)
            if callable(bind):
                bind(self)

    def serializer(self, name: str, key: str = "serializer") -> Serializer:
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(
                f"config key {key!r} = {name!r}: no such serializer "
                f"(installed: {', '.join(sorted(self._by_name)) or 'none'}; "
                f"install celeriac-{name} if it exists)"
            ) from None

    def _content_type(self, item: str) -> str:
        if item in self._by_name:
            return self._by_name[item].content_type
        if "/" in item:
            return item
        raise ConfigError(
            f"config key 'accept' lists {item!r}, which is neither an installed serializer "
            f"({', '.join(sorted(self._by_name)) or 'none'}) nor a content type"
        )

    # --- values -------------------------------------------------------------------

    def dumps(self, value: Any, serializer: str | None = None) -> tuple[bytes, Serializer]:
        chosen = self.serializer(serializer) if serializer else self.default
        try:
            return chosen.dumps(value), chosen
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(f"{chosen.name} cannot encode {type(value).__name__}: {exc}") from exc

    def loads(
        self,
        data: bytes,
        content_type: str,
        compression: str | None = None,
        *,
        accept: frozenset[str] | None = None,
    ) -> Any:
        """Decode bytes of an accepted content type; refused types raise ContentDisallowedError."""
        trusted = self.accept if accept is None else accept
        if content_type not in trusted:
            key = "accept" if accept is None else "result_accept"
            raise ContentDisallowedError(
                f"refused content type {content_type!r}: not in {key} "
                f"({', '.join(sorted(trusted))}); add it to {key!r} to trust it"
            )
        serializer = self._by_type.get(content_type)
        if serializer is None:
            raise MessageError(f"no serializer installed for content type {content_type!r}")
        if compression:
            data = self.decompress(data, compression)
        try:
            return serializer.loads(data)
        except MessageError:
            raise
        except Exception as exc:
            raise MessageError(f"body is not valid {serializer.name}: {exc}") from exc

    def decompress(self, data: bytes, compression: str) -> bytes:
        compressor = self._compressors.get(compression)
        if compressor is None:
            raise MessageError(f"message is compressed with {compression!r}, which no plugin decompresses")
        try:
            return compressor.decompress(data)
        except Exception as exc:
            raise MessageError(f"cannot decompress body ({compression}): {exc}") from exc

    # --- task messages --------------------------------------------------------------

    def encode_task(self, message: TaskMessage, serializer: str | None = None) -> Envelope:
        body, chosen = self.dumps(message.body(), serializer)
        headers = message.headers()
        if self.compressor is not None and len(body) >= self.compression_threshold:
            body = self.compressor.compress(body)
            headers["compression"] = self.compressor.content_type
        return Envelope(
            body=body,
            content_type=chosen.content_type,
            content_encoding=chosen.content_encoding,
            headers=headers,
            properties=message.properties(),
        )

    def decode_task(self, envelope: Envelope) -> TaskMessage:
        """Read protocol 2 (headers carry ``task``) or protocol 1 (the body carries everything)."""
        headers = envelope.headers
        body = self.loads(envelope.body, envelope.content_type, headers.get("compression"))
        if "task" in headers:
            return TaskMessage.from_protocol2(headers, body, envelope.properties)
        return TaskMessage.from_protocol1(body, envelope.properties, headers)
