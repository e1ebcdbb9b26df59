"""Safe YAML serializer for celeriac (``application/x-yaml``), wire-compatible with kombu.

kombu registers ``yaml`` as PyYAML's ``safe_dump``/``safe_load`` under ``application/x-yaml``
(UTF-8); so does this plugin. Only YAML's standard tags are read: a document that asks for
a Python object (``!!python/object``, ``!!python/name`` ...) is refused, never constructed.
PyYAML is imported on first use, so loading the plugin stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from types import ModuleType
from typing import Any
from typing import Final
from typing import final

from celeriac.plugin import MessageError
from celeriac.plugin import PluginError
from celeriac.plugin import SerializationError
from celeriac.plugin import Serializer
from celeriac.plugin import hookimpl

try:
    __version__ = _version("celeriac-yaml")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

CONTENT_TYPE: Final = "application/x-yaml"
SUPPORTED: Final = "dict, list, tuple (as a list), set, str, bytes, int, float, bool, None, datetime and date"
_TAG = re.compile(r"tag '([^']*)'")


@final
class YamlSerializer:
    """YAML through PyYAML's safe dumper and loader (libyaml's C versions when available).

    ``dumps`` raises :class:`~celeriac.SerializationError` for a value safe YAML has no
    tag for (``time``, ``Decimal``, ``UUID``, your own classes); ``loads`` raises
    :class:`~celeriac.MessageError` for bytes that are not YAML, and for documents with
    tags safe loading refuses, naming the tag.
    """

    name = "yaml"
    content_type = CONTENT_TYPE
    content_encoding = "utf-8"

    def __init__(self) -> None:
        self._yaml: ModuleType | None = None

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as one YAML document, UTF-8, keys in insertion order."""
        yaml = self._yaml or self._import()
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        try:
            text: str = yaml.dump(value, Dumper=dumper, allow_unicode=True, sort_keys=False)
        except yaml.representer.RepresenterError as exc:
            kind = type(exc.args[1]) if len(exc.args) > 1 else None
            name = kind.__qualname__ if kind is not None else "value"
            raise SerializationError(
                f"cannot encode an object of type {name} as YAML: safe YAML carries {SUPPORTED}"
            ) from exc
        except RecursionError as exc:
            raise SerializationError("cannot encode value as YAML: it is nested too deeply") from exc
        # A lone surrogate (from os.fsdecode, say) has no UTF-8 form.
        except UnicodeEncodeError as exc:
            raise SerializationError(f"cannot encode value as YAML: {exc}") from exc
        return text.encode("utf-8")

    def loads(self, data: bytes) -> Any:
        """Decode one YAML document with safe loading only."""
        yaml = self._yaml or self._import()
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            return yaml.load(bytes(data), Loader=loader)  # a safe loader, chosen above
        except yaml.constructor.ConstructorError as exc:
            found = _TAG.search(str(exc.problem or ""))
            if found is None:
                raise MessageError(f"invalid YAML: {exc}") from exc
            tag = found.group(1)
            why = "; Python objects are never built from a message" if "python/" in tag else ""
            raise MessageError(
                f"refused YAML tag {tag!r}: only standard YAML types are loaded (safe loading){why}"
            ) from exc
        except yaml.YAMLError as exc:
            raise MessageError(f"invalid YAML: {exc}") from exc
        except RecursionError as exc:
            raise MessageError("invalid YAML: the document is nested too deeply") from exc

    def __repr__(self) -> str:
        return "YamlSerializer()"

    def __reduce__(self) -> tuple[Any, ...]:
        # The imported module cannot be pickled; a copy in another process imports it there.
        return (YamlSerializer, ())

    def _import(self) -> ModuleType:
        try:
            import yaml
        except ImportError as exc:
            raise PluginError("celeriac-yaml needs PyYAML: pip install PyYAML") from exc
        self._yaml = yaml
        return yaml


@hookimpl
def celeriac_add_serializers() -> Sequence[Serializer]:
    """Offer the ``yaml`` serializer."""
    return [YamlSerializer()]


__all__ = ["CONTENT_TYPE", "SUPPORTED", "YamlSerializer", "__version__", "celeriac_add_serializers"]
