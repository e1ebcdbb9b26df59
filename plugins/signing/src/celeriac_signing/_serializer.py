"""The ``auth`` serializer: bodies signed by a trusted key, in Celery's payload layout."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from typing import Any
from typing import Final
from typing import final

from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac.plugin import MessageError
from celeriac.plugin import SerializationError
from celeriac.plugin import Serializer
from celeriac_signing._config import SigningConfig
from celeriac_signing._format import Payload
from celeriac_signing._format import pack
from celeriac_signing._format import unpack

if TYPE_CHECKING:
    from celeriac_signing._keys import Signer
    from celeriac_signing._keys import TrustStore

CONTENT_TYPE: Final = "application/data"


class SignatureError(MessageError):
    """A signed message failed verification: unknown signer, invalid certificate, bad signature."""


@final
class SigningSerializer:
    """Signs what ``inner`` serializes, and verifies and decodes signed bodies.

    :param inner: the serializer of the signed body (json by default in the config).
    :param trusted: certificates whose signatures are accepted.
    :param signer: the key and certificate to sign with; None for an app that only verifies.
    :param digest: the hash in signatures (``sha256``, ...).

    ``loads`` raises :class:`SignatureError` (a :class:`~celeriac.MessageError`) naming
    the reason when a body is not signed by a trusted, currently valid certificate, or was
    changed after signing; the body is decoded only after its signature checked out.
    """

    name = "auth"
    content_type = CONTENT_TYPE
    content_encoding = "utf-8"

    def __init__(
        self, *, inner: Serializer, trusted: TrustStore, signer: Signer | None = None, digest: str = "sha256"
    ) -> None:
        from celeriac_signing._keys import digest_algorithm

        self.inner = inner
        self.trusted = trusted
        self.signer = signer
        self.digest = digest
        self._hash = digest_algorithm(digest)

    @classmethod
    def from_config(
        cls, section: SigningConfig, config: Config | None = None, *, inner: Serializer | None = None
    ) -> SigningSerializer:
        """Read the key, certificate and trusted certificates ``[signing]`` names.

        :param inner: the body serializer; by default the one ``section.serializer`` names,
            from the installed plugin of that name.
        :raises ConfigError: for a file that cannot be read or parsed, a key that does not
            match its certificate, or two trusted certificates with the same name.
        """
        from celeriac_signing._inner import load_inner
        from celeriac_signing._keys import Signer
        from celeriac_signing._keys import TrustStore

        if (section.key is None) != (section.certificate is None):
            missing = "certificate" if section.certificate is None else "key"
            raise ConfigError(f"[signing] {missing} is not set: a key signs only with its certificate")
        signer = None
        if section.key is not None and section.certificate is not None:
            signer = Signer.from_files(section.key, section.certificate, section.key_password)
        return cls(
            inner=inner or load_inner(section.serializer, config or Config()),
            trusted=TrustStore.from_paths(section.trusted_paths),
            signer=signer,
            digest=section.digest.lower(),
        )

    def dumps(self, value: Any) -> bytes:
        """Serialize ``value`` with the inner serializer and sign the bytes."""
        signer = self.signer
        if signer is None:
            raise SerializationError(
                "cannot sign: [signing] has no key and certificate, so this app verifies signed "
                "messages but cannot send them"
            )
        problem = signer.certificate.validity_problem(dt.datetime.now(dt.UTC))
        if problem is not None:
            raise SerializationError(f"cannot sign with {signer.id!r}: {problem}")
        body = self.inner.dumps(value)
        return pack(
            Payload(
                signer=signer.id,
                signature=signer.sign(body, self._hash),
                content_type=self.inner.content_type,
                content_encoding=self.inner.content_encoding,
                body=body,
            )
        )

    def loads(self, data: bytes) -> Any:
        """Verify a signed body and decode it with the inner serializer."""
        from cryptography.exceptions import InvalidSignature

        from celeriac_signing._keys import verify

        payload = unpack(data)
        trusted = self.trusted.get(payload.signer)
        if trusted is None:
            raise SignatureError(
                f"unknown signer {payload.signer!r}: no trusted certificate has this issuer and serial "
                f"number ([signing] trusted holds {len(self.trusted)})"
            )
        problem = trusted.validity_problem(dt.datetime.now(dt.UTC))
        if problem is not None:
            raise SignatureError(f"signer {payload.signer!r} is not trusted now: {problem}")
        try:
            verify(trusted.public_key, payload.signature, payload.body, self._hash)
        except InvalidSignature:
            raise SignatureError(
                f"bad signature from {payload.signer!r}: the body was changed after it was signed, "
                f"or signed with another key or digest (expected {self.digest})"
            ) from None
        if payload.content_type != self.inner.content_type:
            raise SignatureError(
                f"signed body is {payload.content_type!r}, but [signing] serializer is "
                f"{self.inner.name!r} ({self.inner.content_type}); refused"
            )
        return self.inner.loads(payload.body)

    def __repr__(self) -> str:
        signer = self.signer.id if self.signer is not None else None
        return f"SigningSerializer(signer={signer!r}, trusted={len(self.trusted)}, inner={self.inner.name!r})"
