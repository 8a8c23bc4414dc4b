"""Operators' delivery tools: the attempt log, re-queuing rows, and stopping on 410 Gone.

The attempt log (``delivery_attempts``) holds one row per delivery request, written in
batches (one statement per batch) and pruned by count and age.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sim.db.pool import Conn, Database

__all__ = [
    "REQUEUE_BATCH",
    "AttemptEntry",
    "insert_attempts",
    "page_attempts",
    "prune_attempts",
    "recent_errors",
    "requeue",
    "stop_gone",
]

#: rows re-queued per statement (each its own short transaction)
REQUEUE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class AttemptEntry:
    """One delivery request to the main app, as the attempt log keeps it."""

    user_id: str
    at: datetime
    webhook_id: str | None  # None: unsigned (no SIM_WEBHOOK_SECRET), no header sent
    attempt: int
    items: int
    first_seq: int
    outcome: str  # ok | retry | failed | gone
    status_code: int | None
    error: str | None
    latency_s: float
    next_attempt_at: datetime | None


_INSERT = """
insert into delivery_attempts (user_id, at, webhook_id, attempt, items, first_seq, outcome,
                               status_code, error, latency_s, next_attempt_at)
select * from unnest(%s::text[], %s::timestamptz[], %s::text[], %s::int[], %s::int[],
                     %s::int8[], %s::text[], %s::int[], %s::text[], %s::float8[],
                     %s::timestamptz[])
"""


async def _insert(conn: Conn, entries: Sequence[AttemptEntry]) -> int:
    columns = zip(
        *(
            (
                e.user_id,
                e.at,
                e.webhook_id,
                e.attempt,
                e.items,
                e.first_seq,
                e.outcome,
                e.status_code,
                e.error,
                e.latency_s,
                e.next_attempt_at,
            )
            for e in entries
        ),
        strict=True,
    )
    cur = await conn.execute(_INSERT, [list(c) for c in columns])
    return cur.rowcount


async def insert_attempts(db: Database, entries: Sequence[AttemptEntry]) -> int:
    """Append a batch of entries to the attempt log in one statement."""
    if not entries:
        return 0
    return await db.transaction(_insert, entries)


async def _prune(conn: Conn, max_rows: int, max_age_s: float) -> int:
    cur = await conn.execute(
        "delete from delivery_attempts where at < now() - make_interval(secs => %s)", (max_age_s,)
    )
    deleted = cur.rowcount
    cur = await conn.execute(
        "delete from delivery_attempts where id <= ("
        " select id from delivery_attempts order by id desc offset %s limit 1)",
        (max_rows,),
    )
    return deleted + cur.rowcount


async def prune_attempts(db: Database, max_rows: int, max_age_s: float) -> int:
    """Keep the newest ``max_rows`` entries, none older than ``max_age_s``; return deleted."""
    return await db.transaction(_prune, max_rows, max_age_s)


async def _page(conn: Conn, user_id: str, limit: int, before: int | None) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """
        select id, at, webhook_id, attempt, items, first_seq, outcome, status_code, error,
               latency_s, next_attempt_at
          from delivery_attempts
         where user_id = %s and (%s::int8 is null or id < %s)
         order by id desc limit %s
        """,
        (user_id, before, before, limit),
    )
    return list(await cur.fetchall())


async def page_attempts(
    db: Database, user_id: str, *, limit: int, before: int | None = None
) -> list[dict[str, Any]]:
    """One keyset page of the user's attempt log, newest first (ids below ``before``)."""
    return await db.transaction(_page, user_id, limit, before)


async def _recent_errors(conn: Conn, limit: int) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "select user_id, at, webhook_id, attempt, items, outcome, status_code, error"
        " from delivery_attempts where outcome <> 'ok' order by id desc limit %s",
        (limit,),
    )
    return list(await cur.fetchall())


async def recent_errors(db: Database, limit: int) -> list[dict[str, Any]]:
    """The newest failed delivery requests, all users together (for the dashboard)."""
    return await db.transaction(_recent_errors, limit)


_REQUEUE = """
with picked as (
    select seq from interactions
     where user_id = %(user_id)s and seq > %(after)s and status = any(%(statuses)s)
       and (%(since)s::timestamptz is null or inserted_at >= %(since)s)
     order by seq limit %(limit)s
)
update interactions i
   set status = 'pending', attempts = 0, due_at = now(), queued_at = now(),
       last_error = null, updated_at = now()
  from picked
 where i.user_id = %(user_id)s and i.seq = picked.seq and i.status = any(%(statuses)s)
returning i.seq
"""


async def _requeue_batch(
    conn: Conn, user_id: str, statuses: list[str], since: datetime | None, after: int, limit: int
) -> tuple[int, int | None]:
    params = {
        "user_id": user_id,
        "statuses": statuses,
        "since": since,
        "after": after,
        "limit": limit,
    }
    cur = await conn.execute(_REQUEUE, params)
    seqs = [r["seq"] for r in await cur.fetchall()]
    return len(seqs), (max(seqs) if len(seqs) == limit else None)


async def requeue(
    db: Database,
    user_id: str,
    statuses: Sequence[str],
    since: datetime | None,
    *,
    batch: int = REQUEUE_BATCH,
) -> int:
    """Re-queue the user's rows in ``statuses`` (queued since ``since``), in batches.

    Each batch is its own transaction, walking the key in order; a row is re-queued
    as new (``pending``, no attempts, its age counted from now). Idempotent: a
    re-queued row is ``pending`` and no longer matches.
    """
    total, after = 0, -1
    while True:
        n, last = await db.transaction(_requeue_batch, user_id, list(statuses), since, after, batch)
        total += n
        if last is None:
            return total
        after = last


async def _stop_gone(conn: Conn, user_id: str, reason: str) -> bool:
    cur = await conn.execute(
        "update demo_users set enabled = false, state = 'disabled',"
        " disabled_at = coalesce(disabled_at, now()), last_error = %s, updated_at = now()"
        " where user_id = %s and enabled returning 1",
        (reason, user_id),
    )
    return await cur.fetchone() is not None


async def stop_gone(db: Database, user_id: str, reason: str) -> bool:
    """Turn the user's demo mode off with ``reason`` kept; False when it was off already."""
    return await db.transaction(_stop_gone, user_id, reason)
