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

from psycopg import sql
from psycopg.rows import tuple_row

from sim.db.pool import Conn, Database
from sim.errors import DatabaseError

__all__ = [
    "COPY_COLUMNS",
    "Claimed",
    "NewRow",
    "Outcome",
    "claim",
    "record",
    "release",
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
class Claimed:
    """A row claimed for delivery (its lease runs until ``due_at``) in the user's ``run_id``."""

    id: uuid.UUID
    user_id: str
    seq: int
    kind: str
    attempts: int
    payload_json: str
    run_id: uuid.UUID


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
    #: many seconds after the row was queued (0: no age limit); see sim.pipeline.retry
    max_age_s: float = 0.0


#: the columns ``NewRow.copy_values`` fills, in order
COPY_COLUMNS = "id, user_id, seq, kind, video_id, video_seq, payload, created_at"
_COPY = f"copy interactions ({COPY_COLUMNS}) from stdin"
_ADVANCE = sql.SQL(
    "update demo_users set {column} = {column} + %s, updated_at = now()"
    " where user_id = %s and run_id = %s and enabled returning 1"
)


async def _store(
    conn: Conn, user_id: str, run_id: uuid.UUID, rows: Sequence[NewRow], live: bool
) -> None:
    column = sql.Identifier("live_generated" if live else "generated")
    cur = await conn.execute(_ADVANCE.format(column=column), (len(rows), user_id, run_id))
    if await cur.fetchone() is None:
        raise DatabaseError(f"demo run of user {user_id!r} is no longer active")
    async with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
        for r in rows:
            await copy.write_row(r.copy_values(user_id))


async def store_rows(
    db: Database, user_id: str, run_id: uuid.UUID, rows: Sequence[NewRow], *, live: bool
) -> None:
    """COPY ``rows`` into the outbox and advance the user's generation counter, atomically."""
    await db.transaction(_store, user_id, run_id, rows, live)


_CLAIM = """
with due as (
    -- the row's physical address: the update below finds it without a primary-key
    -- probe (the row is locked, so it cannot move before the update)
    select i.ctid as tid from interactions i
    where i.user_id = %(user_id)s
      and i.status in ('pending', 'sending')
      and i.due_at <= now()
      -- a scalar subquery, not EXISTS: under OR the planner hashes an EXISTS, which
      -- seq-scans the whole table on every claim; this is one primary-key probe per row
      and (i.kind <> 'comment' or (
            select v.status from interactions v
             where v.user_id = i.user_id and v.seq = i.video_seq) = 'sent')
    order by i.due_at
    limit %(limit)s
    for update of i skip locked
)
update interactions i
   set status = 'sending',
       attempts = i.attempts + 1,
       due_at = now() + make_interval(secs => %(lease_s)s),
       updated_at = now()
  from due
 where i.ctid = due.tid
returning i.id, i.seq, i.kind, i.attempts, i.payload::text as payload_json
"""


async def _claim(
    conn: Conn, user_id: str, run_id: uuid.UUID, limit: int, lease_s: float
) -> list[Claimed]:
    # plain tuples: a dict per row costs more than the rest of the claim's Python work
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(_CLAIM, {"user_id": user_id, "limit": limit, "lease_s": lease_s})
        rows = await cur.fetchall()
    out = [
        Claimed(id_, user_id, seq, kind, tries, doc, run_id) for id_, seq, kind, tries, doc in rows
    ]
    out.sort(key=lambda c: c.seq)
    return out


async def claim(
    db: Database, user_id: str, run_id: uuid.UUID, limit: int, lease_s: float
) -> list[Claimed]:
    """Claim up to ``limit`` due rows of ``user_id``'s run (SKIP LOCKED) under a lease.

    A comment is only claimed once its video is ``sent``, so it is never
    delivered before its video.
    """
    return await db.transaction(_claim, user_id, run_id, limit, lease_s)


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
    for (user_id, run_id), seqs in _seqs_by_run(sent).items():
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
    return updated


async def record(db: Database, outcomes: Sequence[Outcome]) -> int:
    """Write a batch of delivery outcomes in one transaction; return rows updated.

    Rows are addressed by their key, ``(user_id, seq)``: all ``sent`` (the usual case)
    is one statement per user in the batch, anything else one joined statement.

    A ``sent`` outcome always wins (it is terminal); a retry or failure only
    applies to a row still ``sending``. Comments of a video that failed for
    good are failed with it, so they never wait forever.
    """
    return await db.transaction(_record, outcomes)


async def _release(conn: Conn, rows: Sequence[Claimed]) -> int:
    cur = await conn.execute(
        "update interactions i set status = 'pending', due_at = now(), updated_at = now()"
        " from unnest(%s::text[], %s::int8[], %s::uuid[]) as u(user_id, seq, run_id)"
        " where i.user_id = u.user_id and i.seq = u.seq and i.status = 'sending'"
        " and exists (select from demo_users d"
        " where d.user_id = u.user_id and d.run_id = u.run_id)",
        ([r.user_id for r in rows], [r.seq for r in rows], [r.run_id for r in rows]),
    )
    return cur.rowcount


async def release(db: Database, rows: Sequence[Claimed]) -> int:
    """Give claimed rows back (shutdown): they are due again at once."""
    return await db.transaction(_release, rows)
