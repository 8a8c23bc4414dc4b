"""The transactional outbox: interactions from generation to delivery record.

Each public function is a plain Trio coroutine taking a ``Database``; its SQL
runs on the asyncio side in one transaction (one crossing). A row is
``pending`` until a sender claims it (``sending``; ``due_at`` is then the end
of its lease), then ``sent``, or ``failed`` once it can no longer succeed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import tuple_row

from sim.db.claim import FAIR_USERS, FIRST_USERS, Claimed, claim
from sim.db.fleet import OUTBOX_CHANNEL, Fence, fence_params
from sim.db.pool import Conn, Database
from sim.errors import LeaseLost

__all__ = [
    "COPY_COLUMNS",
    "FAIR_USERS",
    "FIRST_USERS",
    "Claimed",
    "NewRow",
    "Outcome",
    "StoreBatch",
    "claim",
    "record",
    "release",
    "store_batches",
    "store_rows",
]


@dataclass(frozen=True, slots=True)
class NewRow:
    """One generated interaction, ready for COPY (a comment names its video by id and seq)."""

    id: uuid.UUID
    seq: int
    kind: str
    video_id: uuid.UUID | None
    payload_json: str
    created_at: datetime
    video_seq: int | None = None

    def copy_values(self, user_id: str) -> tuple[object, ...]:
        """The row for ``COPY interactions (COPY_COLUMNS)``."""
        return (
            self.id,
            user_id,
            self.seq,
            self.kind,
            self.video_id,
            self.video_seq,
            self.payload_json,
            self.created_at,
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one delivery attempt: ``sent``, ``pending`` (retry later) or ``failed``.

    A row is addressed by ``(user_id, seq)``, its key; ``id`` is what the receiver saw.
    ``run_id`` is the run the row was claimed in: the outcome is only written while that
    run is the user's (after a purge a new run reuses the seqs).
    """

    id: uuid.UUID
    user_id: str
    seq: int
    kind: str
    status: str
    run_id: uuid.UUID
    retry_in_s: float = 0.0
    error: str | None = None
    #: the attempt does not count (circuit open, 410): ``attempts`` is given back
    refund: bool = False
    #: a ``pending`` outcome becomes ``failed`` when its retry would come later than this
    #: many seconds after the row was queued (0: no age limit); see sim.pipeline.policy
    max_age_s: float = 0.0


#: the columns ``NewRow.copy_values`` fills, in order
COPY_COLUMNS = "id, user_id, seq, kind, video_id, video_seq, payload, created_at"
_COPY = f"copy interactions ({COPY_COLUMNS}) from stdin"
_ADVANCE = """
with u as (
    select * from unnest(%s::text[], %s::uuid[], %s::uuid[], %s::int8[], %s::int8[], %s::int8[])
         as u(user_id, run_id, owner, epoch, n_initial, n_live)
),
-- users' rows are locked in user_id order, as by every statement that updates many
-- (the heartbeat, the go-live sweep): two of them never wait on each other (deadlock)
locked as (
    select d.user_id from demo_users d where d.user_id in (select user_id from u)
     order by d.user_id for update
)
update demo_users d
   set generated = d.generated + u.n_initial, live_generated = d.live_generated + u.n_live,
       updated_at = now()
  from u, locked
 where d.user_id = u.user_id and locked.user_id = u.user_id and d.run_id = u.run_id
   and d.enabled
   and sim_owns(d.owner_id, d.owner_epoch, u.owner, u.epoch)
returning d.user_id
"""


@dataclass(frozen=True, slots=True)
class StoreBatch:
    """Rows one simulation stores at once, under its run and lease (``fence``)."""

    user_id: str
    run_id: uuid.UUID
    rows: Sequence[NewRow]
    live: bool
    fence: Fence | None = None


async def _store(conn: Conn, batches: Sequence[StoreBatch]) -> frozenset[str]:
    # one advance per user (a user may have several batches in the group)
    runs: dict[str, tuple[StoreBatch, list[int]]] = {}
    for b in batches:
        first, counts = runs.setdefault(b.user_id, (b, [0, 0]))
        if (first.run_id, first.fence) != (b.run_id, b.fence):
            raise ValueError(f"batches of user {b.user_id!r} under different runs or leases")
        counts[1 if b.live else 0] += len(b.rows)
    firsts = [first for first, _ in runs.values()]
    fences = [fence_params(b.fence) for b in firsts]
    cur = await conn.execute(
        _ADVANCE,
        (
            list(runs),
            [b.run_id for b in firsts],
            [f["owner"] for f in fences],
            [f["epoch"] for f in fences],
            [counts[0] for _, counts in runs.values()],
            [counts[1] for _, counts in runs.values()],
        ),
    )
    accepted = {r["user_id"] for r in await cur.fetchall()}
    if accepted:
        async with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
            for b in batches:
                if b.user_id in accepted:
                    for r in b.rows:
                        await copy.write_row(r.copy_values(b.user_id))
        await conn.execute(
            "select pg_notify(%s, u) from unnest(%s::text[]) u", (OUTBOX_CHANNEL, sorted(accepted))
        )
    return frozenset(runs.keys() - accepted)


async def store_batches(db: Database, batches: Sequence[StoreBatch]) -> frozenset[str]:
    """COPY the batches into the outbox and advance each user's counters, atomically.

    Fenced per user: a user's batches are stored only while its run is current, demo
    mode is on and the simulation's lease (``fence``) holds; the users refused are
    returned (nothing of theirs stored). Senders are notified of the others.
    """
    if not batches:
        return frozenset()
    return await db.transaction(_store, batches)


async def store_rows(
    db: Database,
    user_id: str,
    run_id: uuid.UUID,
    rows: Sequence[NewRow],
    *,
    live: bool,
    fence: Fence | None = None,
) -> None:
    """``store_batches`` for one batch: ``LeaseLost`` when it is refused."""
    if await store_batches(db, [StoreBatch(user_id, run_id, rows, live, fence)]):
        raise LeaseLost(f"demo run of user {user_id!r} is no longer this instance's")


# a retry that would come later than max_age_s after the row was queued (first stored,
# or re-queued by a redelivery) is not made: the row fails for good
_EXPIRED = (
    "(u.status = 'pending' and u.max_age_s > 0"
    " and coalesce(i.queued_at, i.inserted_at) + make_interval(secs => u.max_age_s)"
    " < now() + make_interval(secs => u.retry_in_s))"
)
_RECORD = f"""
update interactions i
   set status = case when {_EXPIRED} then 'failed' else u.status end,
       attempts = case when u.refund then greatest(i.attempts - 1, 0) else i.attempts end,
       due_at = case when u.status = 'pending'
                     then now() + make_interval(secs => u.retry_in_s) else i.due_at end,
       sent_at = case when u.status = 'sent' then coalesce(i.sent_at, now()) else i.sent_at end,
       last_error = case when u.status = 'sent' then null
                         when {_EXPIRED} then 'gave up after ' || u.max_age_s || 's: ' || u.error
                         else u.error end,
       updated_at = now()
  from unnest(%s::text[], %s::int8[], %s::uuid[], %s::text[], %s::float8[], %s::text[],
              %s::bool[], %s::float8[])
       as u(user_id, seq, run_id, status, retry_in_s, error, refund, max_age_s)
 where i.user_id = u.user_id and i.seq = u.seq
   and (u.status = 'sent' or i.status = 'sending')
   and exists (select from demo_users d where d.user_id = u.user_id and d.run_id = u.run_id)
returning i.id, i.user_id, i.kind, i.status
"""

# the common case, every outcome ``sent``: one statement per user in the batch (usually
# one), an index scan of the key for the array of seqs (same effect as _RECORD)
_RECORD_SENT = """
update interactions
   set status = 'sent', sent_at = coalesce(sent_at, now()), last_error = null, updated_at = now()
 where user_id = %(user_id)s and seq = any(%(seqs)s::int8[])
   -- still the run the rows were claimed in (evaluated once per statement)
   and exists (
        select from demo_users d where d.user_id = %(user_id)s and d.run_id = %(run_id)s)
"""

#: above this many users (runs) in one batch, their ``sent`` rows are one statement
_SENT_STATEMENTS_MAX = 4
_RECORD_SENT_MANY = """
update interactions i
   set status = 'sent', sent_at = coalesce(i.sent_at, now()), last_error = null,
       updated_at = now()
  -- the keys still of the run they were claimed in, first (offset 0 keeps it apart):
  -- joined with demo_users in the same FROM, the planner probed the key's index by
  -- user_id alone and filtered the user's every row, once per outcome
  from (select u.user_id, u.seq
          from unnest(%s::text[], %s::int8[], %s::uuid[]) as u(user_id, seq, run_id)
         where exists (select from demo_users d
                        where d.user_id = u.user_id and d.run_id = u.run_id)
        offset 0) u
 where i.user_id = u.user_id and i.seq = u.seq
"""

_FAIL_ORPHANS = """
update interactions
   set status = 'failed', last_error = 'its video could not be delivered', updated_at = now()
 where user_id = any(%s::text[]) and status = 'pending' and video_id = any(%s::uuid[])
"""


def _seqs_by_run(outcomes: Sequence[Outcome]) -> dict[tuple[str, uuid.UUID], str]:
    """Each user's (and run's) seqs as one ``int8[]`` literal: psycopg adapts a list element
    by element in Python, several times slower than joining strings for a thousand rows."""
    seqs: dict[tuple[str, uuid.UUID], list[str]] = {}
    for o in outcomes:
        seqs.setdefault((o.user_id, o.run_id), []).append(str(o.seq))
    return {key: "{" + ",".join(s) + "}" for key, s in seqs.items()}


async def _record(conn: Conn, outcomes: Sequence[Outcome]) -> int:
    sent = [o for o in outcomes if o.status == "sent"]
    rest = [o for o in outcomes if o.status != "sent"] if len(sent) < len(outcomes) else []
    updated = 0
    runs = _seqs_by_run(sent)
    if len(runs) > _SENT_STATEMENTS_MAX:
        # many users with a few rows each: one statement for all of them
        many = ([o.user_id for o in sent], [o.seq for o in sent], [o.run_id for o in sent])
        updated += (await conn.execute(_RECORD_SENT_MANY, many)).rowcount
        runs = {}
    for (user_id, run_id), seqs in runs.items():
        params = {"user_id": user_id, "seqs": seqs, "run_id": run_id}
        updated += (await conn.execute(_RECORD_SENT, params)).rowcount
    failed_videos: list[tuple[uuid.UUID, str]] = []
    if rest:
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(
                _RECORD,
                (
                    [o.user_id for o in rest],
                    [o.seq for o in rest],
                    [o.run_id for o in rest],
                    [o.status for o in rest],
                    [o.retry_in_s for o in rest],
                    [o.error for o in rest],
                    [o.refund for o in rest],
                    [o.max_age_s for o in rest],
                ),
            )
            written = await cur.fetchall()
        updated += len(written)
        # videos failed for good, also those the age limit failed in the statement
        failed_videos = [(i, u) for i, u, kind, st in written if kind == "video" and st == "failed"]
    if failed_videos:
        owners = sorted({user for _, user in failed_videos})
        await conn.execute(_FAIL_ORPHANS, (owners, [id_ for id_, _ in failed_videos]))
    unblocked = sorted({o.user_id for o in sent if o.kind == "video"})
    if unblocked:  # their comments are claimable now, by any instance's senders
        await conn.execute(
            "select pg_notify(%s, u) from unnest(%s::text[]) u", (OUTBOX_CHANNEL, unblocked)
        )
    return updated


async def record(db: Database, outcomes: Sequence[Outcome]) -> int:
    """Write a batch of delivery outcomes in one transaction; return rows updated.

    Rows are addressed by their key, ``(user_id, seq)``: all ``sent`` (the usual case)
    is one statement per user in the batch (one for all when they are many), anything
    else one joined statement.

    A ``sent`` outcome always wins (it is terminal); a retry or failure only
    applies to a row still ``sending``. Comments of a video that failed for
    good are failed with it, so they never wait forever. A video sent is announced on
    ``OUTBOX_CHANNEL``: its comments became claimable, for every instance's senders.
    """
    return await db.transaction(_record, outcomes)


# One statement per user and run: a row-by-row join with demo_users made the planner
# expect a handful of rows and probe the user's due index once per row (a quarter of a
# second for 1,000 rows of a 4,000-row user, longer with a longer backlog).
_RELEASE = """
update interactions i
   set status = 'pending', due_at = now(), updated_at = now(),
       -- the attempt the claim counted was never made (or its answer never came)
       attempts = greatest(i.attempts - 1, 0)
  from unnest(%(seqs)s::int8[], %(attempts)s::int4[]) as u(seq, attempts)
 where i.user_id = %(user_id)s and i.seq = u.seq and i.status = 'sending'
   -- still this claim's: a row claimed again after its lease ran out has more attempts
   and i.attempts = u.attempts
   -- still the run the rows were claimed in (evaluated once per statement)
   and exists (
        select from demo_users d where d.user_id = %(user_id)s and d.run_id = %(run_id)s)
"""


async def _release(conn: Conn, rows: Sequence[Claimed]) -> int:
    by_run: dict[tuple[str, uuid.UUID], list[Claimed]] = {}
    for r in rows:
        by_run.setdefault((r.user_id, r.run_id), []).append(r)
    released = 0
    for (user_id, run_id), claimed in by_run.items():
        params = {
            "user_id": user_id,
            "run_id": run_id,
            "seqs": [r.seq for r in claimed],
            "attempts": [r.attempts for r in claimed],
        }
        released += (await conn.execute(_RELEASE, params)).rowcount
    return released


async def release(db: Database, rows: Sequence[Claimed]) -> int:
    """Give claimed rows back (shutdown): due again at once, the claim's attempt not counted."""
    return await db.transaction(_release, rows)
