"""CouchDB results for celeriac: ``result_store = "couchdb://host:5984/database"``.

Celery's CouchDB backend layout (a document ``celery-task-meta-<task id>`` with the result
JSON in ``value``), expiry after ``result_expires``, chords counted under CouchDB's revision
control; through CouchDB's HTTP API with httpx, so any server speaking it works. Importing
this module imports no HTTP client.
"""

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import ResultStore
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import hookimpl
from celeriac_couchdb._config import CouchConfig

try:
    __version__ = _version("celeriac-couchdb")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["CouchConfig", "__version__", "make_result_store"]


def make_result_store(url: str, config: Config) -> ResultStore:
    """The CouchDB result store on the key-value base; httpx is imported here."""
    from celeriac.plugin import KeyValueResultStore
    from celeriac_couchdb._store import CouchKeyValue

    store: ResultStore = KeyValueResultStore(CouchKeyValue(url, config), config)
    return store


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="couchdb", cls=CouchConfig, description="CouchDB result store")]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=("couchdb", "couchdbs"),
            factory=make_result_store,
            description="CouchDB (HTTP API): Celery's layout, expiry, chords under revision control",
        )
    ]
