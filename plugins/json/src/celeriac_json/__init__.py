"""JSON serializer for celeriac, wire-compatible with Celery/kombu 5.3+ (``application/json``).

``datetime``, ``date``, ``time``, ``Decimal``, ``UUID`` and ``bytes`` travel as kombu's
``{"__type__": ..., "__value__": ...}`` tags, so Celery reads what celeriac sends and the other
way round. orjson is used when it is installed (``celeriac-json[fast]``), with results identical
to the standard library's json module.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import Any
from typing import Literal
from typing import final

from celeriac.plugin import PluginError
from celeriac.plugin import Serializer
from celeriac.plugin import hookimpl
from celeriac_json._stdlib import Codec
from celeriac_json._stdlib import StdlibCodec

try:
    __version__ = _version("celeriac-json")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

Backend = Literal["auto", "orjson", "stdlib"]


@final
class JsonSerializer:
    """Kombu-compatible JSON.

    :param backend: ``"orjson"`` or ``"stdlib"`` to force one; ``"auto"`` (the default) takes
        orjson when it can be imported. The choice is made on first use and kept; both give the
        same decoded values and equivalent JSON.

    ``dumps`` raises :class:`~celeriac.SerializationError` for a value JSON cannot carry,
    naming its type and where it sits (``value[0][1]``). ``loads`` raises
    :class:`~celeriac.MessageError` with the reason for bytes that are not valid JSON or
    hold a kombu tag it cannot read.
    """

    name = "json"
    content_type = "application/json"
    content_encoding = "utf-8"

    def __init__(self, *, backend: Backend = "auto") -> None:
        if backend not in ("auto", "orjson", "stdlib"):
            raise ValueError(f"backend must be 'auto', 'orjson' or 'stdlib', not {backend!r}")
        self._requested: Backend = backend
        self._codec: Codec | None = None

    @property
    def backend(self) -> str:
        """The codec in use, ``"orjson"`` or ``"stdlib"`` (choosing it if not done yet)."""
        return (self._codec or self._choose_codec()).name

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as UTF-8 JSON; tuples become lists, as in Celery."""
        return (self._codec or self._choose_codec()).dumps(value)

    def loads(self, data: bytes) -> Any:
        """Decode UTF-8 JSON bytes, reviving kombu's tagged types."""
        return (self._codec or self._choose_codec()).loads(data)

    def __repr__(self) -> str:
        return f"JsonSerializer(backend={self._requested!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The chosen codec holds the json module's C scanner, which cannot be pickled; a copy
        # sent to another process chooses again there.
        return (partial(JsonSerializer, backend=self._requested), ())

    def _choose_codec(self) -> Codec:
        # Imported here rather than at module import, so that loading the plugin stays cheap.
        stdlib = StdlibCodec()
        codec: Codec = stdlib
        if self._requested != "stdlib":
            try:
                from celeriac_json._orjson import OrjsonCodec
            except ImportError as exc:
                if self._requested == "orjson":
                    raise PluginError(
                        "JsonSerializer(backend='orjson') needs orjson: pip install 'celeriac-json[fast]'"
                    ) from exc
            else:
                codec = OrjsonCodec(stdlib)
        self._codec = codec
        return codec


@hookimpl
def celeriac_add_serializers() -> Sequence[Serializer]:
    """Offer the ``json`` serializer."""
    return [JsonSerializer()]


__all__ = ["Backend", "JsonSerializer", "__version__", "celeriac_add_serializers"]
