"""Tests for celeriac-signing: Celery's payload, refusals through a real worker, rotation, config.

Keys and certificates are made for each test with ``cryptography`` and written as PEM files.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from typing import Literal

import attrs
import pytest
from attrs import frozen
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

import celeriac_signing
from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import MessageError
from celeriac import SerializationError
from celeriac import states
from celeriac import testing
from celeriac.plugin import Config
from celeriac.plugin import DeadLetter
from celeriac.plugin import Envelope
from celeriac.plugin import Serializer
from celeriac.plugin import TaskMessage
from celeriac.testing import wait_for
from celeriac.testing import worker_thread
from celeriac_signing import SignatureError
from celeriac_signing import SigningConfig
from celeriac_signing import SigningSerializer

needs_pool = pytest.mark.skipif(
    not any(ep.name == "threads" for ep in entry_points(group="celeriac.plugins")),
    reason="the worker's default pool comes from celeriac-threads, which is not installed",
)
KeyType = Literal["rsa", "ec", "ed25519"]


@frozen
class Identity:
    """A signer: its key and certificate files, and its Celery-style id."""

    key: Path
    certificate: Path
    id: str
    key_pem: bytes
    certificate_pem: bytes


MakeIdentity = Callable[..., Identity]


def _private_key(kind: KeyType) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def make_identity(tmp_path: Path) -> MakeIdentity:
    """Write a key and a certificate issued by "Example CA" (self-signed unless ``issuer_key``)."""

    def make(
        name: str,
        *,
        kind: KeyType = "rsa",
        serial: int | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        password: bytes | None = None,
    ) -> Identity:
        key = _private_key(kind)
        now = dt.datetime.now(dt.UTC)
        issuer = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Inc"),
                x509.NameAttribute(NameOID.COMMON_NAME, "Example CA"),
            ]
        )
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        serial = serial if serial is not None else x509.random_serial_number()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(not_before or now - dt.timedelta(days=1))
            .not_valid_after(not_after or now + dt.timedelta(days=30))
        )
        # The certificate is signed with its own key: a trust store holds leaf certificates and
        # checks no chain, as Celery's does, so the issuer's key does not matter here.
        algorithm = None if kind == "ed25519" else hashes.SHA256()
        certificate = builder.sign(key, algorithm)
        encryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
        folder = tmp_path / name
        folder.mkdir()
        (folder / "key.pem").write_bytes(key_pem)
        (folder / "cert.pem").write_bytes(certificate_pem)
        return Identity(
            key=folder / "key.pem",
            certificate=folder / "cert.pem",
            id=f"US Example Inc Example CA {serial}",
            key_pem=key_pem,
            certificate_pem=certificate_pem,
        )

    return make


SEP = b"\x00\x01"
BODY = [[2, 3], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]


def section(
    identity: Identity | None = None, trusted: tuple[Identity, ...] = (), **extra: Any
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if identity is not None:
        values |= {"key": str(identity.key), "certificate": str(identity.certificate)}
    if trusted:
        values["trusted"] = [str(item.certificate) for item in trusted]
    return values | extra


def make_app(signing: dict[str, Any] | None = None, **settings: Any) -> Celeriac:
    options: dict[str, Any] = {"serializer": "auth", "result_serializer": "auth", "accept": ["auth"]}
    options |= settings
    if signing is not None:
        options["signing"] = signing
    return Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=False, **options)


def serializer_of(app: Celeriac) -> SigningSerializer:
    found = app.codec.serializer("auth")
    assert isinstance(found, SigningSerializer)
    return found


@pytest.fixture
def alice(make_identity: MakeIdentity) -> Identity:
    return make_identity("alice")


@pytest.fixture
def app(alice: Identity) -> Iterator[Celeriac]:
    instance = make_app(section(alice, trusted=(alice,)))
    yield instance
    instance.close()


def wait_for_dead_letters(app: Celeriac, count: int, timeout: float = 5.0) -> list[DeadLetter]:
    return wait_for(
        lambda: letters if len(letters := app.transport.dead_letters()) >= count else None,
        timeout,
        f"{count} dead letters",
    )


def fields(data: bytes) -> list[bytes]:
    return base64.b64decode(data).split(SEP, 4)


def resign(data: bytes, **changes: bytes) -> bytes:
    """Rebuild a payload with some raw fields replaced (signer, signature, body ...)."""
    names = ["signer", "signature", "content_type", "content_encoding", "body"]
    parts = dict(zip(names, fields(data), strict=True)) | changes
    return base64.b64encode(SEP.join(parts[name] for name in names))


# --- the serializer and Celery's layout ----------------------------------------------------------


def test_round_trip_with_kombu_json_types(app: Celeriac) -> None:
    serializer = serializer_of(app)
    value = [
        [dt.datetime(2024, 5, 17, tzinfo=dt.UTC), uuid.UUID(int=3), Decimal("1.5"), b"\xff"],
        {"k": None},
        {},
    ]
    assert serializer.loads(serializer.dumps(value)) == value


def test_payload_is_celerys_layout(app: Celeriac, alice: Identity) -> None:
    data = serializer_of(app).dumps(BODY)
    signer, signature, content_type, content_encoding, body = fields(data)
    assert base64.b64decode(signer).decode() == alice.id
    assert alice.id.startswith("US Example Inc Example CA ")
    assert len(base64.b64decode(signature)) == 256  # RSA 2048
    assert (content_type, content_encoding) == (b"application/json", b"utf-8")
    assert body == b'[[2,3],{},{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'


def test_is_a_serializer_with_celerys_names(app: Celeriac) -> None:
    serializer = serializer_of(app)
    assert isinstance(serializer, Serializer)
    assert (serializer.name, serializer.content_type, serializer.content_encoding) == (
        "auth",
        "application/data",
        "utf-8",
    )


def test_body_containing_the_separator_round_trips(make_identity: MakeIdentity) -> None:
    pytest.importorskip("celeriac_msgpack")  # binary, so the separator appears in the body as is
    identity = make_identity("binary")
    serializer = serializer_of(make_app(section(identity, trusted=(identity,), serializer="msgpack")))
    value = [b"\x00\x01", "a\x00\x01b\x00\x01"]
    data = serializer.dumps(value)
    assert fields(data)[4].count(SEP) == 3
    assert serializer.loads(data) == value


@pytest.mark.parametrize("kind", ["ec", "ed25519"])
def test_other_key_types_between_celeriac_apps(make_identity: MakeIdentity, kind: str) -> None:
    identity = make_identity(f"{kind}-signer", kind=kind)
    serializer = serializer_of(make_app(section(identity, trusted=(identity,))))
    assert serializer.loads(serializer.dumps(BODY)) == BODY


def test_encrypted_key(make_identity: MakeIdentity) -> None:
    identity = make_identity("locked", password=b"s3cret")
    serializer = serializer_of(make_app(section(identity, trusted=(identity,), key_password="s3cret")))
    assert serializer.loads(serializer.dumps(BODY)) == BODY
    with pytest.raises(ConfigError, match=r"\[signing\] key '.*key\.pem' cannot be loaded"):
        make_app(section(identity, trusted=(identity,)))


@pytest.mark.parametrize("digest", ["sha512", "SHA3_256"])
def test_digest(make_identity: MakeIdentity, digest: str) -> None:
    identity = make_identity("digest")
    serializer = serializer_of(make_app(section(identity, trusted=(identity,), digest=digest)))
    data = serializer.dumps(BODY)
    assert serializer.loads(data) == BODY
    other = serializer_of(make_app(section(identity, trusted=(identity,))))  # sha256
    with pytest.raises(SignatureError, match="bad signature"):
        other.loads(data)


def test_inner_serializer_from_another_plugin(make_identity: MakeIdentity) -> None:
    pytest.importorskip("celeriac_msgpack")
    identity = make_identity("packer")
    serializer = serializer_of(make_app(section(identity, trusted=(identity,), serializer="msgpack")))
    data = serializer.dumps([b"\x00", dt.date(2024, 5, 17)])
    assert fields(data)[2] == b"application/x-msgpack"
    assert serializer.loads(data) == [b"\x00", dt.date(2024, 5, 17)]


# --- refusals ----------------------------------------------------------------------------------


def test_tampered_body_is_refused(app: Celeriac) -> None:
    serializer = serializer_of(app)
    data = serializer.dumps([[2, 3], {}, {}])
    tampered = resign(data, body=b"[[2,4],{},{}]")
    with pytest.raises(
        SignatureError, match=r"bad signature from 'US Example Inc Example CA .*': the body was changed"
    ):
        serializer.loads(tampered)


def test_unknown_signer_is_refused(app: Celeriac, make_identity: MakeIdentity) -> None:
    mallory = make_identity("mallory")
    forged = serializer_of(make_app(section(mallory, trusted=(mallory,)))).dumps(BODY)
    with pytest.raises(
        SignatureError, match=r"unknown signer 'US Example Inc Example CA \d+': no trusted certificate"
    ):
        serializer_of(app).loads(forged)


def test_a_trusted_name_with_another_key_is_refused(alice: Identity, make_identity: MakeIdentity) -> None:
    """Someone who copies a trusted certificate's issuer and serial number cannot sign as it."""
    serial = int(alice.id.rsplit(" ", 1)[1])
    impostor = make_identity("impostor", serial=serial)
    assert impostor.id == alice.id
    forged = serializer_of(make_app(section(impostor, trusted=(impostor,)))).dumps(BODY)
    with pytest.raises(SignatureError, match="bad signature"):
        serializer_of(make_app(section(trusted=(alice,)), serializer="json", result_serializer="json")).loads(
            forged
        )


def test_expired_signer_is_refused(make_identity: MakeIdentity, caplog: pytest.LogCaptureFixture) -> None:
    now = dt.datetime.now(dt.UTC)
    old = make_identity("old", not_before=now - dt.timedelta(days=60), not_after=now - dt.timedelta(days=1))
    caplog.set_level(logging.WARNING, logger="celeriac.signing")
    producer = make_app(section(old, trusted=(old,)))
    assert "messages cannot be signed with it" in caplog.text
    assert "its messages are refused" in caplog.text
    with pytest.raises(SerializationError, match=r"cannot sign with .*: its certificate expired at"):
        serializer_of(producer).dumps(BODY)
    # A body signed while the certificate was valid, checked after it expired.
    signer = serializer_of(producer).signer
    assert signer is not None
    body = b"[[],{},{}]"
    signature = signer.sign(body, hashes.SHA256())
    payload = base64.b64encode(
        SEP.join(
            [
                base64.b64encode(old.id.encode()),
                base64.b64encode(signature),
                b"application/json",
                b"utf-8",
                body,
            ]
        )
    )
    with pytest.raises(SignatureError, match=r"is not trusted now: its certificate expired at"):
        serializer_of(producer).loads(payload)


def test_signed_body_of_another_content_type_is_refused(app: Celeriac) -> None:
    pytest.importorskip("celeriac_pickle")
    serializer = serializer_of(app)
    body = b"\x80\x04K\x01."
    assert serializer.signer is not None
    signature = serializer.signer.sign(body, hashes.SHA256())
    payload = resign(
        serializer.dumps(1),
        signature=base64.b64encode(signature),
        content_type=b"application/x-python-serialize",
        body=body,
    )
    with pytest.raises(
        SignatureError,
        match=r"signed body is 'application/x-python-serialize', but \[signing\] serializer is 'json'",
    ):
        serializer.loads(payload)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[1, 2]", "not a signed message: the body is not base64"),
        (base64.b64encode(b"a\x00\x01b"), "not a signed message: expected 5 fields separated by"),
        (base64.b64encode(SEP.join([b"!!", b"x", b"a", b"b", b"c"])), "malformed signer or signature field"),
    ],
    ids=["json", "fields", "field-base64"],
)
def test_malformed_payloads(app: Celeriac, data: bytes, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        serializer_of(app).loads(data)


def test_verify_only_app_cannot_sign(alice: Identity) -> None:
    worker = make_app(section(trusted=(alice,)), serializer="json", result_serializer="json")
    with pytest.raises(SerializationError, match="cannot sign: \\[signing\\] has no key and certificate"):
        serializer_of(worker).dumps(BODY)


# --- Celery's own auth serializer --------------------------------------------------------------


@pytest.fixture
def celery_serializer(alice: Identity) -> Any:
    security = pytest.importorskip("celery.security.serialization")
    from celery.security.certificate import Certificate
    from celery.security.certificate import CertStore
    from celery.security.key import PrivateKey

    store = CertStore()
    store.add_cert(Certificate(alice.certificate_pem.decode()))
    return security.SecureSerializer(
        PrivateKey(alice.key_pem.decode()),
        Certificate(alice.certificate_pem.decode()),
        store,
        "sha256",
        "json",
    )


CELERY_VALUES = [
    BODY,
    [
        [dt.datetime(2024, 5, 17, 13, 45, tzinfo=dt.UTC), uuid.UUID(int=5), Decimal("2.50"), "é\x00\x01"],
        {"b": b"\xff"},
        {},
    ],
]


@pytest.mark.parametrize("value", CELERY_VALUES, ids=["body", "types"])
def test_celery_verifies_ours_and_we_verify_celerys(
    app: Celeriac, celery_serializer: Any, value: Any
) -> None:
    ours = serializer_of(app)
    from_celery = celery_serializer.serialize(value)
    assert isinstance(from_celery, str)
    assert ours.loads(from_celery.encode("utf-8")) == value
    assert celery_serializer.deserialize(ours.dumps(value)) == value


def test_celery_refuses_our_tampered_payload(app: Celeriac, celery_serializer: Any) -> None:
    from celery.exceptions import SecurityError

    tampered = resign(serializer_of(app).dumps(BODY), body=b"[[9,9],{},{}]")
    # Celery refuses it, though its message hides the reason: celery/security/utils.py catches
    # ``(cryptography.exceptions,)``, a module, so the InvalidSignature becomes a TypeError.
    with pytest.raises(SecurityError, match="Unable to deserialize"):
        celery_serializer.deserialize(tampered)


@needs_pool
def test_worker_runs_a_task_message_celery_built_and_signed(app: Celeriac, celery_serializer: Any) -> None:
    pytest.importorskip("celery")
    from celery import Celery

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    celery = Celery("proj", set_as_current=False)
    message = celery.amqp.as_task_v2("from-celery", "proj.add", args=(2, 3), kwargs={})
    envelope = Envelope(
        body=celery_serializer.serialize(message.body).encode("utf-8"),
        content_type="application/data",
        content_encoding="utf-8",
        headers=message.headers,
        properties=message.properties,
    )
    app.transport.publish("celery", [envelope])
    with worker_thread(app):
        assert app.AsyncResult("from-celery").get(timeout=5) == 5


# --- through a worker ----------------------------------------------------------------------------


@needs_pool
def test_worker_refuses_unsigned_tampered_and_unknown_signer_and_keeps_running(
    app: Celeriac, make_identity: MakeIdentity
) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    unsigned = make_app(serializer="json", result_serializer="json", accept=["json"])
    app.transport.publish(
        "celery", [unsigned.codec.encode_task(TaskMessage(id="unsigned", task=add.name, args=(1, 1)))]
    )

    signed = app.codec.encode_task(TaskMessage(id="tampered", task=add.name, args=(2, 3)))
    body = resign(signed.body, body=fields(signed.body)[4].replace(b"[2,3]", b"[2,4]"))
    app.transport.publish("celery", [attrs.evolve(signed, body=body)])

    mallory = make_identity("mallory")
    forger = make_app(section(mallory, trusted=(mallory,)))
    app.transport.publish(
        "celery", [forger.codec.encode_task(TaskMessage(id="forged", task=add.name, args=(4, 4)))]
    )

    with worker_thread(app):
        letters = wait_for_dead_letters(app, 3)
        assert add.delay(20, 22).get(timeout=5) == 42
    reasons = {letter.envelope.headers["id"]: letter.reason for letter in letters}
    assert reasons["unsigned"].startswith("cannot decode message: refused content type 'application/json'")
    assert reasons["tampered"].startswith(
        "cannot decode message: bad signature from 'US Example Inc Example CA "
    )
    assert reasons["forged"] == (
        f"cannot decode message: unknown signer {mallory.id!r}: no trusted certificate has this issuer "
        "and serial number ([signing] trusted holds 1)"
    )
    for task_id in reasons:
        assert app.AsyncResult(task_id).state == states.FAILURE


@needs_pool
def test_key_rotation_with_two_trusted_signers(make_identity: MakeIdentity, tmp_path: Path) -> None:
    old, new = make_identity("signer-2024"), make_identity("signer-2025")
    trusted_dir = tmp_path / "trusted"
    trusted_dir.mkdir()
    (trusted_dir / "2024.pem").write_bytes(old.certificate_pem)
    (trusted_dir / "2025.pem").write_bytes(new.certificate_pem)
    worker = make_app({"key": str(new.key), "certificate": str(new.certificate), "trusted": str(trusted_dir)})
    old_producer = make_app(section(old, trusted=(old, new)))
    new_producer = make_app(section(new, trusted=(old, new)))

    @worker.task(name="tests.double")
    def double(x: int) -> int:
        return 2 * x

    for task_id, producer in [("by-old", old_producer), ("by-new", new_producer)]:
        worker.transport.publish(
            "celery", [producer.codec.encode_task(TaskMessage(id=task_id, task="tests.double", args=(21,)))]
        )
    with worker_thread(worker):
        assert worker.AsyncResult("by-old").get(timeout=5) == 42
        assert worker.AsyncResult("by-new").get(timeout=5) == 42
    worker.close()

    # The old certificate retired: its messages are refused from now on.
    (trusted_dir / "2024.pem").unlink()
    rotated = make_app(
        {"key": str(new.key), "certificate": str(new.certificate), "trusted": [str(trusted_dir)]}
    )
    rotated.task(name="tests.double")(lambda x: 2 * x)
    rotated.transport.publish(
        "celery", [old_producer.codec.encode_task(TaskMessage(id="late", task="tests.double", args=(1,)))]
    )
    rotated.transport.publish(
        "celery", [new_producer.codec.encode_task(TaskMessage(id="fresh", task="tests.double", args=(1,)))]
    )
    with worker_thread(rotated):
        assert rotated.AsyncResult("fresh").get(timeout=5) == 2
        [letter] = wait_for_dead_letters(rotated, 1)
    assert letter.reason.startswith(f"cannot decode message: unknown signer {old.id!r}")
    rotated.close()


@needs_pool
def test_signed_and_compressed(make_identity: MakeIdentity) -> None:
    pytest.importorskip("celeriac_compression")
    identity = make_identity("zipper")
    app = make_app(section(identity, trusted=(identity,)), compression="zlib")

    @app.task
    def echo(text: str) -> str:
        return text

    envelope = app.codec.encode_task(TaskMessage(id="x", task=echo.name, args=("a" * 2000,)))
    assert envelope.headers["compression"] == "application/x-gzip"
    assert envelope.content_type == "application/data"
    with worker_thread(app):
        assert echo.delay("b" * 3000).get(timeout=5) == "b" * 3000
    app.close()


@needs_pool
def test_worker_accepting_unsigned_content_too_warns(
    alice: Identity, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(section(alice, trusted=(alice,)), accept=["auth", "json"])
    caplog.set_level(logging.WARNING, logger="celeriac.signing")
    with worker_thread(app):
        deadline = time.monotonic() + 5
        while "also unsigned ones" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "accepts signed messages but also unsigned ones" in caplog.text
    app.close()


# --- configuration ---------------------------------------------------------------------------------


def test_not_configured_offers_nothing() -> None:
    app = Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=False)
    assert celeriac_signing.celeriac_add_serializers(app.config) == []
    with pytest.raises(ConfigError, match="config key 'serializer' = 'auth': no such serializer"):
        app.codec.serializer("auth")


@pytest.mark.parametrize(
    "settings",
    [
        {"serializer": "auth"},
        {"result_serializer": "auth", "serializer": "json"},
        {"accept": ["application/data"]},
    ],
    ids=["serializer", "result_serializer", "accept"],
)
def test_using_auth_without_signing_config_is_a_config_error(settings: dict[str, Any]) -> None:
    options = {"serializer": "json", "result_serializer": "json", "accept": ["json"]} | settings
    with pytest.raises(
        ConfigError, match=r"the 'auth' serializer is used .* but \[signing\] is not configured"
    ):
        Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=False, **options)


def test_config_file(alice: Identity, tmp_path: Path) -> None:
    config = tmp_path / "celeriac.toml"
    config.write_text(
        'serializer = "auth"\nresult_serializer = "auth"\naccept = ["auth"]\n\n'
        f"[signing]\nkey = {str(alice.key)!r}\ncertificate = {str(alice.certificate)!r}\n"
        f'trusted = [{str(alice.certificate)!r}]\ndigest = "sha384"\n'
    )
    app = Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=config)
    serializer = serializer_of(app)
    assert (serializer.digest, serializer.trusted.ids()) == ("sha384", [alice.id])
    assert serializer.loads(serializer.dumps(BODY)) == BODY


def test_trusted_accepts_one_path(alice: Identity) -> None:
    assert SigningConfig(trusted=str(alice.certificate)).trusted_paths == (str(alice.certificate),)


def test_trusted_bundle_file(make_identity: MakeIdentity, tmp_path: Path) -> None:
    one, two = make_identity("one"), make_identity("two")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(one.certificate_pem + two.certificate_pem)
    app = make_app({"key": str(one.key), "certificate": str(one.certificate), "trusted": str(bundle)})
    assert serializer_of(app).trusted.ids() == sorted([one.id, two.id])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"certificate": None}, r"\[signing\] certificate is not set"),
        ({"key": None}, r"serializer 'auth' signs messages: set \[signing\] key and certificate"),
        ({"trusted": []}, r"accept lists 'auth', but \[signing\] trusted is empty"),
        ({"trusted": ["/no/such/dir"]}, r"\[signing\] trusted path '/no/such/dir' does not exist"),
        ({"key": "/no/key.pem"}, r"\[signing\] key '/no/key.pem' cannot be read"),
        ({"digest": "md5"}, "digest must be one of sha224, sha256"),
        ({"trusted": 5}, "trusted must be a path or a list of paths"),
        ({"serializer": "auth"}, r"\[signing\] serializer cannot be 'auth' itself"),
        (
            {"serializer": "nope"},
            r"\[signing\] serializer = 'nope': no installed celeriac plugin is named 'nope'",
        ),
        ({"colour": "red"}, "unknown key 'signing.colour'"),
    ],
    ids=[
        "no-cert",
        "no-key",
        "no-trusted",
        "missing-trusted",
        "missing-key",
        "md5",
        "trusted-type",
        "inner-auth",
        "inner-unknown",
        "unknown-key",
    ],
)
def test_config_errors(alice: Identity, change: dict[str, Any], message: str) -> None:
    values = section(alice, trusted=(alice,)) | change
    with pytest.raises(ConfigError, match=message):
        make_app({key: value for key, value in values.items() if value is not None})


def test_key_and_certificate_must_match(alice: Identity, make_identity: MakeIdentity) -> None:
    bob = make_identity("bob")
    with pytest.raises(
        ConfigError, match=r"certificate '.*bob/cert\.pem' is not the certificate of key '.*alice/key\.pem'"
    ):
        make_app(
            {"key": str(alice.key), "certificate": str(bob.certificate), "trusted": [str(alice.certificate)]}
        )


def test_two_trusted_certificates_with_one_name(alice: Identity, make_identity: MakeIdentity) -> None:
    twin = make_identity("twin", serial=int(alice.id.rsplit(" ", 1)[1]))
    with pytest.raises(
        ConfigError, match=r"both hold a certificate named .*Give every certificate its own serial number"
    ):
        make_app(section(alice, trusted=(alice, twin)))


def test_trusted_file_that_is_not_a_certificate(alice: Identity) -> None:
    with pytest.raises(ConfigError, match="is not a PEM certificate file"):
        make_app({"key": str(alice.key), "certificate": str(alice.certificate), "trusted": [str(alice.key)]})


def test_importing_the_plugin_does_not_import_cryptography() -> None:
    code = "import sys, celeriac_signing; print('cryptography' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_entry_point_is_registered() -> None:
    (point,) = [ep for ep in entry_points(group="celeriac.plugins") if ep.name == "signing"]
    assert point.value == "celeriac_signing"
    assert point.load() is celeriac_signing


def test_default_config_section() -> None:
    assert not Config().section("signing", SigningConfig).configured
