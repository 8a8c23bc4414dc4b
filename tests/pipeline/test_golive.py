"""The go-live sweep marks users live once their initial burst is delivered, all at once."""

from __future__ import annotations

import uuid

import trio
import trio.testing
from conftest import sql

from sim.db import Database, fleet, outbox, users
from sim.db.fleet import Fence
from sim.db.initial import Waiting, finish_initial
from sim.db.outbox import Outcome
from sim.db.users import DemoConfig
from sim.pipeline.content import DemoSpec, OfflineProvider
from sim.pipeline.golive import GoLive
from sim.pipeline.store import to_rows


async def _stored(db: Database, name: str, me: uuid.UUID, dms: int) -> Waiting:
    """``name`` on, owned by ``me``, its initial DMs stored (pending)."""
    await users.enable_user(db, name, DemoConfig(0, 0, dms, 0, 1), lease=fleet.Lease(me))
    row = await users.get_user(db, name)
    assert row is not None
    drafts = [d for b in OfflineProvider().initial(DemoSpec(0, 0, dms, 1), 100) for d in b]
    rows = to_rows(name, row.run_id, row.enabled_at, drafts)
    fence = Fence(me, row.owner_epoch)
    await outbox.store_rows(db, name, row.run_id, rows, live=False, fence=fence)
    return Waiting(name, row.run_id, fence)


async def _deliver(db: Database, n: int, status: str = "sent") -> None:
    claimed = await outbox.claim(db, n, 60)
    await outbox.record(
        db, [Outcome(c.id, c.user_id, c.seq, c.kind, status, c.run_id) for c in claimed]
    )


async def test_finish_marks_only_users_with_nothing_left(db: Database, db_url: str) -> None:
    """One statement: delivered users go live with their counts; the others keep waiting."""
    me = uuid.uuid4()
    done = await _stored(db, "done", me, 3)
    await _deliver(db, 10)
    waiting = await _stored(db, "waiting", me, 2)
    finished = await finish_initial(db, [done, waiting])
    assert [(f.user_id, f.sent, f.failed) for f in finished] == [("done", 3, 0)]
    assert sql(db_url, "select user_id, state from demo_users order by 1") == [
        ("done", "live"),
        ("waiting", "initializing"),
    ]


async def test_finish_is_fenced(db: Database, db_url: str) -> None:
    """A simulation whose lease moved on cannot mark its user live."""
    stale = await _stored(db, "stale", uuid.uuid4(), 1)
    await _deliver(db, 10, "failed")
    sql(db_url, "update demo_users set owner_epoch = owner_epoch + 1")
    assert await finish_initial(db, [stale]) == []
    assert sql(db_url, "select state from demo_users") == [("initializing",)]


async def test_sweep_wakes_waiters_after_progress(db: Database, nursery: trio.Nursery) -> None:
    """Many users wait on one sweep; recorded progress finishes them without polling each."""
    me = uuid.uuid4()
    golive = await nursery.start(GoLive(db, 10).run)
    waits = [await _stored(db, f"u{i:02d}", me, 2) for i in range(30)]
    results: dict[str, int] = {}

    async def wait(w: Waiting) -> None:
        results[w.user_id] = (await golive.wait(w)).sent

    async with trio.open_nursery() as waiters:
        for w in waits:
            waiters.start_soon(wait, w)
        await trio.testing.wait_all_tasks_blocked()
        assert golive.waiting == len(waits)
        await _deliver(db, 1000)
        golive.progress(w.user_id for w in waits)
    assert results == {w.user_id: 2 for w in waits}
    assert golive.waiting == 0
