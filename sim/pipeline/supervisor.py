"""The supervisor: this instance's share of the fleet's users, one cancel scope each.

It registers the instance, heartbeats (renewing the leases of the users it owns and
taking over users whose owner died, up to a fair share), and keeps exactly the users it
owns running (``simulation.Simulations``). Enable/disable through this instance write
the user's row and notify the fleet; whoever owns the user starts or stops it. On a
graceful stop every user is handed over at once.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable

import trio

from sim import __version__
from sim.db import Database, fleet, users
from sim.db.fleet import DISABLED, ENABLED, Beat, Lease
from sim.db.users import DemoConfig, UserRow
from sim.errors import DatabaseError, describe
from sim.metrics import Metrics
from sim.pipeline.content import ContentProvider, OfflineProvider
from sim.pipeline.sender import Sender
from sim.pipeline.simulation import Simulations, UserRun, run_key
from sim.settings import Settings

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

#: how long stopping one user's simulation may take
STOP_TIMEOUT_S = 2.0


class Supervisor:
    """Runs the simulations of the users this instance owns.

    Start with ``await nursery.start(sup.run)``.
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        metrics: Metrics,
        sender: Sender,
        *,
        provider_factory: Callable[[], ContentProvider] = OfflineProvider,
        instance_id: uuid.UUID | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.sender = sender
        self.instance_id = instance_id or uuid.uuid4()
        self.lease = Lease(self.instance_id)
        self.member = fleet.Member(
            self.instance_id, socket.gethostname(), os.getpid(), __version__, settings.owner_lease_s
        )
        self.sims = Simulations(
            db,
            settings,
            metrics,
            self.instance_id,
            provider_factory,
            # a user's initial rows are served first; live ones wait for the round robin
            on_stored=lambda user_id, live: self.wake_senders(
                frozenset((user_id,)), first=not live
            ),
        )
        self._users: dict[str, UserRun] = {}
        self._nursery: trio.Nursery | None = None
        self._poke = trio.Event()
        #: the last heartbeat's view of the fleet
        self.last_beat: Beat | None = None
        #: set after each completed ownership round (tests wait on it)
        self.beats = 0

    async def run(
        self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        s = self.settings
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await nursery.start(self.sims.run)
                await fleet.register(self.db, self.member)
                log.info("Instance %s joined the fleet", self.instance_id)
                await self._guarded_round()
                task_status.started(self)
                while True:
                    with trio.move_on_after(s.heartbeat_s):
                        await self._poke.wait()
                    self._poke = trio.Event()
                    await self._guarded_round()
            finally:
                self._nursery = None
                with trio.CancelScope(shield=True), trio.move_on_after(s.db_close_timeout_s):
                    await self._leave()
                nursery.cancel_scope.cancel()

    async def _leave(self) -> None:
        for handle in self._users.values():
            handle.scope.cancel()
        try:
            handed = await fleet.leave(self.db, self.instance_id)
        except DatabaseError as exc:
            log.warning("Could not hand users over (%s); their leases will expire", exc)
        else:
            log.info("Instance %s left the fleet; %d users handed over", self.instance_id, handed)

    async def _guarded_round(self) -> None:
        try:
            await self._round()
        except (DatabaseError, trio.TooSlowError) as exc:
            log.warning(
                "Heartbeat failed (%s); leases held until they expire (pool: %s)",
                describe(exc),
                self.db.stats(),
            )

    async def _round(self) -> None:
        """One heartbeat, then run exactly the users owned."""
        s = self.settings
        began = trio.current_time()
        with trio.fail_after(s.pool_timeout_s + s.owner_lease_s):
            beat = await fleet.beat(self.db, self.member)
        self.last_beat = beat
        self.metrics.instances.set(beat.instances)
        self.metrics.owned_users.set(len(beat.owned))
        if beat.acquired or beat.released:
            log.info(
                "Ownership: took %d users, handed over %d (owns %d; share %d of %d instances)",
                len(beat.acquired),
                len(beat.released),
                len(beat.owned),
                beat.share,
                beat.instances,
            )
        # a user an enable started while the beat ran is not in what the beat read: it
        # stays (stopping it threw its first batch away and cost a second start; the
        # next round sees it, and its writes are fenced by the lease meanwhile)
        gone = [
            h for uid, h in self._users.items() if uid not in beat.owned and h.started_at < began
        ]
        await self._stop_all(gone)
        new = sorted(beat.owned - self._users.keys())
        # their rows in one query (with the lease just taken): no query per user to start
        with trio.fail_after(s.pool_timeout_s + s.batch_timeout_s):
            rows = await users.get_users(self.db, new)
        for user_id in new:
            if user_id not in self._users:  # an enable may have started it meanwhile
                await self._start(user_id, rows.get(user_id))
        self.beats += 1

    def poke(self, changes: frozenset[str] | None = None) -> None:
        """Run an ownership round now, unless ``changes`` (``USERS_CHANNEL`` payloads)
        leave this instance as it is: users it started itself turned on, others off."""
        if changes is not None and all(
            (c[:1] == ENABLED and c[1:] in self._users)
            or (c[:1] == DISABLED and c[1:] not in self._users)
            for c in changes
        ):
            return
        self._poke.set()

    def running(self) -> list[str]:
        return sorted(self._users)

    # --- API-facing -------------------------------------------------------------------
    async def enable(self, user_id: str, cfg: DemoConfig) -> tuple[UserRow, bool]:
        """Turn demo mode on; ``started`` is False when it was on already (no second burst).

        The user runs here when no other instance holds its lease; else its owner
        hears of the change and acts on it.
        """
        row, started = await users.enable_user(self.db, user_id, cfg, lease=self.lease)
        handle = self._users.get(user_id)
        if row.owner_id == self.instance_id and (
            handle is None
            # a heartbeat that saw the user owned may have started this very run already:
            # restarting it would throw its first batch away
            or (started and (handle.scope.cancel_called or handle.key != run_key(row)))
        ):
            await self._start(user_id, row)
        return row, started

    async def disable(self, user_id: str, *, purge: bool) -> tuple[UserRow | None, int]:
        """Turn demo mode off (stops the user's work within 2 s); optionally purge rows."""
        row = await users.disable_user(self.db, user_id)
        handle = self._users.get(user_id)
        if handle is not None:
            await self._stop_all([handle])
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
                if handle.awaiting is not None and counts["sent"]:
                    log.info(
                        "Updated %d/%d sent interactions for user %s",
                        min(handle.recorded["sent"], handle.awaiting),
                        handle.awaiting,
                        user_id,
                    )
        self.sims.golive.progress(per_user)
        unblocked = frozenset(u for u, counts in per_user.items() if counts["video_sent"])
        if unblocked:
            self.wake_senders(unblocked, first=True)

    def wake_senders(self, user_ids: frozenset[str] | None = None, *, first: bool = False) -> None:
        """New rows may be claimable (stored here or elsewhere, or a video was sent).

        The one place delivery is woken from: the instance's sender workers claim due
        rows of any user. With ``first`` the next claim serves ``user_ids`` before the
        round robin: a user's initial rows just stored here, or comments a video sent
        here unblocked (what a user waits for to see its demo); else whose rows they are
        does not matter.
        """
        self.sender.wake(sorted(user_ids) if first and user_ids else ())

    def resync(self) -> None:
        """Notifications may have been missed (listener reconnected): catch up."""
        self.poke()
        self.wake_senders()

    # --- per-user lifetime --------------------------------------------------------------
    async def _start(self, user_id: str, row: UserRow | None = None) -> None:
        assert self._nursery is not None, "supervisor not running"
        handle = UserRun(user_id, row, run_key(row) if row is not None else None)
        old = self._users.get(user_id)
        self._users[user_id] = handle  # the slot first: a concurrent start sees it
        if old is not None:
            await self._stop_all([old])
        if self._users.get(user_id) is handle and self._nursery is not None:
            await self._nursery.start(self._run_user, handle)
        else:
            handle.done.set()  # replaced before it started

    async def _run_user(self, handle: UserRun, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            with handle.scope:
                task_status.started()
                await self.sims.supervise(handle)
        finally:
            handle.done.set()
            if self._users.get(handle.user_id) is handle:
                del self._users[handle.user_id]

    async def _stop_all(self, handles: list[UserRun]) -> None:
        """Cancel the simulations and wait (together, bounded) until each has stopped."""
        for handle in handles:
            handle.scope.cancel()
        with trio.move_on_after(STOP_TIMEOUT_S):
            for handle in handles:
                await handle.done.wait()
        for handle in handles:
            if not handle.done.is_set():
                log.error(
                    "Simulation of user %s did not stop within %.1fs",
                    handle.user_id,
                    STOP_TIMEOUT_S,
                )
