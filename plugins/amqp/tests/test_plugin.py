"""The plugin without a broker: discovery, config section, lazy imports, the URL's vhost."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from celeriac import ConfigError
from celeriac_amqp import AmqpConfig
from celeriac_amqp import _wire as wire


def test_entry_point_is_registered() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="celeriac.plugins")}
    assert found.get("amqp") == "celeriac_amqp"


def test_importing_does_not_import_pika() -> None:
    code = "import sys, celeriac_amqp; assert 'pika' not in sys.modules, 'pika imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_vhost_follows_kombus_convention() -> None:
    settings = AmqpConfig()
    assert wire.connection_parameters("amqp://guest:guest@127.0.0.1:5672//", settings).virtual_host == "/"
    assert wire.connection_parameters("amqp://127.0.0.1/", settings).virtual_host == "/"
    assert wire.connection_parameters("amqp://127.0.0.1/prod%2Fa", settings).virtual_host == "prod/a"


def test_queue_arguments() -> None:
    assert wire.queue_arguments(AmqpConfig()) == {}  # as Celery declares queues by default
    assert wire.queue_arguments(AmqpConfig(max_priority=10)) == {"x-max-priority": 10}
    assert wire.queue_arguments(AmqpConfig(queue_type="quorum", message_ttl=60)) == {
        "x-queue-type": "quorum",
        "x-message-ttl": 60000,
    }
    assert wire.queue_arguments(AmqpConfig(max_priority=0)) == {}


def test_amqps_verifies_the_server_by_default() -> None:
    import ssl

    parameters = wire.connection_parameters("amqps://u:p@127.0.0.1:5671/prod", AmqpConfig())
    context = parameters.ssl_options.context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert parameters.ssl_options.server_hostname == "127.0.0.1" and parameters.port == 5671
    assert wire.connection_parameters("amqp://127.0.0.1/", AmqpConfig()).ssl_options is None
    relaxed = wire.tls_context(AmqpConfig(ssl_check_hostname=False))
    assert relaxed.verify_mode == ssl.CERT_REQUIRED and not relaxed.check_hostname
    assert wire.tls_context(AmqpConfig(ssl_verify=False)).verify_mode == ssl.CERT_NONE


def test_tls_files_that_cannot_be_used_are_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match=r"ssl_ca_certs '.*nope\.pem' cannot be used"):
        wire.tls_context(AmqpConfig(ssl_ca_certs=missing))
    with pytest.raises(ConfigError, match=r"ssl_certfile '.*nope\.pem'"):
        wire.tls_context(AmqpConfig(ssl_certfile=missing))
    with pytest.raises(ConfigError, match="ssl_keyfile is set without ssl_certfile"):
        wire.tls_context(AmqpConfig(ssl_keyfile=missing))
