"""Beat: sends periodic tasks when they fall due, as one elected leader among its instances.

Each pass of the loop works out every entry's next due time from its last run (kept in the
schedule store, so it survives restarts), sends what is due with ``app.send_task``, and
sleeps until the nearest due time, at most ``[beat] max_interval`` seconds. When the store
offers a :class:`~celeriac._model.schedules.BeatLock`, only the instance holding the lease sends;
the others try to take it over every ``renew_interval`` seconds. A run is *claimed* in the
store under the lock before it is sent and recorded after, so a new leader neither repeats
a run the old one recorded nor skips one it claimed (see docs/periodic-tasks.md for the one window
left: a leader killed between publishing and recording; the run is then sent again, with
the same task id). A record that fails (the store busy or unreachable) is retried each pass;
this instance never sends the run again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING

from attrs import evolve

from celeriac._beat.entries import load_entries
from celeriac._beat.entries import load_stored_entries
from celeriac._beat.entries import run_id
from celeriac._beat.entries import store_url
from celeriac._model.errors import ConfigError
from celeriac._model.schedules import BeatConfig
from celeriac._model.schedules import BeatLock
from celeriac._model.schedules import EntryStore
from celeriac._model.schedules import PeriodicTask
from celeriac._model.schedules import zone

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from celeriac._client.app import Celeriac
    from celeriac._contract.protocols import ScheduleStore

log = logging.getLogger("celeriac.beat")

_RETRY_DELAY = 1.0
#: The loop looks at requests to stop or reload at least this often (seconds).
_POLL = 1.0
#: Runs of one entry sent in one pass at most: a 1 s interval that fell 15 s behind (a leader
#: change) catches up in bursts of this size rather than starving the other entries.
_MAX_BURST = 100


# --- the service -----------------------------------------------------------------------


class Beat:
    """The scheduler of one app. Construction does no I/O; :meth:`open` (or :meth:`run`) does.

    :param schedule_store: store URL, over ``[beat] schedule_store`` (``--schedule-store``).
    :param max_interval: over ``[beat] max_interval`` (``--max-interval``).
    :param entries: the entries to run instead of the app's (tests, embedding).
    :param owner: this instance's name in the leader lock (default ``host:pid:random``).
    :param clock: the wall clock schedules are computed with (tests pass a fake one); leases
        are timed by the store's own clock.
    :param timer: the monotonic clock that spaces this instance's own chores (reading the
        store's entries once a second, renewing its lease); tests pass a fake one to move.
    """

    def __init__(
        self,
        app: Celeriac,
        *,
        schedule_store: str | None = None,
        max_interval: float | None = None,
        entries: Sequence[PeriodicTask] | None = None,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        config = app.config.section("beat", BeatConfig)
        if schedule_store:
            config = evolve(config, schedule_store=schedule_store)
        if max_interval is not None:
            config = evolve(config, max_interval=max_interval)
        self.config = config
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.entries: list[PeriodicTask] = list(entries) if entries is not None else []
        # Entries from code and the config file; self.entries adds the store's to them.
        self._config_entries = list(self.entries)
        self._entries_version: int | None = None
        self._entries_checked = -_POLL
        self.is_leader = False
        #: Runs sent by this instance.
        self.sent = 0
        self._given_entries = entries is not None
        self._clock = clock
        self._timer = timer
        self._zone: ZoneInfo | None = None
        self._store: ScheduleStore | None = None
        self._lock: BeatLock | None = None
        self._cursors: dict[str, float | None] = {}
        # Each entry's next due time (None: never again), worked out once per cursor: a pass
        # with nothing due costs a comparison per entry.
        self._due: dict[str, float | None] = {}
        self._since = 0.0
        self._renew_at = 0.0
        self._reload = threading.Event()
        # Runs sent whose record in the store failed, by entry: recorded again each pass.
        self._unrecorded: dict[str, float] = {}

    @property
    def store_url(self) -> str:
        """``[beat] schedule_store``, else the broker's URL if a store serves it, else a local file."""
        return store_url(self.app, self.config)

    def open(self) -> None:
        """Check the configuration and entries, and open the store; errors name what is wrong."""
        if self._store is not None:
            return
        try:
            self._zone = zone(self.config.timezone)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[beat] timezone = {self.config.timezone!r}: {exc}") from None
        if not 0 < self.config.renew_interval < self.config.lease:
            raise ConfigError(
                f"[beat] renew_interval ({self.config.renew_interval}) must be above 0 and below "
                f"lease ({self.config.lease}), or a live leader would lose its lease"
            )
        if not self._given_entries:
            self.entries = self._config_entries = load_entries(self.app, self.config)
        url = self.store_url
        store = self.app.plugins.schedule_store(url).factory(url, self.app.config)
        self._store = store
        self._lock = store if isinstance(store, BeatLock) else None
        self._entries_version = None
        if not self._given_entries:
            self._refresh_stored_entries()
        if self._lock is None:
            log.warning("the schedule store %s has no leader lock: run a single beat on it", url)
        log.info(
            "beat %s: %d entries (%s), store %s, time zone %s",
            self.owner,
            len(self.entries),
            ", ".join(entry.name for entry in self.entries) or "none",
            url,
            self.config.timezone,
        )

    def run(self, stop: threading.Event) -> None:
        """Send due tasks until ``stop`` is set; then give the lock up and close the store."""
        self.open()
        try:
            while not stop.is_set():
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                try:
                    delay = self.tick()
                except Exception:
                    log.exception("beat pass failed; trying again in %s s", _RETRY_DELAY)
                    delay = _RETRY_DELAY
                stop.wait(min(delay, _POLL))
        finally:
            self.close()

    def request_reload(self) -> None:
        """Re-read the schedule from the config file at the next pass (safe in a signal handler)."""
        self._reload.set()

    def close(self) -> None:
        """Release the lock if held, so a standby takes over at once, and close the store."""
        if self._unrecorded and self.is_leader and self._holds_lease():
            self._record_unrecorded()  # a last try: what stays unrecorded, the next leader sends
        if self._lock is not None and self.is_leader:
            try:
                self._lock.release(self.config.lock_name, self.owner)
            except Exception:
                log.exception("releasing the beat lock failed; it ends with its lease")
        self.is_leader = False
        if self._store is not None:
            self._store.close()
        self._store = self._lock = None

    def tick(self) -> float:
        """One pass: lead or stand by, send what is due; returns the seconds to sleep."""
        self.open()
        if not self._given_entries and self._timer() - self._entries_checked >= _POLL:
            self._refresh_stored_entries()
        now = self._clock()
        if not self._lead(now):
            return self.config.renew_interval
        if self._unrecorded:
            self._record_unrecorded()
        delays = [self.config.max_interval]
        if self._lock is not None:
            delays.append(self._renew_at - self._timer())
        for entry in self.entries:
            delay = self._process(entry, now)
            if not self.is_leader:
                return self.config.renew_interval
            if delay is not None:
                delays.append(delay)
        return max(0.0, min(delays))

    def reload(self) -> None:
        """Replace the entries with those of the config file as it is now; keep them on errors."""
        from celeriac._model.config import build_config
        from celeriac._model.config import read_layers

        try:
            raw = read_layers(self.app.config_file or False)
            config = build_config(raw, self.app.plugins.config_sections())
            entries = load_entries(self.app, config.section("beat", BeatConfig), config.source_of)
        except ConfigError as exc:
            log.error("reloading the beat schedule failed; keeping the current one: %s", exc)
            return
        self._config_entries = entries
        self._entries_version = None
        self._refresh_stored_entries()
        log.info("beat schedule reloaded: %s", ", ".join(entry.name for entry in self.entries) or "none")

    def _refresh_stored_entries(self) -> None:
        """Merge the store's entries in when they changed (one cheap read per second)."""
        self._entries_checked = self._timer()
        store = self._store_of()
        stored: list[PeriodicTask] = []
        if isinstance(store, EntryStore):
            try:
                version = store.entries_version()
                if version == self._entries_version:
                    return
                stored = load_stored_entries(self.app, store)
            except Exception:
                # The store is unreachable or busy: keep the entries known so far, try again.
                log.exception("reading the stored beat entries failed; trying again in %s s", _POLL)
                return
            self._entries_version = version
        by_name = {entry.name: entry for entry in self._config_entries}
        for entry in stored:
            if entry.name in by_name:
                log.warning(
                    "stored beat entry %r replaces the one from %s", entry.name, by_name[entry.name].source
                )
            by_name[entry.name] = entry
        before = {entry.name for entry in self.entries}
        self.entries = list(by_name.values())
        self._due.clear()
        if self.is_leader:
            for entry in self.entries:
                if entry.name not in self._cursors:
                    self._set_cursor(entry.name, store.last_run_at(entry.name))
        added = sorted(by_name.keys() - before)
        removed = sorted(before - by_name.keys())
        for name in removed:
            self._cursors.pop(name, None)  # read again from the store if it comes back
        if added or removed:
            log.info(
                "beat entries added: %s; removed: %s",
                ", ".join(added) or "none",
                ", ".join(removed) or "none",
            )

    # --- leadership ----------------------------------------------------------------------

    def _lead(self, now: float) -> bool:
        """Keep or take the lead; True when this instance may send."""
        lock = self._lock
        if lock is None:
            if not self.is_leader:
                self._take_charge(now)
            return True
        name, lease = self.config.lock_name, self.config.lease
        if self.is_leader:
            if self._timer() < self._renew_at:
                return True
            if lock.renew(name, self.owner, lease):
                self._renew_at = self._timer() + self.config.renew_interval
                return True
            log.warning("beat %s lost the lock %r; standing by", self.owner, name)
            self.is_leader = False
        if not lock.acquire(name, self.owner, lease):
            return False
        self._renew_at = self._timer() + self.config.renew_interval
        log.info("beat %s took the lock %r and sends from now on", self.owner, name)
        self._take_charge(now)
        return True

    def _take_charge(self, now: float) -> None:
        """Read every entry's last run; send again a run a previous leader claimed and did
        not record, when it is recent enough to be on time."""
        self.is_leader = True
        # Another leader may have sent and recorded later runs meanwhile: what this instance
        # could not record is now a run claimed and not recorded, handled below.
        self._unrecorded.clear()
        self._since = now
        self._due.clear()
        store, lock = self._store_of(), self._lock
        for entry in self.entries:
            last = store.last_run_at(entry.name)
            claimed = lock.claimed_at(entry.name) if lock is not None else None
            self._set_cursor(entry.name, last)
            if claimed is None or (last is not None and claimed <= last):
                continue
            if now - claimed <= self.config.grace:
                log.warning(
                    "entry %r: the run at %s was claimed and not recorded as sent (its beat "
                    "stopped in between); sending it, with the same task id",
                    entry.name,
                    _iso(claimed),
                )
                if not self._send(entry, claimed) and not self.is_leader:
                    return
            else:
                self._set_cursor(entry.name, claimed)

    # --- sending -----------------------------------------------------------------------

    def _process(self, entry: PeriodicTask, now: float) -> float | None:
        """Send the entry's due runs; return the seconds until its next one (None: never)."""
        if entry.name in self._due:
            cached = self._due[entry.name]
            if cached is None or cached > now:
                return None if cached is None else cached - now
        zone_ = entry.timezone or self._zone_of()
        policy = entry.missed or self.config.missed
        for _ in range(_MAX_BURST):
            cursor = self._cursors.get(entry.name)
            if cursor is None:
                due = entry.schedule.first_run(dt.datetime.fromtimestamp(self._since, zone_))
            else:
                due = entry.schedule.next_after(dt.datetime.fromtimestamp(cursor, zone_))
            if due is None:
                self._due[entry.name] = None
                return None
            due_at = due.timestamp()
            if due_at > now:
                self._due[entry.name] = due_at
                return due_at - now
            late = now - due_at
            when = due_at
            if late > self.config.grace:
                if policy == "skip":
                    log.info("entry %r: skipping the run due at %s, missed by %.0f s", entry.name, due, late)
                    self._set_cursor(entry.name, now)
                    continue
                log.info(
                    "entry %r: the run due at %s was missed by %.0f s; sending it now", entry.name, due, late
                )
                when = now
            if not self._send(entry, when):
                return _RETRY_DELAY
        return 0.0

    def _send(self, entry: PeriodicTask, when: float) -> bool:
        """Claim the run under the lock, send it, record it; False if not sent."""
        lock = self._lock
        if lock is not None and not lock.claim(self.config.lock_name, self.owner, entry.name, when):
            log.warning("beat %s no longer holds the lock; not sending %r", self.owner, entry.name)
            self.is_leader = False
            return False
        task_id = run_id(entry.name, when)
        scheduled = _iso(when)
        try:
            self.app.send_task(
                entry.task,
                entry.args,
                entry.kwargs,
                queue=entry.queue,
                priority=entry.priority,
                expires=entry.expires,
                task_id=task_id,
                headers={"beat_entry": entry.name, "beat_run_at": scheduled},
            )
        except Exception:
            log.exception("entry %r: sending %s failed; trying again", entry.name, entry.task)
            return False
        # Sent: from here on the run is done for this instance, whether or not the store
        # takes the record now (sending it again would run it twice).
        self._set_cursor(entry.name, when)
        self.sent += 1
        log.info("sent %s[%s] for entry %r, run at %s", entry.task, task_id, entry.name, scheduled)
        try:
            self._store_of().set_last_run_at(entry.name, when)
        except Exception:
            log.exception(
                "entry %r: recording the run at %s failed; it is not sent again, and recording "
                "is retried each pass",
                entry.name,
                scheduled,
            )
            self._unrecorded[entry.name] = when
        else:
            self._unrecorded.pop(entry.name, None)  # an earlier run's record is now behind
        return True

    def _holds_lease(self) -> bool:
        """Whether the lease is still this instance's, checked in the store (``is_leader`` may
        be stale after passes that failed): a record written after another leader took over
        could put an entry's last run back behind that leader's."""
        lock = self._lock
        if lock is None:
            return True
        try:
            return lock.renew(self.config.lock_name, self.owner, self.config.lease)
        except Exception:
            return False

    def _record_unrecorded(self) -> None:
        """Record the runs sent whose record failed (each entry's latest); keep what still fails."""
        store = self._store_of()
        for name, when in list(self._unrecorded.items()):
            try:
                store.set_last_run_at(name, when)
            except Exception as exc:
                log.warning("entry %r: recording the run at %s failed again: %s", name, _iso(when), exc)
                return
            del self._unrecorded[name]
            log.info("entry %r: the run at %s is recorded", name, _iso(when))

    def _set_cursor(self, name: str, when: float | None) -> None:
        self._cursors[name] = when
        self._due.pop(name, None)

    def _zone_of(self) -> ZoneInfo:
        if self._zone is None:
            raise RuntimeError("beat is not open")
        return self._zone

    def _store_of(self) -> ScheduleStore:
        if self._store is None:
            raise RuntimeError("beat is not open")
        return self._store


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat()
