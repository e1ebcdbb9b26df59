"""Amazon S3 results for celeriac, on boto3: ``result_store = "s3://bucket/prefix"``.

Celery's S3 backend layout (an object ``<prefix>celery-task-meta-<task id>`` holding the
result JSON), expiry after ``result_expires``, chords counted with S3's conditional writes.
Credentials come from boto3's standard chain. Importing this module imports no boto3.
"""

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import ResultStore
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import hookimpl
from celeriac_s3._config import S3Config

try:
    __version__ = _version("celeriac-s3")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["S3Config", "__version__", "make_result_store"]


def make_result_store(url: str, config: Config) -> ResultStore:
    """The S3 result store on the key-value base; boto3 is imported here."""
    from celeriac.plugin import KeyValueResultStore
    from celeriac_s3._store import S3KeyValue

    store: ResultStore = KeyValueResultStore(S3KeyValue(url, config), config)
    return store


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="s3", cls=S3Config, description="Amazon S3 result store settings")]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=("s3",),
            factory=make_result_store,
            description="Amazon S3 (boto3): Celery's S3 layout, expiry, chords by conditional writes",
        )
    ]
