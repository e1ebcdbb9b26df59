"""Signed messages over a real transport: a worker on a SQLite file refuses unsigned and
tampered messages, dead-letters them with the reason, and keeps running.

The producers are separate apps on the same database file, as separate processes would be;
the dead letters are read back from the file by yet another app.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from celeriac import Celeriac
from celeriac import states
from celeriac import testing
from celeriac.plugin import DeadLetter
from celeriac.plugin import TaskMessage
from celeriac.testing import wait_for
from celeriac.testing import worker_thread

_PLUGINS = {ep.name for ep in entry_points(group="celeriac.plugins")}
pytestmark = [
    pytest.mark.skipif("sqlite" not in _PLUGINS, reason="celeriac-sqlite is not installed"),
    pytest.mark.skipif(
        "threads" not in _PLUGINS, reason="the worker's default pool (celeriac-threads) is not installed"
    ),
]
SEP = b"\x00\x01"
TASK = "tests.add"


@pytest.fixture
def signer(tmp_path: Path) -> dict[str, Any]:
    """The ``[signing]`` section of a producer (and worker) whose certificate is trusted."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Inc"),
            x509.NameAttribute(NameOID.COMMON_NAME, "producer"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, certificate_path = tmp_path / "producer.key", tmp_path / "producer.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return {"key": str(key_path), "certificate": str(certificate_path), "trusted": [str(certificate_path)]}


@pytest.fixture
def broker(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'broker.sqlite3'}"


@pytest.fixture
def open_app(broker: str) -> Iterator[Any]:
    opened: list[Celeriac] = []

    def open_app(**settings: Any) -> Celeriac:
        app = Celeriac(
            "tests", broker=broker, result_store=broker, plugins=[testing], env={}, config=False, **settings
        )
        app.task(name=TASK)(lambda x, y: x + y)
        opened.append(app)
        return app

    yield open_app
    for app in opened:
        app.close()


def signed_settings(signer: dict[str, Any]) -> dict[str, Any]:
    return {"serializer": "auth", "result_serializer": "auth", "accept": ["auth"], "signing": signer}


def tamper(body: bytes) -> bytes:
    """Change the arguments inside a signed payload, keeping its signer and signature."""
    signer, signature, content_type, encoding, inner = base64.b64decode(body).split(SEP, 4)
    assert b"[2,3]" in inner
    return base64.b64encode(
        SEP.join([signer, signature, content_type, encoding, inner.replace(b"[2,3]", b"[2,4]")])
    )


def wait_for_dead_letters(app: Celeriac, count: int, timeout: float = 10.0) -> list[DeadLetter]:
    return wait_for(
        lambda: letters if len(letters := app.transport.dead_letters()) >= count else None,
        timeout,
        f"{count} dead letters",
    )


def test_worker_on_sqlite_dead_letters_unsigned_and_tampered_and_keeps_running(
    open_app: Any, signer: dict[str, Any]
) -> None:
    unsigned_producer = open_app(serializer="json", result_serializer="json", accept=["json"])
    signed_producer = open_app(**signed_settings(signer))
    worker_app = open_app(**signed_settings(signer))

    unsigned_producer.send_task(TASK, (1, 1), task_id="unsigned")
    genuine = signed_producer.codec.encode_task(TaskMessage(id="tampered", task=TASK, args=(2, 3)))
    signed_producer.transport.publish("celery", [attrs.evolve(genuine, body=tamper(genuine.body))])

    with worker_thread(worker_app):
        letters = wait_for_dead_letters(worker_app, 2)
        # Still consuming: a signed message sent after the refused ones runs.
        assert signed_producer.send_task(TASK, (20, 22)).get(timeout=10) == 42

    reasons = {letter.envelope.headers["id"]: letter.reason for letter in letters}
    assert set(reasons) == {"unsigned", "tampered"}
    assert reasons["unsigned"] == (
        "cannot decode message: refused content type 'application/json': not in accept "
        "(application/data); add it to 'accept' to trust it"
    )
    assert reasons["tampered"].startswith("cannot decode message: bad signature from 'Example Inc producer ")
    assert "the body was changed after it was signed" in reasons["tampered"]

    # The dead letters are in the file, with the bytes as they arrived, for another app to see.
    reader = open_app(**signed_settings(signer))
    stored = {letter.envelope.headers["id"]: letter for letter in reader.transport.dead_letters()}
    assert set(stored) == {"unsigned", "tampered"}
    assert stored["tampered"].envelope.body == tamper(genuine.body)
    assert stored["unsigned"].envelope.content_type == "application/json"
    for task_id in ("unsigned", "tampered"):
        assert reader.AsyncResult(task_id).state == states.FAILURE
