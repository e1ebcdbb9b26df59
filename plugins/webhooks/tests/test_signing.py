"""Signed requests: the receiving server checks X-Celeriac-Signature."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from celeriac import Celeriac
from celeriac.testing import worker_thread
from celeriac_webhooks import SignatureError
from celeriac_webhooks import send_url
from celeriac_webhooks import sign
from celeriac_webhooks import verify

if TYPE_CHECKING:
    from conftest import Server

SECRET = "s3cr3t-value-never-logged"


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = sign("key", b'{"a":1}', timestamp=1700000000)
    expected = hmac.new(b"key", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify("key", header, b'{"a":1}', now=1700000010) == 1700000000


@pytest.mark.parametrize(
    ("header", "body", "now", "problem"),
    [
        (None, b"x", 1700000000, "no X-Celeriac-Signature"),
        ("v1=abc", b"x", 1700000000, "no timestamp"),
        ("t=1700000000", b"x", 1700000000, "no v1"),
        (sign("key", b"x", timestamp=1700000000), b"y", 1700000000, "does not match"),
        (sign("other", b"x", timestamp=1700000000), b"x", 1700000000, "does not match"),
        (sign("key", b"x", timestamp=1700000000), b"x", 1700001000, "more than 300 s"),
    ],
)
def test_bad_signatures_are_refused(header: str | None, body: bytes, now: float, problem: str) -> None:
    with pytest.raises(SignatureError, match=problem):
        verify("key", header, body, now=now)


def test_rotation_accepts_any_v1() -> None:
    old = sign("old", b"x", timestamp=5).split("v1=")[1]
    new = sign("new", b"x", timestamp=5).split("v1=")[1]
    assert verify("new", f"t=5,v1={old},v1={new}", b"x", tolerance=0) == 5


def test_the_receiving_server_verifies_the_request(
    server: Server, make_app: Callable[..., Celeriac], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app(webhooks={"secret": SECRET})
    url = server.route("/signed", server.reply())
    with worker_thread(app):
        assert send_url(app, url, json={"order": 7}).get(timeout=10)["status_code"] == 200
    (received,) = server.requests_to("/signed")
    assert verify(SECRET, received.headers["x-celeriac-signature"], received.body) > 0
    with pytest.raises(SignatureError):
        verify("wrong", received.headers["x-celeriac-signature"], received.body)
    assert SECRET not in caplog.text
    assert SECRET not in repr(app.config)


def test_a_per_call_secret_signs_and_stays_out_of_the_arguments(worker: Celeriac, server: Server) -> None:
    url = server.route("/percall", server.reply())
    handle = send_url(worker, url, json={}, secret="per-call")
    handle.get(timeout=10)
    (received,) = server.requests_to("/percall")
    verify("per-call", received.headers["x-celeriac-signature"], received.body)
    message = worker.build_message("celeriac.webhook", (), {"url": url})
    assert "per-call" not in repr(message.kwargs)


def test_unsigned_without_a_secret(worker: Celeriac, server: Server) -> None:
    url = server.route("/plain", server.reply())
    send_url(worker, url, json={}).get(timeout=10)
    assert "x-celeriac-signature" not in server.requests_to("/plain")[0].headers
