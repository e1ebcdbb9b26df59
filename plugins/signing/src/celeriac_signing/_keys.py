"""Private keys, certificates and the trust store, with the signature schemes Celery uses.

Imported only when signing is configured: it imports ``cryptography``.

A signer is named as Celery's ``Certificate.get_id`` names it: the values of the issuer's
attributes joined by spaces, a space, and the serial number in decimal
(``"US Example Inc Example CA 4242"``). RSA keys sign with PSS (MGF1 with the digest, the
largest salt), exactly as ``celery/security/key.py`` does; Celery accepts nothing else.
EC keys (ECDSA with the digest) and Ed25519/Ed448 keys work between celeriac apps only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Final
from typing import TypeAlias
from typing import final

from attrs import frozen
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import ed448
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa

from celeriac.plugin import ConfigError

log = logging.getLogger("celeriac.signing")

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
)
PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
_PRIVATE_TYPES: Final = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)
_KEY_TYPES: Final = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)
_SUPPORTED: Final = "RSA (as Celery), EC or Ed25519/Ed448"


def digest_algorithm(name: str) -> hashes.HashAlgorithm:
    """The hash named as Celery names it (``sha256`` -> ``hashes.SHA256()``)."""
    algorithm: type[hashes.HashAlgorithm] = getattr(hashes, name.upper())
    return algorithm()


def signer_id(certificate: x509.Certificate) -> str:
    """Celery's id of a certificate: issuer attribute values, then the serial number."""
    values = (
        attribute.value if isinstance(attribute.value, str) else attribute.value.decode("utf-8", "replace")
        for attribute in certificate.issuer
    )
    return f"{' '.join(values)} {certificate.serial_number}"


def _pss(digest: hashes.HashAlgorithm) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.MAX_LENGTH)


def sign(key: PrivateKey, data: bytes, digest: hashes.HashAlgorithm) -> bytes:
    """Sign ``data`` with the scheme of the key's type."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _pss(digest), digest)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(digest))
    return key.sign(data)


def verify(key: PublicKey, signature: bytes, data: bytes, digest: hashes.HashAlgorithm) -> None:
    """Check a signature; raises ``cryptography.exceptions.InvalidSignature`` when it is wrong."""
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, _pss(digest), digest)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(digest))
    else:
        key.verify(signature, data)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"[signing] {what} {str(path)!r} cannot be read: {exc.strerror or exc}") from exc


@final
@frozen
class TrustedCertificate:
    """A certificate whose signatures are accepted, and the file it came from."""

    id: str
    certificate: x509.Certificate
    public_key: PublicKey
    source: str

    def validity_problem(self, now: dt.datetime) -> str | None:
        """Why the certificate is not valid at ``now``, or None when it is."""
        if now >= self.certificate.not_valid_after_utc:
            return f"its certificate expired at {self.certificate.not_valid_after_utc.isoformat()}"
        if now < self.certificate.not_valid_before_utc:
            return f"its certificate is not valid before {self.certificate.not_valid_before_utc.isoformat()}"
        return None


def _public_key(certificate: x509.Certificate, source: str) -> PublicKey:
    key = certificate.public_key()
    if not isinstance(key, _KEY_TYPES):
        raise ConfigError(
            f"[signing] certificate in {source!r} has a {type(key).__name__}; supported: {_SUPPORTED}"
        )
    return key


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM file (a bundle may hold several)."""
    try:
        return x509.load_pem_x509_certificates(_read(path, "certificate file"))
    except ValueError as exc:
        raise ConfigError(f"[signing] {str(path)!r} is not a PEM certificate file: {exc}") from exc


@final
class TrustStore:
    """The certificates of trusted signers, by signer id."""

    def __init__(self, certificates: Iterable[TrustedCertificate] = ()) -> None:
        self._by_id: dict[str, TrustedCertificate] = {}
        for trusted in certificates:
            other = self._by_id.setdefault(trusted.id, trusted)
            if other is not trusted:
                raise ConfigError(
                    f"[signing] trusted: {other.source!r} and {trusted.source!r} both hold a certificate "
                    f"named {trusted.id!r} (same issuer and serial number); a signature could not say "
                    "which one signed. Give every certificate its own serial number"
                )

    @classmethod
    def from_paths(cls, paths: Iterable[str]) -> TrustStore:
        """Read PEM files, and every non-hidden file of directories, as trusted certificates."""
        trusted: list[TrustedCertificate] = []
        now = dt.datetime.now(dt.UTC)
        for name in paths:
            path = Path(name)
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            elif path.exists():
                files = [path]
            else:
                raise ConfigError(f"[signing] trusted path {name!r} does not exist")
            for file in files:
                for certificate in load_certificates(file):
                    item = TrustedCertificate(
                        signer_id(certificate), certificate, _public_key(certificate, str(file)), str(file)
                    )
                    problem = item.validity_problem(now)
                    if problem is not None:
                        log.warning(
                            "trusted signer %r from %s: %s; its messages are refused", item.id, file, problem
                        )
                    trusted.append(item)
        return cls(trusted)

    def get(self, signer: str) -> TrustedCertificate | None:
        return self._by_id.get(signer)

    def __len__(self) -> int:
        return len(self._by_id)

    def ids(self) -> list[str]:
        return sorted(self._by_id)


@final
@frozen
class Signer:
    """A private key and the certificate that names it."""

    key: PrivateKey
    certificate: TrustedCertificate

    @property
    def id(self) -> str:
        return self.certificate.id

    @classmethod
    def from_files(cls, key_path: str, certificate_path: str, password: str | None = None) -> Signer:
        """Load and pair a PEM private key with its PEM certificate (the first of the file)."""
        data = _read(Path(key_path), "key")
        try:
            key = serialization.load_pem_private_key(
                data, password.encode() if password is not None else None
            )
        except (ValueError, TypeError) as exc:  # TypeError: a password missing or not needed
            raise ConfigError(f"[signing] key {key_path!r} cannot be loaded: {exc}") from exc
        if not isinstance(key, _PRIVATE_TYPES):
            raise ConfigError(
                f"[signing] key {key_path!r} is a {type(key).__name__}; supported: {_SUPPORTED}"
            )
        certificates = load_certificates(Path(certificate_path))
        certificate = certificates[0]
        public_key = _public_key(certificate, certificate_path)
        raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(*raw) != public_key.public_bytes(*raw):
            raise ConfigError(
                f"[signing] certificate {certificate_path!r} is not the certificate of key {key_path!r}: "
                "their public keys differ"
            )
        trusted = TrustedCertificate(signer_id(certificate), certificate, public_key, certificate_path)
        problem = trusted.validity_problem(dt.datetime.now(dt.UTC))
        if problem is not None:
            log.warning(
                "signing certificate %s: %s; messages cannot be signed with it", certificate_path, problem
            )
        return cls(key, trusted)

    def sign(self, data: bytes, digest: hashes.HashAlgorithm) -> bytes:
        return sign(self.key, data, digest)
