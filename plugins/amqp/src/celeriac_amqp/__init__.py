"""RabbitMQ for celeriac, on pika: ``broker = "amqp://guest:guest@localhost:5672//"``.

Durable queues, persistent messages and publisher confirms; manual acknowledgements with
a QoS prefetch; priorities; a dead-letter queue per queue; delayed delivery through TTL
delay queues that dead-letter into the target queue; fan-out broadcast for remote control
and events; ``result_store = "rpc://"``, results sent back to the client's reply queue;
named direct, topic and fanout exchanges with the queues bound to them (``[amqp.queues]``).
Celery's names and message layout, so Celery 5 shares the queues.
Importing this module imports neither pika nor anything that connects.
"""

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import ResultStore
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import Transport
from celeriac.plugin import TransportSpec
from celeriac.plugin import hookimpl
from celeriac_amqp._config import AmqpBinding
from celeriac_amqp._config import AmqpConfig
from celeriac_amqp._config import AmqpQueue
from celeriac_amqp._wire import SCHEMES

try:
    __version__ = _version("celeriac-amqp")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["AmqpBinding", "AmqpConfig", "AmqpQueue", "__version__", "make_result_store", "make_transport"]


def make_transport(url: str, config: Config) -> Transport:
    """The RabbitMQ transport; pika is imported here, when the transport is used."""
    from celeriac_amqp._transport import AmqpTransport

    transport: Transport = AmqpTransport(url, config)
    return transport


def make_result_store(url: str, config: Config) -> ResultStore:
    """The ``rpc://`` result store, on the broker's RabbitMQ; pika is imported here."""
    from celeriac_amqp._rpc import AmqpRpcResultStore

    store: ResultStore = AmqpRpcResultStore(url, config)
    return store


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="amqp", cls=AmqpConfig, description="RabbitMQ transport settings")]


@hookimpl
def celeriac_add_transports() -> Sequence[TransportSpec]:
    return [
        TransportSpec(
            schemes=SCHEMES,
            factory=make_transport,
            description="RabbitMQ (pika): confirms, manual acks, delay queues, Celery's AMQP names",
        )
    ]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=("rpc",),
            factory=make_result_store,
            description="rpc:// (RabbitMQ): results sent to the reply queue of the client that sent the task",
        )
    ]
