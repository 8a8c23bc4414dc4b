"""Sender workers: claim due rows, deliver them, hand the outcomes to the recorder."""

from __future__ import annotations

import logging
import random
import uuid

import trio

from sim.db import Database, outbox
from sim.db.outbox import Claimed, Outcome
from sim.errors import DatabaseError
from sim.pipeline.breaker import Pass
from sim.pipeline.delivery import Deliverer
from sim.pipeline.recorder import Recorder
from sim.pipeline.timing import Wakeup, backoff_s
from sim.settings import Settings

__all__ = ["Sender"]

log = logging.getLogger(__name__)


class Sender:
    """Claims with ``FOR UPDATE SKIP LOCKED`` under a lease; never holds a transaction open."""

    def __init__(
        self, db: Database, settings: Settings, deliverer: Deliverer, recorder: Recorder
    ) -> None:
        self.db = db
        self.settings = settings
        self.deliverer = deliverer
        self.recorder = recorder
        self._rng = random.Random()
        # claimed-but-undelivered batches, all users together: no more than can be sent at
        # once, so claimed rows never queue in memory, leases ticking, for an HTTP slot
        self._in_flight = trio.CapacityLimiter(settings.http_concurrency)

    async def worker(
        self,
        user_id: str,
        run_id: uuid.UUID,
        wake: Wakeup,
        index: int = 0,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Deliver ``user_id``'s due rows until cancelled.

        Worker 0 polls every ``idle_poll_s`` for rows that fall due (retries,
        expired leases); the others mostly sleep until woken, so an idle user
        costs one claim per poll, not one per worker. New rows and sent videos
        wake the workers; while nothing does, worker 0's poll interval doubles
        after each empty claim, up to 8 x ``idle_poll_s``, so that many waiting
        users do not keep the database busy with empty claims.
        """
        s = self.settings
        idle_wait_s = s.idle_poll_s if index == 0 else s.idle_poll_s * 10
        task_status.started()
        failures = 0
        empty = 0
        while True:
            # reset first: the last batch must not stay alive while waiting for a slot
            rows: list[Claimed] = []
            outcomes: list[Outcome] = []
            claim_error: DatabaseError | None = None
            # the circuit breaker: waits while the main app is down (one probe per interval)
            ticket = await self.deliverer.breaker.admit()
            async with self._in_flight:
                try:
                    rows = await outbox.claim(
                        self.db,
                        user_id,
                        run_id,
                        1 if ticket.probe else s.send_batch_size,
                        s.lease_s,
                    )
                except DatabaseError as exc:
                    rows, claim_error = [], exc
                if rows:
                    outcomes = await self._deliver(rows, wake, ticket)
                else:
                    self.deliverer.breaker.unused(ticket)
            if claim_error is not None:
                failures += 1
                delay = backoff_s(failures, 0.05, 2.0, self._rng)
                log.warning(
                    "Claiming for user %s failed (%s); retry in %.2fs", user_id, claim_error, delay
                )
                await trio.sleep(delay)
                continue
            failures = 0
            if not rows:
                empty = min(empty + 1, 4)
                if await wake.wait(idle_wait_s * 2 ** (empty - 1)):
                    empty = 0
                continue
            empty = 0
            retry = sum(o.status == "pending" for o in outcomes)
            failed = sum(o.status == "failed" for o in outcomes)
            if retry or failed:
                log.info(
                    "Delivery of %d interactions for user %s: %d to retry, %d failed (%s)",
                    len(outcomes),
                    user_id,
                    retry,
                    failed,
                    next(o.error for o in outcomes if o.status != "sent"),
                )

    async def _deliver(self, rows: list[Claimed], wake: Wakeup, ticket: Pass) -> list[Outcome]:
        """Deliver claimed rows and hand the outcomes to the recorder."""
        if len(rows) == self.settings.send_batch_size:
            wake.set()  # more may be due: bring the other workers in
        try:
            outcomes = await self.deliverer.deliver(rows, ticket)
            await self.recorder.submit(outcomes)
        except BaseException:
            # cancelled mid-delivery (shutdown, disable): give the rows back now
            # rather than after the lease; the receiver de-duplicates redeliveries
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                try:
                    await outbox.release(self.db, rows)
                except DatabaseError as exc:
                    log.warning("Could not release %d rows (%s); lease will", len(rows), exc)
            raise
        return outcomes
