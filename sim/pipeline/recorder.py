"""The recorder: delivery outcomes written back in batched, bounded, isolated UPDATEs.

Outcomes arrive on a bounded channel (a slow database slows the senders, memory
stays flat). They are flushed when ``record_batch_size`` have gathered or
``record_flush_interval_s`` after the first one, whichever comes first, and at
once when a video was sent (its comments wait for that record). Each
batch is one statement in its own short transaction under
``trio.fail_after(batch_timeout_s)``; at most ``record_concurrency`` run at
once. A failing batch is retried with backoff while the others proceed; if it
keeps failing it is given up, and its rows, still ``sending``, come back when
their lease expires: nothing is lost.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import trio

from sim.db.outbox import Outcome
from sim.errors import DatabaseError, describe
from sim.metrics import Metrics
from sim.pipeline.retry import RetryPolicy
from sim.settings import Settings

__all__ = ["RecordFn", "Recorder"]

log = logging.getLogger(__name__)

RecordFn = Callable[[Sequence[Outcome]], Awaitable[int]]
#: called after a batch is written: {user_id: Counter(status -> rows, "video_sent" -> rows)}
Listener = Callable[[dict[str, Counter[str]]], None]


class Recorder:
    """Batches outcomes into status UPDATEs. Start with ``await nursery.start(rec.run)``."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        write: RecordFn,
        *,
        listener: Listener | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._write = write
        self._listener = listener
        self._rng = rng or random.Random()
        # capacity counts outcome lists, each at most a send batch
        capacity = max(1, settings.record_backlog // max(1, settings.send_batch_size))
        self._send, self._receive = trio.open_memory_channel[list[Outcome]](capacity)
        self._limiter = trio.CapacityLimiter(settings.record_concurrency)
        self.rows_written = 0
        self.batches_abandoned = 0

    async def submit(self, outcomes: list[Outcome]) -> None:
        """Queue outcomes for recording; waits while the backlog is full."""
        if outcomes:
            await self._send.send(outcomes)

    def close(self) -> None:
        """No more outcomes: ``run`` flushes what it holds and returns."""
        self._send.close()

    async def run(
        self, *, task_status: trio.TaskStatus[Recorder] = trio.TASK_STATUS_IGNORED
    ) -> None:
        s = self.settings
        async with trio.open_nursery() as flushers:
            task_status.started(self)
            pending: list[Outcome] = []
            deadline = float("inf")
            while True:
                outcomes: list[Outcome] | None = None
                with trio.move_on_at(deadline):
                    try:
                        outcomes = await self._receive.receive()
                    except trio.EndOfChannel:
                        break
                if outcomes is not None:
                    if not pending:
                        deadline = trio.current_time() + s.record_flush_interval_s
                    pending.extend(outcomes)
                    if any(o.kind == "video" and o.status == "sent" for o in outcomes):
                        # comments wait until their video is recorded: no batching delay
                        deadline = trio.current_time()
                due = trio.current_time() >= deadline
                while len(pending) >= s.record_batch_size or (pending and due):
                    batch, pending = pending[: s.record_batch_size], pending[s.record_batch_size :]
                    await self._start_flush(flushers, batch)
                if not pending:
                    deadline = float("inf")
            while pending:
                batch, pending = pending[: s.record_batch_size], pending[s.record_batch_size :]
                await self._start_flush(flushers, batch)

    async def _start_flush(self, nursery: trio.Nursery, batch: list[Outcome]) -> None:
        # Taking the limiter here (not in the task) blocks intake while every
        # flusher is busy: backpressure reaches the senders through the channel.
        token = object()
        await self._limiter.acquire_on_behalf_of(token)
        nursery.start_soon(self._flush, batch, token)

    async def _flush(self, batch: list[Outcome], token: object) -> None:
        s = self.settings
        try:
            for attempt in range(s.record_max_retries + 1):
                start = trio.current_time()
                try:
                    with trio.fail_after(s.batch_timeout_s):
                        await self._write(batch)
                except (DatabaseError, trio.TooSlowError) as exc:
                    self.metrics.record_failures.inc()
                    if attempt >= s.record_max_retries:
                        self.batches_abandoned += 1
                        self.metrics.record_dropped.inc()
                        log.error(
                            "Gave up recording %d outcomes after %d attempts (%s); "
                            "their rows come back when the lease expires",
                            len(batch),
                            attempt + 1,
                            describe(exc),
                        )
                        return
                    delay = RetryPolicy.for_database(s).delay_s(attempt + 1, self._rng)
                    log.warning(
                        "Recording %d outcomes failed (%s); retry %d in %.2fs",
                        len(batch),
                        describe(exc),
                        attempt + 1,
                        delay,
                    )
                    self.metrics.record_retries.inc()
                    await trio.sleep(delay)
                    continue
                self.metrics.record_batches.inc()
                self.metrics.record_rows.observe(len(batch))
                self.metrics.record_seconds.observe(trio.current_time() - start)
                self.rows_written += len(batch)
                self._notify(batch)
                return
        finally:
            self._limiter.release_on_behalf_of(token)

    def _notify(self, batch: Sequence[Outcome]) -> None:
        if self._listener is None:
            return
        per_user: dict[str, Counter[str]] = {}
        for o in batch:
            counts = per_user.setdefault(o.user_id, Counter())
            counts[o.status] += 1
            if o.kind == "video" and o.status == "sent":
                counts["video_sent"] += 1  # its comments may now be claimed
        self._listener(per_user)
