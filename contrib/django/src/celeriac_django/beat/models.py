"""The models of ``celeriac_django.beat``: entries, their schedules, and beat's own state."""

from celeriac_django.beat._schedules import ClockedSchedule
from celeriac_django.beat._schedules import CrontabSchedule
from celeriac_django.beat._schedules import IntervalSchedule
from celeriac_django.beat._schedules import SolarSchedule
from celeriac_django.beat._state import BeatLease
from celeriac_django.beat._state import BeatRun
from celeriac_django.beat._state import ScheduleVersion
from celeriac_django.beat._task import PeriodicTask

__all__ = [
    "BeatLease",
    "BeatRun",
    "ClockedSchedule",
    "CrontabSchedule",
    "IntervalSchedule",
    "PeriodicTask",
    "ScheduleVersion",
    "SolarSchedule",
]
