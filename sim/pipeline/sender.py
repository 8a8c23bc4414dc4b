"""Sender workers: claim due rows of any user, deliver them, hand the outcomes on.

An instance runs ``send_concurrency`` workers for all its users together (start them
once with ``await nursery.start(sender.run)``): what an idle instance costs PostgreSQL
does not depend on how many users it knows. Each claim serves the users with due rows
in round-robin order (``outbox.claim``), so one user's backlog never holds back
another user's first items; users whose rows just became claimable (``wake`` with
``first``: a new user's first rows stored, a video's comments unblocked) are served
first by the next claim, so they do not wait for the round robin to come by.

``halt()`` (sim stops; safe in a signal handler) ends delivery at once: no request
starts after it, the workers are cancelled, and the rows they had claimed go back to
``pending`` (due at once, their attempt given back). The receiver de-duplicates what
it may already have got, as for any redelivery.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable

import trio

from sim.db import Database, outbox
from sim.db.outbox import FIRST_USERS, Claimed, Outcome
from sim.errors import DatabaseError
from sim.pipeline.breaker import Pass
from sim.pipeline.delivery import Deliverer, DeliveryHalted
from sim.pipeline.recorder import Recorder
from sim.pipeline.retry import RetryPolicy
from sim.settings import Settings

__all__ = ["Sender"]

log = logging.getLogger(__name__)

#: an idle worker's poll interval doubles after each empty claim, up to this many times
_MAX_IDLE_DOUBLINGS = 3
#: workers other than the first poll this much less often (they are mostly woken)
_OTHERS_POLL_FACTOR = 10


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
        # claimed-but-undelivered batches: no more than can be sent at once, so claimed
        # rows never queue in memory, leases ticking, for an HTTP slot
        self._in_flight = trio.CapacityLimiter(settings.http_concurrency)
        self._idle = trio.lowlevel.ParkingLot()  # workers waiting for a wake-up
        self._rung = False  # woken while no worker was waiting: the next one claims at once
        self._after = ""  # the last user served: the next claim starts after it
        #: users to serve before the round robin, in the order they were named (a dict as
        #: an ordered set: naming a user again keeps its place)
        self._first: dict[str, None] = {}
        #: set once by ``halt()``: no more claims nor requests
        self.halted = False
        self._token: trio.lowlevel.TrioToken | None = None
        self._workers: trio.CancelScope | None = None

    @property
    def idle_workers(self) -> int:
        """Workers waiting for a wake-up (or their next poll)."""
        return int(self._idle.statistics().tasks_waiting)

    def wake(self, first: Iterable[str] = ()) -> None:
        """Rows may have become claimable (stored, a video sent): bring one worker in.

        The users in ``first`` are served before the round robin by the next claims
        (``FIRST_USERS`` a claim, in the order named). Cheap and synchronous (callable
        from any Trio task). Wake-ups while every worker is busy are coalesced into one
        more claim.
        """
        for user_id in first:
            self._first[user_id] = None
        if self.idle_workers:
            self._idle.unpark()
        else:
            self._rung = True

    def halt(self) -> None:
        """Deliver nothing more, from now on; the workers end as soon as Trio runs.

        Only plain assignments and ``TrioToken.run_sync_soon``: safe to call from a
        signal handler, which is where a SIGTERM's first effect must be. Until the
        workers are cancelled the deliverer starts no request and counts none that
        ends without a 2xx (``Deliverer.halt``).
        """
        if self.halted:
            return
        self.halted = True
        self.deliverer.halt()
        if self._token is not None:
            self._token.run_sync_soon(self._cancel_workers)

    def _cancel_workers(self) -> None:
        if self._workers is not None:
            self._workers.cancel()

    async def run(self, *, task_status: trio.TaskStatus[Sender] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the workers until cancelled or halted."""
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self._workers = nursery.cancel_scope
            if not self.halted:
                for index in range(self.settings.send_concurrency):
                    nursery.start_soon(self._worker, index)
                log.info("%d sender workers started", self.settings.send_concurrency)
            task_status.started(self)
        if self.halted:
            log.info("Sender workers stopped: delivery halted")

    async def _worker(self, index: int) -> None:
        """Claim and deliver until cancelled; wait for a wake-up (or poll) when idle.

        Worker 0 polls every ``idle_poll_s`` for rows that fall due by themselves
        (retries, expired leases), doubling the interval after each empty claim up to
        8x; the others poll ten times less often. A full batch brings another worker in.
        """
        s = self.settings
        base_s = s.idle_poll_s * (1 if index == 0 else _OTHERS_POLL_FACTOR)
        failures = 0
        empty = 0
        while not self.halted:
            # reset first: the last batch must not stay alive while waiting for a slot
            rows: list[Claimed] = []
            outcomes: list[Outcome] = []
            claim_error: DatabaseError | None = None
            # the circuit breaker: waits while the main app is down (one probe per interval)
            ticket = await self.deliverer.breaker.admit()
            async with self._in_flight:
                self._rung = False  # this claim sees every row stored until now
                first = self._take_first()
                # shielded (and bounded): a claim cancelled after its commit would leave its
                # rows `sending` until the lease ends; finished, they are released below
                with trio.CancelScope(shield=True), trio.move_on_after(s.batch_timeout_s):
                    try:
                        rows = await outbox.claim(
                            self.db,
                            1 if ticket.probe else s.send_batch_size,
                            s.lease_s,
                            after=self._after,
                            first=first,
                        )
                    except DatabaseError as exc:
                        claim_error = exc
                        self.wake(first)  # still to be served first
                named = set(first)
                served = [r.user_id for r in rows if r.user_id not in named]
                if served:  # the round robin goes on after its last user
                    self._after = served[-1]
                if rows:
                    if len(rows) == s.send_batch_size:
                        self.wake()  # more may be due
                    outcomes = await self._deliver(rows, ticket)
                else:
                    self.deliverer.breaker.unused(ticket)
            if claim_error is not None:
                failures += 1
                delay = RetryPolicy.for_database(s).delay_s(failures, self._rng)
                log.warning("Claiming failed (%s); retry in %.2fs", claim_error, delay)
                await trio.sleep(delay)
                continue
            failures = 0
            if rows:
                empty = 0
                _log_problems(outcomes)
                continue
            self._after = ""
            empty = min(empty + 1, _MAX_IDLE_DOUBLINGS + 1)
            if await self._wait(base_s * 2 ** (empty - 1)):
                empty = 0

    def _take_first(self) -> list[str]:
        """The users the next claim serves first (up to ``FIRST_USERS``), oldest named first."""
        taken: list[str] = []
        for user_id in self._first:
            if len(taken) >= FIRST_USERS:
                break
            taken.append(user_id)
        for user_id in taken:
            del self._first[user_id]
        return taken

    async def _wait(self, timeout_s: float) -> bool:
        """Park until ``wake()`` or ``timeout_s``; True when woken."""
        if self._rung:
            self._rung = False
            return True
        with trio.move_on_after(timeout_s):
            await self._idle.park()
            return True
        return False

    async def _deliver(self, rows: list[Claimed], ticket: Pass) -> list[Outcome]:
        """Deliver claimed rows and hand the outcomes to the recorder."""
        try:
            outcomes = await self.deliverer.deliver(rows, ticket)
        except DeliveryHalted:
            await self._give_back(rows)
            return []
        except BaseException:
            # cancelled mid-delivery (sim stops): give the rows back now rather than
            # after the lease; the receiver de-duplicates redeliveries
            await self._give_back(rows)
            raise
        try:
            await self.recorder.submit(outcomes)
        except trio.Cancelled:
            # answered, then cancelled (sim stops): the outcomes are still recorded, else
            # the rows the receiver took would be sent again; bounded, and shielded
            bound_s = self.settings.batch_timeout_s
            with trio.CancelScope(shield=True):
                with trio.move_on_after(bound_s) as bounded:
                    await self.recorder.submit(outcomes)
                if bounded.cancelled_caught:
                    log.warning("The recorder took no outcomes for %gs", bound_s)
                    await self._give_back(rows)
            raise
        return outcomes

    async def _give_back(self, rows: list[Claimed]) -> None:
        """Undelivered claimed rows back to ``pending``, due at once, the attempt not counted.

        Shielded from the cancellation that usually brings us here, and bounded like
        every database batch (``batch_timeout_s``). If it cannot be done the rows stay
        leased until ``lease_s`` runs out, then any sender claims them again.
        """
        bound_s = self.settings.batch_timeout_s
        with trio.CancelScope(shield=True):
            with trio.move_on_after(bound_s) as bounded:
                try:
                    released = await outbox.release(self.db, rows)
                except DatabaseError as exc:
                    log.warning("Could not give back %d rows (%s); lease will", len(rows), exc)
                    return
            if bounded.cancelled_caught:
                log.warning("Giving back %d rows took over %gs; lease will", len(rows), bound_s)
                return
        log.info("Gave back %d of %d claimed rows, undelivered", released, len(rows))


def _log_problems(outcomes: list[Outcome]) -> None:
    retry = sum(o.status == "pending" for o in outcomes)
    failed = sum(o.status == "failed" for o in outcomes)
    if retry or failed:
        log.info(
            "Delivery of %d interactions: %d to retry, %d failed (%s)",
            len(outcomes),
            retry,
            failed,
            next(o.error for o in outcomes if o.status != "sent"),
        )
