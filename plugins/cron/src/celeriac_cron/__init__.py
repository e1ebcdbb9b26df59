"""Schedule types for celeriac beat: ``every``, ``cron``, ``solar`` and ``clocked``.

In TOML each is the key of a ``[beat.schedule.NAME]`` table; in code, build one with
:func:`every`, :func:`crontab`, :func:`solar` or :func:`clocked` and pass it to
``app.add_periodic_task``. Importing this module computes nothing.
"""

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac.plugin import ScheduleType
from celeriac.plugin import hookimpl
from celeriac_cron import _clocked
from celeriac_cron import _crontab
from celeriac_cron import _solar
from celeriac_cron._clocked import Clocked
from celeriac_cron._clocked import clocked
from celeriac_cron._crontab import Crontab
from celeriac_cron._crontab import crontab
from celeriac_cron._interval import Every
from celeriac_cron._interval import every
from celeriac_cron._interval import parse_duration
from celeriac_cron._solar import EVENTS
from celeriac_cron._solar import Solar
from celeriac_cron._solar import solar

try:
    __version__ = _version("celeriac-cron")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "EVENTS",
    "Clocked",
    "Crontab",
    "Every",
    "Solar",
    "__version__",
    "clocked",
    "crontab",
    "every",
    "parse_duration",
    "solar",
]


@hookimpl
def celeriac_add_schedule_types() -> Sequence[ScheduleType]:
    return [
        ScheduleType(key="every", factory=every, description="a fixed interval: '30s', '1h30m', or seconds"),
        ScheduleType(
            key="cron",
            factory=_crontab.from_value,
            description="a crontab string, or Celery's fields (minute, hour, day_of_week ...)",
        ),
        ScheduleType(
            key="solar",
            factory=_solar.from_value,
            description="sunrise, sunset, dawn, dusk or noon at a latitude and longitude",
        ),
        ScheduleType(key="clocked", factory=_clocked.from_value, description="once, at a date and time"),
    ]
