"""One demo user's simulation: generate, store, wait for the initial burst, then live.

A simulation is a generator feeding a bounded channel and a store task COPYing from it
(the instance's sender workers deliver every user's rows). It runs only while this
instance owns the user: every write is fenced by the lease, and a refused write
(``LeaseLost``) ends the simulation at once, without a restart. Any other exception is
logged, kept in ``last_error`` and the simulation restarted with backoff; it never
reaches other users or the server.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import trio

from sim.db import Database, users
from sim.db.fleet import Fence
from sim.db.initial import Waiting
from sim.db.outbox import StoreBatch
from sim.db.users import UserRow
from sim.errors import DatabaseError, LeaseLost, describe
from sim.metrics import Metrics
from sim.pipeline.content import ContentProvider, DemoSpec, Draft
from sim.pipeline.golive import GoLive
from sim.pipeline.store import to_rows
from sim.pipeline.storer import RowBudget, Storer
from sim.pipeline.timing import backoff_s
from sim.settings import Settings

__all__ = ["Simulations", "UserRun", "run_key"]

log = logging.getLogger(__name__)

Batch = tuple[list[Draft], bool]  # drafts, live?


@dataclass(eq=False)
class UserRun:
    """A running simulation of one user, as the supervisor holds it."""

    user_id: str
    #: the user's row as the supervisor read it (owner and lease included): the first
    #: run starts from it without a query of its own; a restart reads it again
    row: UserRow | None = None
    key: tuple[object, ...] | None = None  # ``run_key`` of the row it started from
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    buffered: int = 0  # initial rows generated and not yet stored (budget held)
    done: trio.Event = field(default_factory=trio.Event)
    recorded: Counter[str] = field(default_factory=Counter)
    #: while waiting for the initial burst to be delivered: its size (progress is logged)
    awaiting: int | None = None
    #: when it was started (``trio.current_time()``): an ownership round that began
    #: earlier did not see it and does not stop it
    started_at: float = field(default_factory=trio.current_time)


class Simulations:
    """Runs user simulations for one instance (``owner``): what they share lives here."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        metrics: Metrics,
        owner: uuid.UUID,
        provider_factory: Callable[[], ContentProvider],
        on_stored: Callable[[str, bool], None],
    ) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.owner = owner
        self._provider_factory = provider_factory
        self._provider: ContentProvider | None = None
        self._provider_lock = trio.Lock()
        self._on_stored = on_stored
        self._rng = random.Random()
        # initial rows generated but not yet stored, all users together: memory stays
        # flat however many users start at once (FIFO, so they take turns)
        self._buffer = RowBudget(settings.store_queue_batches * settings.store_batch_size)
        self.storer = Storer(db, settings, rng=self._rng)
        self.golive = GoLive(db, settings.batch_timeout_s)

    async def run(
        self, *, task_status: trio.TaskStatus[Simulations] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run what all simulations share (the storer, the go-live sweep) until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.storer.run)
            await nursery.start(self.golive.run)
            task_status.started(self)

    async def provider(self) -> ContentProvider:
        async with self._provider_lock:  # built once, not by every user starting meanwhile
            if self._provider is None:
                # one for all users: every item is a pure function of its user's spec, and
                # a provider per user cost 35 ms and a fan cache of up to a few MB each;
                # the first (Faker loading its locale data) takes a worker thread ~0.4 s
                self._provider = await trio.to_thread.run_sync(self._provider_factory)
        return self._provider

    async def supervise(self, handle: UserRun) -> None:
        """Run ``handle``'s simulation, restarting it after errors, until it ends.

        It ends when demo mode is off, when this instance no longer owns the user, or
        when ``handle.scope`` is cancelled.
        """
        s = self.settings
        restarts = 0
        while True:
            try:
                await self._simulate(handle)
                return
            except BaseException as exc:  # one user's failure stays with that user
                cancelled = _without_lease_lost(exc)
                if cancelled is not exc:  # the lease is lost: stop, and no restart
                    log.info("User %s is no longer owned here; simulation stops", handle.user_id)
                    if cancelled is not None:
                        raise cancelled from None  # a cancellation met it: let it through
                    return
                if not isinstance(exc, Exception):
                    raise
                restarts += 1
                delay = backoff_s(restarts, s.restart_backoff_s, s.restart_backoff_max_s, self._rng)
                log.error(
                    "Simulation of user %s failed (%s); restart %d in %.1fs",
                    handle.user_id,
                    describe(exc),
                    restarts,
                    delay,
                    exc_info=exc,
                )
                self.metrics.user_restarts.inc()
                try:
                    await users.set_error(self.db, handle.user_id, describe(exc))
                except DatabaseError:
                    pass
                await trio.sleep(delay)

    async def _simulate(self, handle: UserRun) -> None:
        s = self.settings
        row, handle.row = handle.row, None
        if row is None:
            row = await users.get_user(self.db, handle.user_id)
        if row is None or not row.enabled:
            return
        if row.owner_id != self.owner:
            raise LeaseLost(f"user {row.user_id!r} is owned by another instance")
        spec = DemoSpec(row.videos, row.comments, row.dms, row.seed, row.niche)
        provider = await self.provider()
        send, receive = trio.open_memory_channel[Batch](s.store_queue_batches)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._store, row, handle, receive)
                async with send:
                    if row.generated < row.initial_total:
                        await self._generate_initial(row, handle, spec, provider, send)
                    if row.live_at is None:
                        await self._await_initial(row, handle)
                    await self._live(row, spec, provider, send)
        finally:
            self._buffer.release(handle.buffered)  # rows dropped unstored give their budget back
            handle.buffered = 0

    async def _generate_initial(
        self,
        row: UserRow,
        handle: UserRun,
        spec: DemoSpec,
        provider: ContentProvider,
        send: trio.MemorySendChannel[Batch],
    ) -> None:
        skip = row.generated
        log.info(
            "Generating %d interactions for user %s (%d videos, %d comments, %d DMs)%s",
            row.initial_total - skip,
            row.user_id,
            row.videos,
            row.comments,
            row.dms,
            f", resuming after {skip}" if skip else "",
        )
        size = self.settings.store_batch_size
        batches = provider.initial_batches(spec, size, skip)
        left = row.initial_total - skip
        async with aclosing(batches):
            while True:
                # before generating: the budget bounds memory
                taken = await self._buffer.acquire(max(1, min(size, left)))
                handle.buffered += taken
                batch = await anext(batches, None)
                unused = taken - len(batch or ())
                if unused > 0:
                    handle.buffered -= unused
                    self._buffer.release(unused)
                if batch is None:
                    return
                left -= len(batch)
                await send.send((batch, False))
                batch = None  # not kept alive while waiting for the next budget

    async def _store(
        self,
        row: UserRow,
        handle: UserRun,
        receive: trio.MemoryReceiveChannel[Batch],
        *,
        task_status: trio.TaskStatus[None],
    ) -> None:
        task_status.started()
        fence = _fence(row)
        async with receive:
            async for drafts, live in receive:
                anchor = datetime.now(UTC) if live else row.enabled_at
                # ids and JSON documents of a whole batch: a worker thread's job, too
                rows = await trio.to_thread.run_sync(
                    to_rows, row.user_id, row.run_id, anchor, drafts
                )
                await self.storer.store(StoreBatch(row.user_id, row.run_id, rows, live, fence))
                if not live:
                    stored = min(len(rows), handle.buffered)
                    handle.buffered -= stored
                    self._buffer.release(stored)
                for kind, n in Counter(d.kind for d in drafts).items():
                    self.metrics.generated.labels(kind).inc(n)
                self._on_stored(row.user_id, live)
                del drafts, rows  # not kept alive while waiting for the next batch

    async def _await_initial(self, row: UserRow, handle: UserRun) -> None:
        """Wait until every initial interaction is sent or failed (the instance's sweep
        marks the user live); progress is logged as outcomes are recorded here."""
        handle.recorded.clear()
        handle.awaiting = row.initial_total
        try:
            finished = await self.golive.wait(Waiting(row.user_id, row.run_id, _fence(row)))
        finally:
            handle.awaiting = None
        log.info(
            "Sent %d interactions to main app (%d failed) for user %s",
            finished.sent,
            finished.failed,
            row.user_id,
        )
        log.info(
            "Demo mode fully initialized for user %s - %d items visible",
            row.user_id,
            finished.sent,
        )

    async def _live(
        self,
        row: UserRow,
        spec: DemoSpec,
        provider: ContentProvider,
        send: trio.MemorySendChannel[Batch],
    ) -> None:
        if row.live_per_minute <= 0:
            await trio.sleep_forever()
        rng = random.Random(f"{row.run_id}:{row.live_generated}")
        n = row.live_generated
        rate_per_s = row.live_per_minute / 60.0
        self.metrics.live_rate.inc(rate_per_s)
        # Poisson arrivals on a schedule: a late wake-up (a busy process, a slow store)
        # makes the next one come sooner, so the rate holds. The schedule starts at the
        # user's last change (its last live item), at most two leases back: a new owner
        # makes up for the gap of a takeover or handover.
        due = trio.current_time() - _behind_s(row, 2 * self.settings.owner_lease_s)
        try:
            while True:
                due += rng.expovariate(rate_per_s)
                await trio.sleep_until(due)
                draft = await provider.live_item(spec, n)
                await send.send(([replace(draft, seq=row.initial_total + n)], True))
                n += 1
        finally:
            self.metrics.live_rate.dec(rate_per_s)


def run_key(row: UserRow) -> tuple[object, ...]:
    """What a simulation started from a row depends on: the run, its rate, the lease."""
    return (row.run_id, row.live_per_minute, row.owner_epoch)


def _behind_s(row: UserRow, limit_s: float) -> float:
    """Seconds since a live user's last item (its row's last change), up to ``limit_s``."""
    if row.updated_at is None or row.live_at is None:  # going live just now
        return 0.0
    return min(max(0.0, (datetime.now(UTC) - row.updated_at).total_seconds()), limit_s)


def _fence(row: UserRow) -> Fence:
    """The lease the simulation started under (checked to be this instance's)."""
    assert row.owner_id is not None
    return Fence(row.owner_id, row.owner_epoch)


def _without_lease_lost(exc: BaseException) -> BaseException | None:
    """``exc`` itself when no ``LeaseLost`` is in it; else what is left besides when that
    is only cancellation (None when nothing is). Any other error keeps ``exc`` whole."""
    if isinstance(exc, LeaseLost):
        return None
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    lost, rest = exc.split(LeaseLost)
    if lost is None:
        return exc
    if rest is None or rest.split(trio.Cancelled)[1] is None:
        return rest
    return exc
