"""Amazon SQS for celeriac, on boto3: ``broker = "sqs://"``.

Long polling, the visibility timeout renewed while a task runs, delays of any length
(SQS's own up to 15 minutes, longer ones in hops), FIFO queues, dead-letter queues with the
reason (beside an SQS redrive policy), batched sends, receives, deletes and visibility
changes, and broadcast over SNS. Messages are kombu's SQS messages, so Celery and celeriac
share the queues. Credentials come from boto3's standard chain.
Importing this module imports neither boto3 nor anything that connects.
"""

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import Transport
from celeriac.plugin import TransportSpec
from celeriac.plugin import hookimpl
from celeriac_sqs._client import SqsError
from celeriac_sqs._config import SqsConfig

try:
    __version__ = _version("celeriac-sqs")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["SqsConfig", "SqsError", "__version__", "make_transport"]


def make_transport(url: str, config: Config) -> Transport:
    """The SQS transport (with SNS broadcast when ``[sqs] broadcast``); boto3 is imported here."""
    from celeriac_sqs._transport import SqsBroadcastTransport
    from celeriac_sqs._transport import SqsTransport

    if config.section("sqs", SqsConfig).broadcast:
        return SqsBroadcastTransport(url, config)
    transport: Transport = SqsTransport(url, config)
    return transport


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="sqs", cls=SqsConfig, description="Amazon SQS transport settings")]


@hookimpl
def celeriac_add_transports() -> Sequence[TransportSpec]:
    return [
        TransportSpec(
            schemes=("sqs",),
            factory=make_transport,
            description="Amazon SQS (boto3): long polls, long delays, FIFO, dead letters, shared with Celery",
        )
    ]
