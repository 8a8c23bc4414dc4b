"""The bundled sink's store: what the reference receiver got, de-duplicated on id.

One request's items are written by ONE statement (``jsonb_to_recordset`` →
``insert ... on conflict (id) do update``), so a 100-item request is one round
trip. The same statement also reports which of the videos the caller asks about
had been received before it (its CTEs share one snapshot, taken before the
insert), which is how the receiver spots a comment delivered before its video.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from sim.db.pool import Conn, Database

__all__ = [
    "ReceivedRow",
    "SinkCounts",
    "StoreResult",
    "received_ids",
    "reset_sink",
    "sink_counts",
    "store_received",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReceivedRow:
    """One distinct interaction of a request; ``count`` = how often it occurred in it."""

    id: uuid.UUID
    user_id: str
    kind: str
    video_id: uuid.UUID | None
    payload: dict[str, Any]
    count: int = 1


@dataclass(frozen=True, slots=True)
class StoreResult:
    """``new``: ids stored for the first time; ``known_videos``: asked-about videos seen before."""

    new: int
    known_videos: frozenset[uuid.UUID] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class SinkCounts:
    """``received`` counts every delivery, ``unique`` every distinct id."""

    received: int
    unique: int

    @property
    def duplicates(self) -> int:
        return self.received - self.unique


# Rows are locked in id order, so two concurrent requests sharing ids cannot deadlock.
_STORE = """
with input as (
    select * from jsonb_to_recordset(%(rows)s::jsonb)
        as r(id uuid, user_id text, kind text, video_id uuid, payload jsonb, n integer)
),
known as (
    select coalesce(array_agg(s.id), '{}'::uuid[]) as ids
    from sink_received s
    where s.id = any(%(videos)s::uuid[]) and s.kind = 'video'
),
upsert as (
    insert into sink_received as s
        (id, user_id, kind, video_id, payload, webhook_id, deliveries, first_seen_at)
    select id, user_id, kind, video_id, payload, %(webhook_id)s, n,
           coalesce(%(received_at)s::timestamptz, now())
    from input
    order by id
    on conflict (id) do update set deliveries = s.deliveries + excluded.deliveries
    returning (xmax = 0) as inserted
)
select (select count(*) from upsert where inserted) as new,
       (select ids from known) as known_videos
"""


async def _store_received(
    conn: Conn,
    rows: Sequence[ReceivedRow],
    webhook_id: str | None,
    videos: list[uuid.UUID],
    received_at: datetime | None,
) -> StoreResult:
    doc = [
        {
            "id": str(r.id),
            "user_id": r.user_id,
            "kind": r.kind,
            "video_id": None if r.video_id is None else str(r.video_id),
            "payload": r.payload,
            "n": r.count,
        }
        for r in rows
    ]
    cur = await conn.execute(
        _STORE,
        {
            "rows": Jsonb(doc),
            "videos": videos,
            "webhook_id": webhook_id,
            "received_at": received_at,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return StoreResult(new=int(row["new"]), known_videos=frozenset(row["known_videos"]))


async def store_received(
    db: Database,
    rows: Sequence[ReceivedRow],
    *,
    webhook_id: str | None = None,
    check_videos: Iterable[uuid.UUID] = (),
    received_at: datetime | None = None,
) -> StoreResult:
    """Store one request's distinct items (ids must be distinct) in one statement.

    A known id gets ``deliveries`` raised by the row's ``count``; a new one is
    inserted with ``deliveries = count`` and ``first_seen_at = received_at`` (the
    transaction's start when None). ``check_videos`` are video ids to look up among
    what was stored before this call.
    """
    videos = sorted(set(check_videos))
    if not rows and not videos:
        return StoreResult(new=0)
    return await db.transaction(_store_received, list(rows), webhook_id, videos, received_at)


_COUNTS = """
select coalesce(sum(deliveries), 0)::bigint as received, count(*) as unique
from sink_received
where %(user_id)s::text is null or user_id = %(user_id)s::text
"""


async def _sink_counts(conn: Conn, user_id: str | None) -> SinkCounts:
    cur = await conn.execute(_COUNTS, {"user_id": user_id})
    row = await cur.fetchone()
    assert row is not None
    return SinkCounts(received=int(row["received"]), unique=int(row["unique"]))


async def sink_counts(db: Database, user_id: str | None = None) -> SinkCounts:
    """Deliveries and distinct ids received, overall or for one user."""
    return await db.transaction(_sink_counts, user_id)


async def _received_ids(conn: Conn, user_id: str, limit: int) -> list[uuid.UUID]:
    cur = await conn.execute(
        "select id from sink_received where user_id = %s order by first_seen_at, id limit %s",
        (user_id, limit),
    )
    return [row["id"] for row in await cur.fetchall()]


async def received_ids(db: Database, user_id: str, *, limit: int = 100_000) -> list[uuid.UUID]:
    """The distinct interaction ids received for ``user_id``, first seen first."""
    return await db.transaction(_received_ids, user_id, limit)


async def _reset_sink(conn: Conn) -> None:
    await conn.execute("truncate sink_received")


async def reset_sink(db: Database) -> None:
    """Forget everything the sink received."""
    await db.transaction(_reset_sink)
    log.info("Sink store truncated")
