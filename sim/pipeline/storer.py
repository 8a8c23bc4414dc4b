"""Storing generated rows: every simulation's batches, grouped into few transactions.

Simulations hand their batches to the instance's ``Storer`` and wait for the outcome.
Its writers take whatever is queued, up to ``store_group_max_rows`` rows of any number
of users (one writer takes only initial batches: a new user's first rows never wait
behind live items), and store it in one transaction (``outbox.store_batches``: one fenced
counter update, one COPY, one notification): 2,000 users starting at once cost tens of
transactions, not thousands. A group that fails after the retries is tried again one
batch at a time, so one user's bad batch fails only that user.

``RowBudget`` bounds the rows generated and not yet stored, all users together.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass, field
from functools import partial

import trio

from sim.db import Database, outbox
from sim.db.outbox import StoreBatch
from sim.errors import DatabaseError, DatabaseUnavailable, LeaseLost
from sim.pipeline.retry import RetryPolicy, retry_call
from sim.settings import Settings

__all__ = ["RowBudget", "Storer"]

log = logging.getLogger(__name__)

#: writers per instance: one groups the next batches while another's COPY runs
WRITERS = 2
#: and writers of initial batches only: a new user's first rows are not queued behind
#: the live items of every other user (2,000 live users store ~200 items a second)
INITIAL_WRITERS = 1
#: how long a stopping simulation waits for its batch already being written (within the
#: supervisor's 2 s to stop a user; a batch that commits later fails the restarted
#: simulation's first store on the key, and it restarts again from the stored counter)
STOP_WAIT_S = 1.5


class RowBudget:
    """A weighted FIFO semaphore over rows: users take turns, memory stays flat."""

    def __init__(self, rows: int) -> None:
        self.capacity = rows
        self.available = rows
        self._waiters: deque[tuple[int, trio.Event]] = deque()

    async def acquire(self, rows: int) -> int:
        """Take ``rows`` (at most the capacity) once it is this caller's turn; returns it."""
        rows = min(rows, self.capacity)
        if not self._waiters and self.available >= rows:
            self.available -= rows
            await trio.lowlevel.checkpoint()
            return rows
        turn = (rows, trio.Event())
        self._waiters.append(turn)
        try:
            await turn[1].wait()
        except BaseException:
            if turn[1].is_set():  # granted as it was cancelled: give it back
                self.release(rows)
            else:
                self._waiters.remove(turn)
                self._grant()
            raise
        return rows

    def release(self, rows: int) -> None:
        self.available += rows
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.available:
            rows, event = self._waiters.popleft()
            self.available -= rows
            event.set()


@dataclass(eq=False)
class _Entry:
    batch: StoreBatch
    done: trio.Event = field(default_factory=trio.Event)
    taken: bool = False  # a writer has it
    abandoned: bool = False  # its simulation stopped before a writer took it
    refused: bool = False
    error: BaseException | None = None


class Storer:
    """Stores simulations' batches, grouped. Start with ``await nursery.start(st.run)``."""

    def __init__(self, db: Database, settings: Settings, *, rng: random.Random | None = None):
        self.db = db
        self.settings = settings
        self._rng = rng or random.Random()
        self._queue: deque[_Entry] = deque()
        self._idle = trio.lowlevel.ParkingLot()  # writers of any batch, waiting
        self._idle_initial = trio.lowlevel.ParkingLot()  # writers of initial batches only
        self._running = False
        #: transactions written (groups), for tests and the log
        self.groups = 0

    async def run(self, *, task_status: trio.TaskStatus[Storer] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(WRITERS):
                nursery.start_soon(self._writer, False)
            for _ in range(INITIAL_WRITERS):
                nursery.start_soon(self._writer, True)
            self._running = True
            try:
                task_status.started(self)
                await trio.sleep_forever()
            finally:
                self._running = False
                for entry in self._queue:  # nobody will write them now
                    entry.error = DatabaseUnavailable("sim is stopping: the rows were not stored")
                    entry.done.set()
                self._queue.clear()

    async def store(self, batch: StoreBatch) -> None:
        """Store ``batch`` with others'; ``LeaseLost`` if it was refused, else the error."""
        if not self._running:
            raise DatabaseUnavailable("the storer is not running")
        entry = _Entry(batch)
        self._queue.append(entry)
        if not batch.live and self._idle_initial.statistics().tasks_waiting:
            self._idle_initial.unpark()
        else:
            self._idle.unpark()
        try:
            await entry.done.wait()
        except BaseException:
            if entry.taken:
                # being written: wait for it (bounded), so that a restarted simulation
                # never reads its counter while this batch may still commit
                with trio.CancelScope(shield=True), trio.move_on_after(STOP_WAIT_S):
                    await entry.done.wait()
            else:
                entry.abandoned = True
            raise
        if entry.error is not None:
            raise entry.error
        if entry.refused:
            raise LeaseLost(f"demo run of user {batch.user_id!r} is no longer this instance's")

    def _take(self, initial_only: bool) -> list[_Entry]:
        """The next group, in queue order: any batches, or (``initial_only``) initial ones."""
        group: list[_Entry] = []
        rows = 0
        limit = self.settings.store_group_max_rows
        left: deque[_Entry] = deque()  # live batches passed over by an initial-only writer
        while self._queue:
            entry = self._queue[0]
            if entry.abandoned:
                self._queue.popleft()
                continue
            if initial_only and entry.batch.live:
                left.append(self._queue.popleft())
                continue
            if group and rows + len(entry.batch.rows) > limit:
                break
            self._queue.popleft()
            entry.taken = True
            group.append(entry)
            rows += len(entry.batch.rows)
        self._queue.extendleft(reversed(left))
        return group

    async def _writer(self, initial_only: bool) -> None:
        idle = self._idle_initial if initial_only else self._idle
        while True:
            group = self._take(initial_only)
            if not group:
                await idle.park()
                continue
            try:
                await self._write(group)
            finally:
                for entry in group:
                    if not entry.done.is_set():
                        entry.error = entry.error or DatabaseUnavailable("storing was cancelled")
                        entry.done.set()

    async def _write(self, group: list[_Entry]) -> None:
        s = self.settings
        rows = sum(len(e.batch.rows) for e in group)
        try:
            refused = await retry_call(
                RetryPolicy.for_database(s),
                partial(outbox.store_batches, self.db, [e.batch for e in group]),
                retry_on=DatabaseError,
                rng=self._rng,
                what=f"Storing {rows} rows of {len(group)} simulations",
            )
        except DatabaseError as exc:
            if len(group) == 1:
                group[0].error = exc
                group[0].done.set()
                return
            log.warning(
                "Storing %d batches together failed (%s); storing them one by one", len(group), exc
            )
            for entry in group:
                try:
                    lost = await outbox.store_batches(self.db, [entry.batch])
                except DatabaseError as one:
                    entry.error = one
                else:
                    entry.refused = bool(lost)
                entry.done.set()
            return
        self.groups += 1
        for entry in group:
            entry.refused = entry.batch.user_id in refused
            entry.done.set()
