"""Signed task messages for celeriac: the ``auth`` serializer, in the layout of Celery's.

With ``serializer = "auth"`` a producer serializes each body with an inner serializer (json by
default), signs those bytes with its private key, and sends the signature and the name of its
certificate with them (content type ``application/data``). A worker with ``accept = ["auth"]``
runs a message only when a certificate in ``[signing] trusted`` verifies the signature; anything
else is dead-lettered with the reason. ``cryptography`` is imported only when ``[signing]`` is
configured.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING
from typing import Final

from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac.plugin import ConfigSection
from celeriac.plugin import Serializer
from celeriac.plugin import hookimpl
from celeriac_signing._config import DIGESTS
from celeriac_signing._config import SigningConfig
from celeriac_signing._serializer import CONTENT_TYPE
from celeriac_signing._serializer import SignatureError
from celeriac_signing._serializer import SigningSerializer

if TYPE_CHECKING:
    from celeriac.plugin import Worker

try:
    __version__ = _version("celeriac-signing")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

log = logging.getLogger("celeriac.signing")

SECTION: Final = "signing"
_AUTH: Final = frozenset({"auth", CONTENT_TYPE})


def _signs(config: Config) -> bool:
    return "auth" in {config.serializer, config.result_serializer} or any(
        task.serializer == "auth" for task in config.tasks.values()
    )


def _verifies(config: Config) -> bool:
    return bool(_AUTH & set(config.accept))


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    """Declare ``[signing]``."""
    return [ConfigSection(name=SECTION, cls=SigningConfig, description="message signing keys and trust")]


@hookimpl
def celeriac_add_serializers(config: Config) -> Sequence[Serializer]:
    """Offer ``auth`` built from ``[signing]``; nothing when ``[signing]`` is not configured.

    :raises ConfigError: when the configuration uses ``auth`` without what it needs: a key and
        certificate to sign with, trusted certificates to verify with.
    """
    section = config.section(SECTION, SigningConfig)
    if not section.configured:
        if _signs(config) or _verifies(config):
            raise ConfigError(
                "the 'auth' serializer is used (serializer, result_serializer or accept) but [signing] "
                "is not configured: set key and certificate to sign, trusted to verify"
            )
        return []
    if _signs(config) and section.key is None:
        raise ConfigError("serializer 'auth' signs messages: set [signing] key and certificate")
    if _verifies(config) and not section.trusted_paths:
        raise ConfigError(
            "accept lists 'auth', but [signing] trusted is empty: no signature could be verified"
        )
    return [SigningSerializer.from_config(section, config)]


@hookimpl
def celeriac_worker_ready(worker: Worker) -> None:
    """Warn when a worker that verifies signatures also accepts unsigned content types."""
    accept = set(worker.config.accept)
    if accept & _AUTH and accept - _AUTH:
        log.warning(
            "%s accepts signed messages but also unsigned ones (accept = %s): anyone who can "
            'publish to the broker can send it %s messages. Use accept = ["auth"] alone',
            worker.hostname,
            list(worker.config.accept),
            ", ".join(sorted(accept - _AUTH)),
        )


__all__ = [
    "CONTENT_TYPE",
    "DIGESTS",
    "SECTION",
    "SignatureError",
    "SigningConfig",
    "SigningSerializer",
    "__version__",
    "celeriac_add_config_sections",
    "celeriac_add_serializers",
    "celeriac_worker_ready",
]
