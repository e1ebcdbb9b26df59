"""Pickle serializer for celeriac (``application/x-python-serialize``), as kombu registers it.

Unpickling runs code chosen by whoever wrote the bytes, so a worker only unpickles when
``accept`` lists ``pickle`` (the kernel refuses every other content type), and then logs a
warning when it starts. Use it only when every producer that can reach the broker is trusted.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING
from typing import Any
from typing import Final
from typing import final

from attrs import field
from attrs import frozen

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import MessageError
from celeriac.plugin import SerializationError
from celeriac.plugin import Serializer
from celeriac.plugin import hookimpl

if TYPE_CHECKING:
    from celeriac.plugin import Worker

try:
    __version__ = _version("celeriac-pickle")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

log = logging.getLogger("celeriac.pickle")

CONTENT_TYPE: Final = "application/x-python-serialize"
#: kombu pickles with protocol 4 (its ``PICKLE_PROTOCOL`` default), which every Python 3.4+ reads.
DEFAULT_PROTOCOL: Final = 4


def _check_protocol(instance: object, attribute: object, value: int) -> None:
    if not 2 <= value <= pickle.HIGHEST_PROTOCOL:
        raise ValueError(f"protocol must be between 2 and {pickle.HIGHEST_PROTOCOL}, not {value}")


@frozen(kw_only=True)
class PickleConfig:
    """``[pickle]``: how values are pickled (reading accepts every protocol)."""

    protocol: int = field(default=DEFAULT_PROTOCOL, validator=_check_protocol)


@final
class PickleSerializer:
    """Python's pickle, wire-compatible with kombu's ``pickle`` serializer.

    :param protocol: the pickle protocol written; 4 by default, as kombu writes.

    ``dumps`` raises :class:`~celeriac.SerializationError` for values pickle refuses
    (lambdas, locks, open files ...); ``loads`` raises :class:`~celeriac.MessageError`
    for bytes that do not unpickle, including references to classes this process cannot import.
    """

    name = "pickle"
    content_type = CONTENT_TYPE
    content_encoding = "binary"

    def __init__(self, *, protocol: int = DEFAULT_PROTOCOL) -> None:
        _check_protocol(self, None, protocol)
        self.protocol = protocol

    def dumps(self, value: Any) -> bytes:
        """Pickle ``value``."""
        try:
            return pickle.dumps(value, protocol=self.protocol)
        # Pickling calls arbitrary __reduce__ methods, which may raise anything.
        except Exception as exc:
            raise SerializationError(f"cannot pickle {type(value).__name__}: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        """Unpickle ``data``: this runs whatever code the bytes name. Only for trusted producers."""
        try:
            return pickle.loads(data)  # guarded by ``accept``: refused unless listed
        # Unpickling raises UnpicklingError, but also EOFError, ImportError, AttributeError or
        # whatever a __setstate__ raises; all mean the same: this body cannot be read here.
        except Exception as exc:
            raise MessageError(f"cannot unpickle body: {type(exc).__name__}: {exc}") from exc

    def __repr__(self) -> str:
        return f"PickleSerializer(protocol={self.protocol})"


def accepts_pickle(config: Config) -> bool:
    """Tell whether ``accept`` lists pickle, by serializer name or content type."""
    return any(item in ("pickle", CONTENT_TYPE) for item in config.accept)


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    """Declare ``[pickle]``."""
    return [ConfigSection(name="pickle", cls=PickleConfig, description="pickle protocol written")]


@hookimpl
def celeriac_add_serializers(config: Config) -> Sequence[Serializer]:
    """Offer the ``pickle`` serializer; the kernel reads it only when ``accept`` lists it."""
    return [PickleSerializer(protocol=config.section("pickle", PickleConfig).protocol)]


@hookimpl
def celeriac_worker_ready(worker: Worker) -> None:
    """Warn that a worker accepting pickle runs code chosen by anyone who can publish to it."""
    if accepts_pickle(worker.config):
        log.warning(
            "%s accepts pickle (accept = %s): any client that can publish to the broker can "
            "run arbitrary code in this worker. Accept pickle only when every producer is "
            "trusted, or sign messages with celeriac-signing",
            worker.hostname,
            list(worker.config.accept),
        )


__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_PROTOCOL",
    "PickleConfig",
    "PickleSerializer",
    "__version__",
    "accepts_pickle",
    "celeriac_add_config_sections",
    "celeriac_add_serializers",
    "celeriac_worker_ready",
]
