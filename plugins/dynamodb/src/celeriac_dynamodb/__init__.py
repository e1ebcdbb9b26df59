"""Amazon DynamoDB results for celeriac, on boto3: ``result_store = "dynamodb://table"``.

Celery's DynamoDB backend layout (items ``id``, ``result``, ``timestamp``, ``ttl``), expiry
through DynamoDB's TTL, chord parts counted with atomic conditional updates. Credentials come
from boto3's standard chain. Importing this module imports no boto3.
"""

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import ResultStore
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import hookimpl
from celeriac_dynamodb._config import DynamoConfig

try:
    __version__ = _version("celeriac-dynamodb")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["DynamoConfig", "__version__", "make_result_store"]


def make_result_store(url: str, config: Config) -> ResultStore:
    """The DynamoDB result store on the key-value base; boto3 is imported here."""
    from celeriac.plugin import KeyValueResultStore
    from celeriac_dynamodb._store import DynamoKeyValue

    store: ResultStore = KeyValueResultStore(DynamoKeyValue(url, config), config)
    return store


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [
        ConfigSection(name="dynamodb", cls=DynamoConfig, description="Amazon DynamoDB result store settings")
    ]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=("dynamodb",),
            factory=make_result_store,
            description="Amazon DynamoDB (boto3): Celery's layout, TTL expiry, chords by atomic updates",
        )
    ]
