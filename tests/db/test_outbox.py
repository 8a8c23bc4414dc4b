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
    again = await outbox.claim(db, 10, 60)
    assert sorted(r.seq for r in again) == [1, 2, 3]


async def test_release_gives_the_attempt_back_to_this_claims_rows_only(
    db: Database, db_url: str
) -> None:
    """Released rows (of two users) lose the claim's attempt; a row claimed again is left alone."""
    rows = await claimed_dms(db, "fay", 3) + await claimed_dms(db, "gus", 2)
    assert {r.attempts for r in rows} == {1}
    # fay's first row: its lease ran out and another sender claimed it (a second attempt)
    sql(db_url, "update interactions set attempts = 2 where user_id = 'fay' and seq = 0")
    assert await outbox.release(db, rows) == 4
    assert sql(
        db_url, "select user_id, seq, status, attempts from interactions order by user_id, seq"
    ) == [
        ("fay", 0, "sending", 2),
        ("fay", 1, "pending", 0),
        ("fay", 2, "pending", 0),
        ("gus", 0, "pending", 0),
        ("gus", 1, "pending", 0),
    ]


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

    first = await outbox.claim(db, 10, 60)
    assert [r.kind for r in first] == ["video"]
    assert await outbox.claim(db, 10, 60) == []
    await outbox.record(db, _sent(first))
    assert [r.kind for r in await outbox.claim(db, 10, 60)] == ["comment", "comment"]


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
    new = await outbox.claim(db, 3, 60)
    assert sorted(r.seq for r in new) == sorted(r.seq for r in old)

    late_failure = Outcome(old[0].id, "eve", old[0].seq, "dm", "failed", old[0].run_id, 0, "x")
    assert await outbox.record(db, [*_sent(old[1:]), late_failure]) == 0
    assert await outbox.release(db, old) == 0
    assert sql(db_url, "select status, count(*) from interactions group by 1") == [("sending", 3)]


def _due_dms(db_url: str, user: str, n: int) -> None:
    """Insert ``n`` due DMs of ``user`` directly (seq 0..n-1)."""
    sql(
        db_url,
        "insert into interactions (id, user_id, seq, kind, payload, created_at)"
        " select gen_random_uuid(), %s, g, 'dm', '{}', now() from generate_series(0, %s - 1) g",
        (user, n),
    )


async def test_a_small_user_is_not_held_back_by_a_huge_backlog(db: Database, db_url: str) -> None:
    """50,000 due rows of one user: another user's 208 are all claimed in the first claim."""
    await users.enable_user(db, "huge", users.DemoConfig(0, 0, 1, 0, 1))
    await users.enable_user(db, "small", users.DemoConfig(0, 0, 1, 0, 2))
    _due_dms(db_url, "huge", 50_000)
    _due_dms(db_url, "small", 208)
    sql(db_url, "analyze interactions")
    first = await outbox.claim(db, 1000, 60)
    # the small user's 208 all, and the huge backlog the rest of the batch
    assert [r.user_id for r in first] == ["huge"] * 792 + ["small"] * 208
    assert {r.run_id for r in first if r.user_id == "small"} == {await _run(db, "small")}
    assert {r.run_id for r in first if r.user_id == "huge"} == {await _run(db, "huge")}
    rest = await outbox.claim(db, 1000, 60)
    assert [r.user_id for r in rest] == ["huge"] * 1000


async def test_an_equal_share_left_unused_goes_to_users_with_more(
    db: Database, db_url: str
) -> None:
    """Shares are water-filled: users with 1 and 3 due rows leave the rest to a backlog."""
    for user, n in (("one", 1), ("three", 3), ("many", 100)):
        await users.enable_user(db, user, users.DemoConfig(0, 0, 1, 0, 1))
        _due_dms(db_url, user, n)
    rows = await outbox.claim(db, 12, 60)
    counts = {u: sum(r.user_id == u for r in rows) for u in ("one", "three", "many")}
    assert counts == {"one": 1, "three": 3, "many": 8}


async def test_claims_take_turns_across_users(db: Database, db_url: str) -> None:
    """Users are served round robin from the one after the last served, each a fair share."""
    for user in ("a", "b", "c"):
        await users.enable_user(db, user, users.DemoConfig(0, 0, 1, 0, 1))
        _due_dms(db_url, user, 10)
    rows = await outbox.claim(db, 6, 60, after="b")
    order = [("c", 0), ("c", 1), ("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert [(r.user_id, r.seq) for r in rows] == order
    one = await outbox.claim(db, 1, 60, after="a")
    assert [(r.user_id, r.seq) for r in one] == [("b", 2)]


async def test_users_named_first_are_served_before_the_round_robin(
    db: Database, db_url: str
) -> None:
    """Users named ``first`` come first, in that order, with the same share as the rest."""
    for user in ("a", "b", "c", "d", "e"):
        await users.enable_user(db, user, users.DemoConfig(0, 0, 1, 0, 1))
        _due_dms(db_url, user, 10)
    rows = await outbox.claim(db, 10, 60, after="a", first=["d", "b", "nobody"])
    order = [("d", 0), ("d", 1), ("b", 0), ("b", 1)]
    order += [("c", 0), ("c", 1), ("e", 0), ("e", 1), ("a", 0), ("a", 1)]
    assert [(r.user_id, r.seq) for r in rows] == order


async def test_rows_of_a_disabled_user_are_not_claimed(db: Database, db_url: str) -> None:
    """Turning demo mode off stops delivery of the user's remaining rows."""
    await users.enable_user(db, "off", users.DemoConfig(0, 0, 1, 0, 1))
    await users.enable_user(db, "on", users.DemoConfig(0, 0, 1, 0, 1))
    _due_dms(db_url, "off", 5)
    _due_dms(db_url, "on", 5)
    await users.disable_user(db, "off")
    assert {r.user_id for r in await outbox.claim(db, 100, 60)} == {"on"}


async def test_retry_past_max_age_fails_the_row_and_its_comments(db: Database, db_url: str) -> None:
    """A pending outcome past its row's max age is written as failed; a refund gives back."""
    rows = await claimed_dms(db, "ann", 3)
    sql(db_url, "update interactions set inserted_at = now() - interval '2 hours'")

    def pending(r: Claimed, **kw: object) -> Outcome:
        return Outcome(r.id, "ann", r.seq, "dm", "pending", r.run_id, 60.0, "HTTP 503", **kw)  # type: ignore[arg-type]

    outcomes = [
        pending(rows[0], max_age_s=3600.0),  # queued 2 h ago, limit 1 h: fails
        pending(rows[1], max_age_s=86400.0),  # within a day: retried
        pending(rows[2], refund=True),  # circuit open: attempt given back
    ]
    assert await outbox.record(db, outcomes) == 3
    got = sql(db_url, "select seq, status, attempts, last_error from interactions order by seq")
    assert got[0][:3] == (0, "failed", 1) and got[0][3].startswith("gave up after 3600")
    assert got[1][:3] == (1, "pending", 1)
    assert got[2][:3] == (2, "pending", 0)


async def test_age_counts_from_a_requeue(db: Database, db_url: str) -> None:
    """queued_at (set by a redelivery) wins over inserted_at for the age."""
    rows = await claimed_dms(db, "ann", 1)
    sql(
        db_url,
        "update interactions set inserted_at = now() - interval '2 hours', queued_at = now()",
    )
    out = Outcome(rows[0].id, "ann", 0, "dm", "pending", rows[0].run_id, 1.0, "x", max_age_s=3600)
    await outbox.record(db, [out])
    assert sql(db_url, "select status from interactions") == [("pending",)]
