"""410 Gone: the user's demo mode is turned off once, with the reason, outside the sender."""

from __future__ import annotations

from typing import Any

import trio
from conftest import claimed_dms, sql

from sim.db import Database
from sim.pipeline.gone import GoneStopper


class FakeSupervisor:
    """Records the disables it is asked for (a seam for the real supervisor)."""

    def __init__(self) -> None:
        self.disabled: list[str] = []
        self.called = trio.Event()

    async def disable(self, user_id: str, *, purge: bool) -> Any:
        self.disabled.append(user_id)
        self.called.set()
        return None, 0


async def test_gone_turns_demo_mode_off_once(db: Database, db_url: str) -> None:
    """Several 410s for one user: one turning off, the reason kept in last_error."""
    await claimed_dms(db, "ann", 1)
    stopper = GoneStopper(db)
    fake = FakeSupervisor()
    stopper.supervisor = fake  # type: ignore[assignment]
    async with trio.open_nursery() as nursery:
        await nursery.start(stopper.run)
        stopper("ann", "HTTP 410: gone")
        stopper("ann", "HTTP 410: gone")
        with trio.fail_after(10):
            await fake.called.wait()
        nursery.cancel_scope.cancel()
    assert fake.disabled == ["ann"]
    ((state, enabled, error),) = sql(db_url, "select state, enabled, last_error from demo_users")
    assert (state, enabled) == ("disabled", False)
    assert error == "main app answered 410 Gone, demo mode turned off: HTTP 410: gone"
