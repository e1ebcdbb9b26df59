"""``solar``: sunrise, sunset, dawn, dusk and solar noon at a place, computed by astral.

Events are instants (astral works in UTC), so DST changes do not move them. Where the sun
does not reach the event's altitude on a day (polar day or night, or astronomical dusk in a
northern summer) there is no event that day, and the next day that has one is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Mapping
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import final

from astral import Observer
from astral import sun
from attrs import frozen


def _dawn(depression: float) -> Callable[[Observer, date], datetime]:
    return lambda observer, day: sun.dawn(observer, day, depression=depression, tzinfo=UTC)


def _dusk(depression: float) -> Callable[[Observer, date], datetime]:
    return lambda observer, day: sun.dusk(observer, day, depression=depression, tzinfo=UTC)


#: Celery's solar event names, with ``dawn``, ``dusk`` and ``noon`` as the civil ones.
EVENTS: dict[str, Callable[[Observer, date], datetime]] = {
    "dawn_astronomical": _dawn(18),
    "dawn_nautical": _dawn(12),
    "dawn_civil": _dawn(6),
    "dawn": _dawn(6),
    "sunrise": lambda observer, day: sun.sunrise(observer, day, tzinfo=UTC),
    "solar_noon": lambda observer, day: sun.noon(observer, day, tzinfo=UTC),
    "noon": lambda observer, day: sun.noon(observer, day, tzinfo=UTC),
    "sunset": lambda observer, day: sun.sunset(observer, day, tzinfo=UTC),
    "dusk_civil": _dusk(6),
    "dusk": _dusk(6),
    "dusk_nautical": _dusk(12),
    "dusk_astronomical": _dusk(18),
}
#: Days searched for the next event: a pole has one sunrise a year.
_HORIZON_DAYS = 400


@final
@frozen
class Solar:
    """Due at ``event`` each day at ``latitude``/``longitude`` (degrees; north and east positive)."""

    event: str
    latitude: float
    longitude: float

    def next_after(self, moment: datetime) -> datetime | None:
        after = moment.astimezone(UTC)
        observer = Observer(latitude=self.latitude, longitude=self.longitude)
        compute = EVENTS[self.event]
        first = after.date() - timedelta(days=1)
        for offset in range(_HORIZON_DAYS):
            try:
                found = compute(observer, first + timedelta(days=offset))
            except ValueError:  # the sun does not reach the event's altitude that day
                continue
            if found > after:
                return found.astimezone(moment.tzinfo)
        return None

    def first_run(self, start: datetime) -> datetime | None:
        return self.next_after(start)

    def __str__(self) -> str:
        return f"{self.event} at {self.latitude:g}, {self.longitude:g}"


def solar(event: str, latitude: float, longitude: float) -> Solar:
    """``solar("sunset", 52.52, 13.405)``: Celery's argument order.

    :raises ValueError: for an unknown event or a place off the globe.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown solar event {event!r} (events: {', '.join(EVENTS)})")
    for label, value, limit in (("latitude", latitude, 90), ("longitude", longitude, 180)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{label}: expected a number of degrees")
        if not (math.isfinite(value) and -limit <= value <= limit):
            raise ValueError(f"{label} {value} is outside -{limit} to {limit}")
    return Solar(event, float(latitude), float(longitude))


def from_value(value: Any) -> Solar:
    """The factory of the ``solar`` TOML key: ``{event = "sunset", latitude = 52.5, longitude = 13.4}``."""
    if not isinstance(value, Mapping):
        raise TypeError("expected a table: { event = 'sunset', latitude = 52.52, longitude = 13.405 }")
    unknown = sorted(set(value) - {"event", "latitude", "longitude"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (keys: event, latitude, longitude)")
    missing = [key for key in ("event", "latitude", "longitude") if key not in value]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    return solar(value["event"], value["latitude"], value["longitude"])
