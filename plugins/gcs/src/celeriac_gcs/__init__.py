"""Google Cloud Storage results for celeriac: ``result_store = "gs://bucket/prefix"``.

Celery's ``gs://`` backend layout (an object ``<prefix>celery-task-meta-<task id>`` holding
the result JSON), expiry after ``result_expires``, chords counted with generation
preconditions. Credentials are Google's Application Default Credentials. Importing this
module imports no Google client.
"""

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import ResultStore
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import hookimpl
from celeriac_gcs._config import GcsConfig

try:
    __version__ = _version("celeriac-gcs")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["GcsConfig", "__version__", "make_result_store"]


def make_result_store(url: str, config: Config) -> ResultStore:
    """The Google Cloud Storage result store on the key-value base; its client is imported here."""
    from celeriac.plugin import KeyValueResultStore
    from celeriac_gcs._store import GcsKeyValue

    store: ResultStore = KeyValueResultStore(GcsKeyValue(url, config), config)
    return store


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="gcs", cls=GcsConfig, description="Google Cloud Storage result store")]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=("gs", "gcs"),
            factory=make_result_store,
            description="Google Cloud Storage: Celery's gs layout, expiry, chords by generation checks",
        )
    ]
