"""celeriac-example: a template plugin with a serializer, a worker bootstep and a config section.

The kernel finds this module through the ``celeriac.plugins`` entry point ``example``,
registers it with pluggy and calls the ``@hookimpl`` functions below. Importing it does
nothing else: no connections, no threads, no logging setup, no environment reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import Any
from typing import ClassVar
from typing import final

from attrs import field
from attrs import frozen
from attrs import validators

from celeriac.plugin import CONSUMER
from celeriac.plugin import TIMER
from celeriac.plugin import Bootstep
from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import Serializer
from celeriac.plugin import StepContext
from celeriac.plugin import hookimpl

__all__ = [
    "SECTION",
    "ExampleConfig",
    "SortedJsonSerializer",
    "StatsStep",
    "__version__",
    "celeriac_add_bootsteps",
    "celeriac_add_config_sections",
    "celeriac_add_serializers",
]

try:
    __version__ = _version("celeriac-example")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

log = logging.getLogger(__name__)

#: The plugin's TOML table, named after its entry point as every plugin's section is.
SECTION = "example"


@frozen(kw_only=True)
class ExampleConfig:
    """``[example]``: this plugin's settings; unknown keys are configuration errors.

    :param stats: log the worker's task counts every ``interval`` seconds. Off by default,
        so installing the plugin in a shared environment changes no worker.
    :param interval: seconds between two stats lines.
    """

    stats: bool = False
    interval: float = field(default=10.0, validator=validators.gt(0))


@final
class SortedJsonSerializer:
    """JSON with sorted keys and no spaces: equal values always encode to equal bytes.

    That makes bodies usable for signing or deduplication. ``NaN`` and infinities are
    refused rather than written as the non-standard tokens other JSON parsers reject.
    The name differs from ``json``, so this never conflicts with celeriac-json.
    """

    name = "json-sorted"
    content_type = "application/x-json-sorted"
    content_encoding = "utf-8"

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON with keys in sorted order."""
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")

    def loads(self, data: bytes) -> Any:
        """Decode UTF-8 JSON bytes."""
        return json.loads(data)


@frozen
class StatsStep:
    """Logs, every ``[example] interval`` seconds, how many tasks the worker processed and holds."""

    name: ClassVar[str] = "example.stats"
    requires: ClassVar[frozenset[str]] = frozenset({"kernel.timer", "kernel.consumer"})

    def enabled(self, config: Config) -> bool:
        return config.section(SECTION, ExampleConfig).stats

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        settings = ctx.config.section(SECTION, ExampleConfig)
        consumer = ctx.require(CONSUMER)
        stopped = threading.Event()

        def report() -> None:
            if not stopped.is_set():
                log.info(
                    "%s stats: %d tasks processed, %d in flight",
                    consumer.hostname,
                    consumer.processed,
                    consumer.active_count,
                )

        ctx.require(TIMER).call_every(settings.interval, report)
        try:
            yield
        finally:
            # The timer cannot cancel a callback and is torn down after this step (it is a
            # requirement), so the callback is silenced instead of removed.
            stopped.set()


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name=SECTION, cls=ExampleConfig, description="celeriac-example settings")]


@hookimpl
def celeriac_add_serializers() -> Sequence[Serializer]:
    return [SortedJsonSerializer()]


@hookimpl
def celeriac_add_bootsteps(config: Config) -> Sequence[Bootstep]:
    # Always contributed; StatsStep.enabled decides from the config. A disabled step stays
    # known to the blueprint, so a step requiring it gets "disabled by configuration".
    return [StatsStep()]
