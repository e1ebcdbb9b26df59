"""celeriac-dashboard: a live web dashboard and Flower-compatible HTTP API.

``celeriac dashboard`` reads the broker's events (celeriac and Celery workers alike),
keeps a bounded history in SQLite, steers workers through remote control and serves
pages that update live. Importing this module starts, opens and configures nothing: the
web stack is imported by the command.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac_dashboard._config import DEFAULT_PORT
from celeriac_dashboard._config import SECTION
from celeriac_dashboard._config import DashboardConfig
from celeriac_dashboard._hooks import celeriac_add_cli_commands
from celeriac_dashboard._hooks import celeriac_add_config_sections

try:
    __version__ = _version("celeriac-dashboard")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_PORT",
    "SECTION",
    "DashboardConfig",
    "__version__",
    "celeriac_add_cli_commands",
    "celeriac_add_config_sections",
]
