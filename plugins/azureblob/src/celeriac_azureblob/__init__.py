"""Azure Blob Storage results for celeriac: ``result_store = "azureblob://container/prefix"``.

Celery's ``azureblockblob`` layout (a block blob ``<prefix>celery-task-meta-<task id>``
holding the result JSON), expiry after ``result_expires``, chords counted with ETag
conditions. The account comes from a connection string. Importing this module imports no
Azure SDK.
"""

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import ResultStore
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import hookimpl
from celeriac_azureblob._config import AzureBlobConfig

try:
    __version__ = _version("celeriac-azureblob")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["AzureBlobConfig", "__version__", "make_result_store"]


def make_result_store(url: str, config: Config) -> ResultStore:
    """The Azure Blob result store on the key-value base; the Azure SDK is imported here."""
    from celeriac.plugin import KeyValueResultStore
    from celeriac_azureblob._store import AzureBlobKeyValue

    store: ResultStore = KeyValueResultStore(AzureBlobKeyValue(url, config), config)
    return store


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [
        ConfigSection(name="azureblob", cls=AzureBlobConfig, description="Azure Blob Storage result store")
    ]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=("azureblob",),
            factory=make_result_store,
            description="Azure Blob Storage: Celery's azureblockblob layout, expiry, chords by ETags",
        )
    ]
