"""``[signing]``: where the keys are, whom to trust, and what is signed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from typing import Final

from attrs import Attribute
from attrs import field
from attrs import frozen

#: Digests a signature may use: those of ``cryptography.hazmat.primitives.hashes`` that
#: Celery's ``getattr(hashes, digest.upper())()`` can build, less MD5 and SHA-1.
DIGESTS: Final = frozenset(
    {
        "sha224",
        "sha256",
        "sha384",
        "sha512",
        "sha512_224",
        "sha512_256",
        "sha3_224",
        "sha3_256",
        "sha3_384",
        "sha3_512",
    }
)


def _paths(value: Any) -> tuple[str, ...]:
    # TOML may give one path or a list; the kernel's strict converter would split a lone
    # string into characters if the field were typed as a tuple, so it arrives untouched.
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise TypeError(f"trusted must be a path or a list of paths (files or directories), not {value!r}")


def _check_digest(instance: object, attribute: Attribute[str], value: str) -> None:
    if value.lower() not in DIGESTS:
        raise ValueError(f"digest must be one of {', '.join(sorted(DIGESTS))}, not {value!r}")


@frozen(kw_only=True)
class SigningConfig:
    """``[signing]``: a private key and its certificate to sign, certificates to trust.

    Paths are relative to the current directory. A producer needs ``key`` and ``certificate``;
    a worker needs ``trusted`` (and ``key`` and ``certificate`` too if it signs its results).
    """

    #: PEM private key (RSA for Celery compatibility; EC and Ed25519 between celeriac apps).
    key: str | None = None
    #: Password of an encrypted key; better given as ``CELERIAC_SIGNING__KEY_PASSWORD``.
    key_password: str | None = field(default=None, repr=False)
    #: PEM X.509 certificate of ``key``; its issuer and serial number name the signer.
    certificate: str | None = None
    #: Certificates whose signatures are accepted: PEM files (bundles too) or directories
    #: of them. Several signers at once is how keys are rotated.
    trusted: Any = field(default=(), converter=_paths)
    #: The serializer that encodes the body before it is signed (Celery's default: json).
    serializer: str = "json"
    #: Hash used in signatures, as Celery's ``security_digest``.
    digest: str = field(default="sha256", validator=_check_digest)

    @property
    def configured(self) -> bool:
        """Whether any key, certificate or trusted certificate is set."""
        return bool(self.key or self.certificate or self.trusted)

    @property
    def trusted_paths(self) -> tuple[str, ...]:
        """``trusted``, typed."""
        paths: tuple[str, ...] = self.trusted
        return paths
