"""The outbox against real PostgreSQL: claims, keyed recording and release across users."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from conftest import claimed_dms, sql

from sim.db import Database, outbox, users
from sim.db.outbox import Claimed, NewRow, Outcome
from sim.pipeline.store import to_rows


def _sent(rows: list[Claimed]) -> list[Outcome]:
    return [Outcome(r.id, r.user_id, r.seq, r.kind, "sent", r.run_id) for r in rows]


async def _run(db: Database, user: str) -> uuid.UUID:
    row = await users.get_user(db, user)
    assert row is not None
    return row.run_id


async def test_one_batch_records_rows_of_several_users(db: Database, db_url: str) -> None:
    """A batch mixing users (one with a quote in its id) records every row by its key."""
    a = await claimed_dms(db, "ann", 5)
    b = await claimed_dms(db, "bob.o'neil", 3)
    retry = Outcome(a[0].id, "ann", a[0].seq, "dm", "pending", a[0].run_id, 30.0, "HTTP 503")
    assert await outbox.record(db, [retry, *_sent(a[1:]), *_sent(b)]) == 8
    assert sql(
        db_url,
        "select user_id, status, count(*) from interactions group by 1, 2 order by 1, 2",
    ) == [("ann", "pending", 1), ("ann", "sent", 4), ("bob.o'neil", "sent", 3)]
    assert sql(db_url, "select last_error from interactions where status = 'pending'") == [
        ("HTTP 503",)
    ]


async def test_release_gives_claimed_rows_back_by_key(db: Database, db_url: str) -> None:
    """Released rows are pending and due again; rows already sent are left alone."""
    rows = await claimed_dms(db, "cat", 4)
    await outbox.record(db, _sent(rows[:1]))
    assert await outbox.release(db, rows) == 3
    assert sql(db_url, "select status, count(*) from interactions group by 1 order by 1") == [
        ("pending", 3),
        ("sent", 1),
    ]
    again = await outbox.claim(db, "cat", await _run(db, "cat"), 10, 60)
    assert sorted(r.seq for r in again) == [1, 2, 3]


async def test_a_comment_is_claimed_only_after_its_video_is_sent(db: Database) -> None:
    """The comment finds its video by seq: not claimable until the video is recorded sent."""
    from sim.pipeline.content import DemoSpec, OfflineProvider

    await users.enable_user(db, "dan", users.DemoConfig(1, 2, 0, 0, 7))
    user = await users.get_user(db, "dan")
    assert user is not None
    drafts = [d for batch in OfflineProvider().initial(DemoSpec(1, 2, 0, 7), 100) for d in batch]
    rows = to_rows("dan", user.run_id, datetime.now(UTC), drafts)
    assert [r.video_seq for r in rows] == [None, 0, 0]
    await outbox.store_rows(db, "dan", user.run_id, rows, live=False)

    run = user.run_id
    first = await outbox.claim(db, "dan", run, 10, 60)
    assert [r.kind for r in first] == ["video"]
    assert await outbox.claim(db, "dan", run, 10, 60) == []
    await outbox.record(db, _sent(first))
    assert [r.kind for r in await outbox.claim(db, "dan", run, 10, 60)] == ["comment", "comment"]


async def test_outcomes_of_a_purged_run_never_touch_the_next_run(db: Database, db_url: str) -> None:
    """After purge and re-enable the seqs start again: a late outcome of the old run is void."""
    old = await claimed_dms(db, "eve", 3)
    await users.disable_user(db, "eve")
    while await users.purge_batch(db, "eve", 100):
        pass
    await users.enable_user(db, "eve", users.DemoConfig(0, 0, 3, 0, 2))
    new_run = await _run(db, "eve")
    assert new_run != old[0].run_id
    now = datetime.now(UTC)
    rows = [NewRow(uuid.uuid4(), i, "dm", None, "{}", now) for i in range(3)]
    await outbox.store_rows(db, "eve", new_run, rows, live=False)
    new = await outbox.claim(db, "eve", new_run, 3, 60)
    assert sorted(r.seq for r in new) == sorted(r.seq for r in old)

    late_failure = Outcome(old[0].id, "eve", old[0].seq, "dm", "failed", old[0].run_id, 0, "x")
    assert await outbox.record(db, [*_sent(old[1:]), late_failure]) == 0
    assert await outbox.release(db, old) == 0
    assert sql(db_url, "select status, count(*) from interactions group by 1") == [("sending", 3)]
