"""The sink's store against real PostgreSQL: one-statement upserts, de-dup, counts, reset."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import trio
from conftest import sql

from sim.db import Database
from sim.db.sink_store import (
    ReceivedRow,
    received_ids,
    reset_sink,
    sink_counts,
    store_received,
)
from sim.settings import Settings


def _row(kind: str, user: str = "alice", video: uuid.UUID | None = None, n: int = 1) -> ReceivedRow:
    ident = uuid.uuid4()
    payload: dict[str, Any] = {
        "id": str(ident),
        "user_id": user,
        "kind": kind,
        "created_at": datetime.now(UTC).isoformat(),
        "text": "héllo",
    }
    return ReceivedRow(ident, user, kind, video, payload, n)


async def test_store_counts_new_and_repeated_ids(db: Database, settings: Settings) -> None:
    """New ids are inserted once; repeats (across and within calls) raise ``deliveries``."""
    video = _row("video")
    comment = _row("comment", video=video.id)
    dm = _row("dm", user="bob", n=3)
    with trio.fail_after(10):
        first = await store_received(db, [video, comment, dm], webhook_id="msg_1")
        again = await store_received(db, [video], webhook_id="msg_2")
        total = await sink_counts(db)
        alice = await sink_counts(db, "alice")
        bob = await sink_counts(db, "bob")
    assert first.new == 3 and again.new == 0
    assert (total.received, total.unique, total.duplicates) == (6, 3, 3)
    assert (alice.received, alice.unique, alice.duplicates) == (3, 2, 1)
    assert (bob.received, bob.unique, bob.duplicates) == (3, 1, 2)
    assert settings.database_url
    rows = sql(
        settings.database_url,
        "select webhook_id, deliveries, payload->>'text' from sink_received where id = %s",
        (video.id,),
    )
    assert rows == [("msg_1", 2, "héllo")]


async def test_store_reports_videos_received_before(db: Database) -> None:
    """``known_videos`` holds asked-about videos stored by earlier calls, not by this one."""
    old = _row("video")
    fresh = _row("video")
    never = uuid.uuid4()
    with trio.fail_after(10):
        await store_received(db, [old])
        result = await store_received(db, [fresh], check_videos=[old.id, fresh.id, never])
        dm_only = await store_received(db, [], check_videos=[never])
        nothing = await store_received(db, [])
    assert result.known_videos == {old.id}
    assert dm_only.known_videos == frozenset() and nothing.new == 0


async def test_received_ids_and_reset(db: Database) -> None:
    """Ids come back per user in arrival order; reset forgets everything."""
    rows = [_row("dm") for _ in range(5)]
    with trio.fail_after(10):
        for row in rows:
            await store_received(db, [row])
        await store_received(db, [_row("dm", user="bob")])
        ids = await received_ids(db, "alice")
        await reset_sink(db)
        after = await sink_counts(db)
        none = await received_ids(db, "alice")
    assert ids == [r.id for r in rows]
    assert (after.received, after.unique) == (0, 0) and none == []


async def test_concurrent_overlapping_batches_do_not_deadlock(db: Database) -> None:
    """Requests sharing ids, in different orders, all commit; deliveries add up exactly."""
    rows = [_row("dm") for _ in range(200)]

    async def deliver(reverse: bool) -> None:
        await store_received(db, rows[::-1] if reverse else rows)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(deliver, i % 2 == 1)
        counts = await sink_counts(db)
    assert (counts.received, counts.unique) == (1200, 200)
