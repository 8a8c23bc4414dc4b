"""The supervisor: one nursery, one cancel scope per demo user.

A user's simulation is a generator feeding a bounded channel, a store task
COPYing from it, and sender workers. An exception in one user's simulation is
logged, kept in ``last_error`` and the simulation restarted with backoff; it
never reaches other users or the server.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import trio

from sim.db import Database, outbox, users
from sim.db.users import DemoConfig, UserRow
from sim.errors import DatabaseError
from sim.metrics import Metrics
from sim.pipeline.content import ContentProvider, DemoSpec, Draft, OfflineProvider
from sim.pipeline.sender import Sender
from sim.pipeline.store import to_rows
from sim.pipeline.timing import Wakeup, backoff_s
from sim.settings import Settings

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

Batch = tuple[list[Draft], bool]  # drafts, live?


@dataclass(eq=False)
class _User:
    user_id: str
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    wake: Wakeup = field(default_factory=Wakeup)  # senders: new rows may be claimable
    progress: Wakeup = field(default_factory=Wakeup)  # _await_initial: outcomes recorded
    buffered: int = 0  # initial batches generated and not yet stored (buffer slots held)
    done: trio.Event = field(default_factory=trio.Event)
    recorded: Counter[str] = field(default_factory=Counter)


class Supervisor:
    """Runs every enabled user's simulation. Start with ``await nursery.start(sup.run)``."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        metrics: Metrics,
        sender: Sender,
        *,
        provider_factory: Callable[[], ContentProvider] = OfflineProvider,
    ) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.sender = sender
        self._provider_factory = provider_factory
        self._provider: ContentProvider | None = None
        self._users: dict[str, _User] = {}
        self._nursery: trio.Nursery | None = None
        self._rng = random.Random()
        # initial batches generated but not yet stored, all users together: memory stays
        # flat however many users start at once (FIFO, so they take turns)
        self._buffer = trio.Semaphore(settings.store_queue_batches)

    async def run(
        self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            resumed = await users.enabled_users(self.db)
            for user_id in resumed:
                await self._start(user_id)
            if resumed:
                log.info("Resumed demo mode for %d users", len(resumed))
            task_status.started(self)
            await trio.sleep_forever()

    def running(self) -> list[str]:
        return sorted(self._users)

    # --- API-facing -------------------------------------------------------------------
    async def enable(self, user_id: str, cfg: DemoConfig) -> tuple[UserRow, bool]:
        """Turn demo mode on; ``started`` is False when it was on already (no second burst)."""
        row, started = await users.enable_user(self.db, user_id, cfg)
        if started or user_id not in self._users:
            await self._start(user_id)
        return row, started

    async def disable(self, user_id: str, *, purge: bool) -> tuple[UserRow | None, int]:
        """Turn demo mode off (stops the user's work within 2 s); optionally purge rows."""
        row = await users.disable_user(self.db, user_id)
        await self._stop(user_id, timeout_s=2.0)
        deleted = 0
        if purge and row is not None:
            limit = 5000
            while True:
                n = await users.purge_batch(self.db, user_id, limit)
                deleted += n
                if n < limit:
                    break
            log.info("Purged %d interactions of user %s", deleted, user_id)
        return row, deleted

    def on_recorded(self, per_user: dict[str, Counter[str]]) -> None:
        """Recorder callback: note progress; wake senders when comments were unblocked.

        Only a video sent makes rows claimable (its comments); waking every sender of
        every user in each batch made most of their claims come back empty.
        """
        for user_id, counts in per_user.items():
            handle = self._users.get(user_id)
            if handle is not None:
                handle.recorded.update(counts)
                handle.progress.set()
                if counts["video_sent"]:
                    handle.wake.set()

    # --- per-user lifetime --------------------------------------------------------------
    async def _start(self, user_id: str) -> None:
        assert self._nursery is not None, "supervisor not running"
        old = self._users.get(user_id)
        if old is not None:
            await self._stop(user_id, timeout_s=2.0)
        handle = _User(user_id)
        self._users[user_id] = handle
        await self._nursery.start(self._supervise, handle)

    async def _stop(self, user_id: str, timeout_s: float) -> None:
        handle = self._users.get(user_id)
        if handle is None:
            return
        handle.scope.cancel()
        with trio.move_on_after(timeout_s) as waited:
            await handle.done.wait()
        if waited.cancelled_caught:
            log.error("Simulation of user %s did not stop within %.1fs", user_id, timeout_s)

    async def _supervise(self, handle: _User, *, task_status: trio.TaskStatus[None]) -> None:
        s = self.settings
        try:
            with handle.scope:
                task_status.started()
                restarts = 0
                while True:
                    try:
                        await self._simulate(handle)
                        return
                    except Exception as exc:  # one user's failure stays with that user
                        restarts += 1
                        delay = backoff_s(
                            restarts, s.restart_backoff_s, s.restart_backoff_max_s, self._rng
                        )
                        log.error(
                            "Simulation of user %s failed (%s); restart %d in %.1fs",
                            handle.user_id,
                            _describe(exc),
                            restarts,
                            delay,
                            exc_info=exc,
                        )
                        self.metrics.user_restarts.inc()
                        try:
                            await users.set_error(self.db, handle.user_id, _describe(exc))
                        except DatabaseError:
                            pass
                        await trio.sleep(delay)
        finally:
            handle.done.set()
            if self._users.get(handle.user_id) is handle:
                del self._users[handle.user_id]

    async def _simulate(self, handle: _User) -> None:
        s = self.settings
        row = await users.get_user(self.db, handle.user_id)
        if row is None or not row.enabled:
            return
        spec = DemoSpec(row.videos, row.comments, row.dms, row.seed, row.niche)
        if self._provider is None:
            # one for all users: every item is a pure function of its user's spec, and
            # a provider per user cost 35 ms and a fan cache of up to a few MB each
            self._provider = self._provider_factory()
        provider = self._provider
        send, receive = trio.open_memory_channel[Batch](s.store_queue_batches)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._store, row, handle, receive)
                for index in range(s.send_concurrency):
                    await nursery.start(
                        self.sender.worker, row.user_id, row.run_id, handle.wake, index
                    )
                async with send:
                    if row.generated < row.initial_total:
                        await self._generate_initial(row, handle, spec, provider, send)
                    if row.live_at is None:
                        await self._await_initial(row, handle)
                    await self._live(row, spec, provider, send)
        finally:
            for _ in range(handle.buffered):  # batches dropped unstored give their slots back
                self._buffer.release()
            handle.buffered = 0

    async def _generate_initial(
        self,
        row: UserRow,
        handle: _User,
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
        batches = provider.initial_batches(spec, self.settings.store_batch_size, skip)
        async with aclosing(batches):
            while True:
                await self._buffer.acquire()  # before generating: the slot bounds memory
                handle.buffered += 1
                batch = await anext(batches, None)
                if batch is None:
                    handle.buffered -= 1
                    self._buffer.release()
                    return
                await send.send((batch, False))
                batch = None  # not kept alive while waiting for the next slot

    async def _store(
        self,
        row: UserRow,
        handle: _User,
        receive: trio.MemoryReceiveChannel[Batch],
        *,
        task_status: trio.TaskStatus[None],
    ) -> None:
        task_status.started()
        async with receive:
            async for drafts, live in receive:
                anchor = datetime.now(UTC) if live else row.enabled_at
                rows = to_rows(row.user_id, row.run_id, anchor, drafts)
                for attempt in range(1, 6):
                    try:
                        await outbox.store_rows(self.db, row.user_id, row.run_id, rows, live=live)
                        break
                    except DatabaseError as exc:
                        if attempt == 5:
                            raise
                        delay = backoff_s(attempt, 0.1, 2.0, self._rng)
                        log.warning(
                            "Storing %d rows failed (%s); retry in %.2fs", len(rows), exc, delay
                        )
                        await trio.sleep(delay)
                if not live:
                    handle.buffered -= 1
                    self._buffer.release()
                for kind, n in Counter(d.kind for d in drafts).items():
                    self.metrics.generated.labels(kind).inc(n)
                handle.wake.set()
                del drafts, rows  # not kept alive while waiting for the next batch

    async def _await_initial(self, row: UserRow, handle: _User) -> None:
        """Wait until every initial interaction is sent or failed, logging progress."""
        total = row.initial_total
        # clear before reading: outcomes recorded while the query runs then count twice
        # (which only brings the next exact check forward), never zero times (a stall)
        handle.recorded.clear()
        counts = await users.initial_progress(self.db, row.user_id, total)
        checked_at = trio.current_time()
        last_logged = -1
        while True:
            sent = counts["sent"] + handle.recorded["sent"]
            done = sent + counts["failed"] + handle.recorded["failed"]
            if sent != last_logged and sent:
                log.info(
                    "Updated %d/%d sent interactions for user %s",
                    min(sent, total),
                    total,
                    row.user_id,
                )
                last_logged = sent
            if done >= total or trio.current_time() - checked_at > 2.0:
                handle.recorded.clear()
                counts = await users.initial_progress(self.db, row.user_id, total)
                checked_at = trio.current_time()
                if counts["sent"] + counts["failed"] >= total:
                    break
            await handle.progress.wait(0.25)
        await users.mark_live(self.db, row.user_id, row.run_id)
        log.info(
            "Sent %d interactions to main app (%d failed) for user %s",
            counts["sent"],
            counts["failed"],
            row.user_id,
        )
        log.info(
            "Demo mode fully initialized for user %s - %d items visible",
            row.user_id,
            counts["sent"],
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
        try:
            while True:
                await trio.sleep(rng.expovariate(rate_per_s))  # Poisson arrivals
                draft = await provider.live_item(spec, n)
                await send.send(([replace(draft, seq=row.initial_total + n)], True))
                n += 1
        finally:
            self.metrics.live_rate.dec(rate_per_s)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _describe(exc.exceptions[0])
    return f"{type(exc).__name__}: {exc}"[:500]
