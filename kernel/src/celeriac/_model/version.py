"""The installed distribution's version, read once from its metadata."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("celeriac")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
