"""The plugin without a broker: discovery, config section, lazy imports, the URL's vhost."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

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
    assert wire.queue_arguments(AmqpConfig()) == {"x-max-priority": 10}
    assert wire.queue_arguments(AmqpConfig(queue_type="quorum", message_ttl=60)) == {
        "x-queue-type": "quorum",
        "x-message-ttl": 60000,
    }
    assert wire.queue_arguments(AmqpConfig(max_priority=0)) == {}
