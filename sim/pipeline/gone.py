"""410 Gone from the main app: "stop sending" for that user, so demo mode is turned off.

The deliverer only reports it (it runs inside the user's sender, which turning demo
mode off cancels); the turning off runs here, in a nursery of its own, once per user.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from sim.db import Database, attempts
from sim.errors import DatabaseError

if TYPE_CHECKING:
    from sim.pipeline.supervisor import Supervisor

__all__ = ["GoneStopper"]

log = logging.getLogger(__name__)


class GoneStopper:
    """Call it with ``(user_id, reason)``; start with ``await nursery.start(stopper.run)``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.supervisor: Supervisor | None = None
        self._nursery: trio.Nursery | None = None
        self._stopping: set[str] = set()

    async def run(
        self, *, task_status: trio.TaskStatus[GoneStopper] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started(self)
            await trio.sleep_forever()

    def __call__(self, user_id: str, reason: str) -> None:
        if self._nursery is None or user_id in self._stopping:
            return
        self._stopping.add(user_id)
        self._nursery.start_soon(self._stop, user_id, reason)

    async def _stop(self, user_id: str, reason: str) -> None:
        message = f"main app answered 410 Gone, demo mode turned off: {reason}"[:500]
        try:
            with trio.fail_after(30):
                if await attempts.stop_gone(self.db, user_id, message):
                    log.warning(
                        "Main app answered 410 Gone for user %s: demo mode turned off", user_id
                    )
                if self.supervisor is not None:
                    await self.supervisor.disable(user_id, purge=False)
        except (DatabaseError, trio.TooSlowError) as exc:
            log.error("Could not turn demo mode off for user %s after 410 Gone (%s)", user_id, exc)
        finally:
            self._stopping.discard(user_id)
