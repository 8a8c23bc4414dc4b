"""The attempt log, re-queuing and 410 Gone against real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import claimed_dms, sql

from sim.db import Database, attempts, outbox
from sim.db.attempts import AttemptEntry
from sim.db.outbox import Outcome


def entry(user: str, n: int, at: datetime | None = None) -> AttemptEntry:
    return AttemptEntry(
        user_id=user,
        at=at or datetime.now(UTC),
        webhook_id=f"msg_{n}",
        attempt=1,
        items=10,
        first_seq=n * 10,
        outcome="retry" if n % 2 else "ok",
        status_code=503 if n % 2 else 200,
        error="HTTP 503" if n % 2 else None,
        latency_s=0.01,
        next_attempt_at=None,
    )


async def test_insert_and_keyset_pages_newest_first(db: Database) -> None:
    """Entries are written in one statement and paged by id, newest first, per user."""
    assert await attempts.insert_attempts(db, [entry("ann", i) for i in range(5)]) == 5
    await attempts.insert_attempts(db, [entry("bob", 9)])
    first = await attempts.page_attempts(db, "ann", limit=3)
    assert [r["webhook_id"] for r in first] == ["msg_4", "msg_3", "msg_2"]
    rest = await attempts.page_attempts(db, "ann", limit=3, before=first[-1]["id"])
    assert [r["webhook_id"] for r in rest] == ["msg_1", "msg_0"]
    assert rest[0]["status_code"] == 503 and rest[0]["error"] == "HTTP 503"


async def test_prune_by_count_and_age(db: Database, db_url: str) -> None:
    """Pruning keeps the newest rows up to the count and drops rows past the age."""
    old = datetime.now(UTC) - timedelta(days=10)
    await attempts.insert_attempts(db, [entry("ann", i, old) for i in range(3)])
    await attempts.insert_attempts(db, [entry("ann", i) for i in range(3, 10)])
    assert await attempts.prune_attempts(db, 5, 86400.0) == 5
    left = sql(db_url, "select webhook_id from delivery_attempts order by id")
    assert left == [(f"msg_{i}",) for i in range(5, 10)]


async def test_requeue_in_batches_is_idempotent(db: Database, db_url: str) -> None:
    """Failed rows are re-queued as new across batches; a second call finds none."""
    rows = await claimed_dms(db, "ann", 7)
    failed = [Outcome(r.id, "ann", r.seq, "dm", "failed", r.run_id, 0, "HTTP 400") for r in rows]
    await outbox.record(db, failed[:5])
    await outbox.record(db, [Outcome(r.id, "ann", r.seq, "dm", "sent", r.run_id) for r in rows[5:]])
    assert await attempts.requeue(db, "ann", ["failed"], None, batch=2) == 5
    assert await attempts.requeue(db, "ann", ["failed"], None, batch=2) == 0
    got = sql(
        db_url, "select status, attempts, last_error, queued_at is not null from interactions"
    )
    assert sorted(got) == [("pending", 0, None, True)] * 5 + [("sent", 1, None, False)] * 2
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await attempts.requeue(db, "ann", ["sent"], later) == 0
    assert await attempts.requeue(db, "ann", ["sent", "failed"], None) == 2


async def test_stop_gone_turns_demo_mode_off_with_the_reason(db: Database, db_url: str) -> None:
    """410 Gone: demo mode off, the reason in last_error; a second call changes nothing."""
    await claimed_dms(db, "ann", 1)
    assert await attempts.stop_gone(db, "ann", "main app answered 410 Gone")
    assert not await attempts.stop_gone(db, "ann", "again")
    assert sql(db_url, "select state, enabled, last_error from demo_users") == [
        ("disabled", False, "main app answered 410 Gone")
    ]
