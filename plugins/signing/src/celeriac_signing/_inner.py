"""Finding the serializer that encodes a body before it is signed.

A serializer hook sees only the configuration, not what other plugins offer, so the inner
serializer is taken from the installed plugin of the same name, through its entry point:
``serializer = "msgpack"`` loads the ``msgpack`` plugin and asks it for its serializers.
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points

from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac.plugin import Serializer

ENTRY_POINT_GROUP = "celeriac.plugins"


def load_inner(name: str, config: Config) -> Serializer:
    """The serializer ``name`` from the installed plugin with that entry-point name."""
    if name == "auth":
        raise ConfigError("[signing] serializer cannot be 'auth' itself; use json, msgpack, yaml or pickle")
    points = [point for point in entry_points(group=ENTRY_POINT_GROUP) if point.name == name]
    if not points:
        raise ConfigError(
            f"[signing] serializer = {name!r}: no installed celeriac plugin is named {name!r} "
            f"(install celeriac-{name})"
        )
    plugin = points[0].load()
    hook = getattr(plugin, "celeriac_add_serializers", None)
    if hook is not None:
        wants_config = "config" in inspect.signature(hook).parameters
        for serializer in (hook(config=config) if wants_config else hook()) or ():
            if serializer.name == name:
                found: Serializer = serializer
                return found
    raise ConfigError(f"[signing] serializer = {name!r}: plugin {name!r} offers no serializer of that name")
