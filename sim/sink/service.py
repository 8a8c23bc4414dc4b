"""What the standalone sink runs while it serves: its database, nothing else."""

from __future__ import annotations

import logging
from typing import Any

import trio

from sim.db import Database, open_database
from sim.errors import DatabaseUnavailable, is_only
from sim.settings import Settings

__all__ = ["SinkService"]

log = logging.getLogger(__name__)


class SinkService:
    """Owns the sink's database from before serving until after (``sim.web.Service``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.failure: BaseException | None = None
        #: set by ``halt()``: the sink stores nothing more (it answers 503)
        self.halted = False
        self._db: Database | None = None
        self._stop = trio.Event()
        self._done = trio.Event()

    @property
    def db(self) -> Database:
        if self._db is None:
            raise DatabaseUnavailable("the sink is not started")
        return self._db

    async def run(
        self, *, task_status: trio.TaskStatus[SinkService] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Open the database, report started, wait for ``shutdown``, close it."""
        self._stop, self._done, self.failure = trio.Event(), trio.Event(), None
        try:
            async with open_database(self.settings) as db:
                self._db = db
                task_status.started(self)
                log.info("sim sink started")
                await self._stop.wait()
                log.info("sim sink stopping")
        except BaseException as exc:
            self.failure = exc
            if not is_only(exc, trio.Cancelled):
                log.critical("the sink's database failed: %r", exc, exc_info=exc)
            raise
        finally:
            self._db = None
            self.halted = False  # a halt lasts until this run ends
            self._done.set()

    def readiness(self) -> dict[str, Any]:
        """The sink has nothing to add to ``/readyz`` beyond its database."""
        return {}

    def halt(self) -> None:
        """Store nothing more (safe to call from a signal handler)."""
        self.halted = True

    async def shutdown(self, timeout_s: float) -> None:
        """Halt, stop and wait (at most ``timeout_s``) for the database to close."""
        self.halt()
        self._stop.set()
        with trio.move_on_after(timeout_s) as scope:
            await self._done.wait()
        if scope.cancelled_caught:
            log.error("the sink did not stop within %.1fs", timeout_s)
