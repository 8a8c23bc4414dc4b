"""Going live: one sweep per instance marks users live once their initial burst is done.

A simulation whose initial rows are all stored waits here instead of polling
PostgreSQL: the sweep checks every waiting user in one statement
(``initial.finish_initial``), soon after this instance records outcomes of theirs
(``progress``), and all of them every ``FALLBACK_S`` (rows another instance sent).
What waiting costs PostgreSQL does not grow with the number of users waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import trio

from sim.db import Database, initial
from sim.db.initial import Finished, Waiting
from sim.errors import DatabaseError, describe

__all__ = ["GoLive"]

log = logging.getLogger(__name__)

#: every waiting user is checked at least this often
FALLBACK_S = 2.0
#: progress reported within this window is checked in one sweep
DEBOUNCE_S = 0.05
#: users checked per statement
CHUNK = 1000


@dataclass(eq=False)
class _Slot:
    waiting: Waiting
    done: trio.Event = field(default_factory=trio.Event)
    finished: Finished | None = None


class GoLive:
    """The sweep. Start with ``await nursery.start(golive.run)``."""

    def __init__(self, db: Database, timeout_s: float) -> None:
        self.db = db
        self.timeout_s = timeout_s  # one sweep statement's bound
        self._slots: dict[str, _Slot] = {}
        self._dirty: set[str] = set()
        self._wake = trio.Event()
        #: sweeps run (tests wait on it)
        self.sweeps = 0

    @property
    def waiting(self) -> int:
        return len(self._slots)

    def progress(self, user_ids: Iterable[str]) -> None:
        """Outcomes of these users were recorded: check the waiting ones soon."""
        dirty = [u for u in user_ids if u in self._slots]
        if dirty:
            self._dirty.update(dirty)
            self._wake.set()

    async def wait(self, waiting: Waiting) -> Finished:
        """Until ``waiting``'s user is marked live (by this sweep); how its burst ended."""
        slot = _Slot(waiting)
        self._slots[waiting.user_id] = slot
        self._dirty.add(waiting.user_id)  # it may be done already
        self._wake.set()
        try:
            await slot.done.wait()
        finally:
            if self._slots.get(waiting.user_id) is slot:
                del self._slots[waiting.user_id]
        assert slot.finished is not None
        return slot.finished

    async def run(self, *, task_status: trio.TaskStatus[GoLive] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(self)
        last_full = trio.current_time()
        while True:
            with trio.move_on_at(last_full + FALLBACK_S):
                await self._wake.wait()
                await trio.sleep(DEBOUNCE_S)
            self._wake = trio.Event()
            if trio.current_time() >= last_full + FALLBACK_S:
                users, last_full = list(self._slots), trio.current_time()
                self._dirty.clear()
            else:
                users, self._dirty = [u for u in self._dirty if u in self._slots], set()
            await self._sweep(users)
            self.sweeps += 1

    async def _sweep(self, users: list[str]) -> None:
        for start in range(0, len(users), CHUNK):
            part = users[start : start + CHUNK]
            chunk = [self._slots[u].waiting for u in part if u in self._slots]
            try:
                with trio.fail_after(self.timeout_s):
                    finished = await initial.finish_initial(self.db, chunk)
            except (DatabaseError, trio.TooSlowError) as exc:
                log.warning(
                    "Checking %d users' initial bursts failed (%s)", len(chunk), describe(exc)
                )
                self._dirty.update(w.user_id for w in chunk)  # again at the next sweep
                return
            for f in finished:
                slot = self._slots.get(f.user_id)
                if slot is not None:
                    slot.finished = f
                    slot.done.set()
