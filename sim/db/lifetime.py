"""A database's whole lifetime in one place: locate, open the pool, migrate; close, release."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from sim.db.migrate import apply_migrations
from sim.db.pool import Database
from sim.db.setup import locate_database
from sim.settings import Settings

__all__ = ["open_database"]


@asynccontextmanager
async def open_database(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Database]:
    """The database of ``settings``, open (and migrated), for the body of the ``async with``.

    On the way out the pool closes and an embedded server this process started is
    released (shielded: cancellation must not leave it running).
    """
    location = await locate_database(settings)
    try:
        async with trio.open_nursery() as nursery:
            db: Database = await nursery.start(Database(settings, location.conninfo).run)
            try:
                if migrate:
                    await apply_migrations(db)
                yield db
            finally:
                db.close()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(location.release)
