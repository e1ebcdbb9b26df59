"""The kernel's own plugin: what the kernel contributes through the hooks any plugin uses.

Registered first, under the name ``kernel``, whatever autoload and ``[plugins]`` say. The
worker's own bootsteps are not here: the worker adds them to the graph itself
(:func:`celeriac._worker.steps.kernel_steps`), so this layer needs nothing above it.
"""

from __future__ import annotations

from collections.abc import Sequence

from celeriac._contract.hookspecs import hookimpl
from celeriac._model.config import ConfigSection
from celeriac._model.schedules import BeatConfig


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="beat", cls=BeatConfig, description="the periodic-task scheduler")]
