"""Claiming due rows for delivery: fair across users, under a lease, SKIP LOCKED.

A claim serves up to ``FAIR_USERS`` users with due rows in round-robin order, each a
water-filled share of the batch, and marks the rows ``sending`` until the lease ends
(``due_at``). Users named in ``first`` (up to ``FIRST_USERS``: new rows were just stored
for them, or a video of theirs was just sent) are served before the round robin, with
the same share. A comment is claimable only once its video is ``sent``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg.rows import tuple_row

from sim.db.pool import Conn, Database

__all__ = ["FAIR_USERS", "FIRST_USERS", "Claimed", "claim"]


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


#: users served by one claim at most: each gets a fair share of the batch
FAIR_USERS = 64
#: of those, users served first (before the round robin) at most: the round robin keeps
#: the rest, so users served in turn are never crowded out
FIRST_USERS = FAIR_USERS // 2

_CLAIM = """
with recursive
-- users with unfinished rows, in user_id order, found by skipping through the partial
-- index (one probe per user, however many rows each has): first those after the cursor,
-- then from the start up to it (round robin). Evaluated lazily: it stops at the limit.
after_cursor(user_id) as (
    (select i.user_id from interactions i
      where i.status in ('pending', 'sending') and i.user_id > %(after)s
      order by i.user_id limit 1)
    union all
    select (select i.user_id from interactions i
             where i.status in ('pending', 'sending') and i.user_id > a.user_id
             order by i.user_id limit 1)
      from after_cursor a where a.user_id is not null
),
from_start(user_id) as (
    (select i.user_id from interactions i
      where i.status in ('pending', 'sending')
      order by i.user_id limit 1)
    union all
    select (select i.user_id from interactions i
             where i.status in ('pending', 'sending') and i.user_id > f.user_id
             order by i.user_id limit 1)
      from from_start f where f.user_id < %(after)s
),
-- users to serve before the round robin (rows just became claimable), in that order
first_users(ord, user_id) as (
    select f.ord, f.user_id
      from unnest(%(first)s::text[]) with ordinality as f(user_id, ord)
     limit %(first_users)s
),
picked as materialized (
    select o.lap, o.user_id, o.run_id
      from (select u.lap, u.user_id,
                   -- the run the rows are claimed in: outcomes are fenced with it
                   (select d.run_id from demo_users d
                     where d.user_id = u.user_id and d.enabled) as run_id
              from (select * from (select -1 as lap, user_id from first_users
                                    order by ord) f
                    union all
                    select 0, user_id from after_cursor
                     where user_id is not null
                       and user_id <> all (select user_id from first_users)
                    union all
                    select 1, user_id from from_start
                     where user_id is not null and user_id <= %(after)s
                       and user_id <> all (select user_id from first_users)) u) o
     where o.run_id is not null
       -- some row due now (not all leased to a sender): one probe of the due index (a
       -- scalar subquery: as EXISTS the planner joined every due row to every user)
       and (select true from interactions i
             where i.user_id = o.user_id and i.status in ('pending', 'sending')
               and i.due_at <= now()
             limit 1)
     limit least(%(users)s, %(limit)s)  -- at least one row each
),
-- how many rows each picked user has due (up to a whole batch), smallest first
counted as materialized (
    select p.user_id,
           (select count(*) from (select from interactions i
                                   where i.user_id = p.user_id
                                     and i.status in ('pending', 'sending')
                                     and i.due_at <= now()
                                   limit %(limit)s) d) as c
      from picked p
),
-- the share: water-filling, so a user with fewer due rows than an equal share leaves
-- the rest to those with more (the first user, smallest first, who cannot be given
-- all of its rows at the level left for it sets the level of everyone left)
levels as (
    select row_number() over w as k, c,
           floor((%(limit)s - coalesce(sum(c) over (w rows between unbounded preceding
                                                        and 1 preceding), 0))
                 / (count(*) over () - row_number() over w + 1))::int8 as level
      from counted
    window w as (order by c, user_id)
),
share as (
    select coalesce((select level from levels where c > level order by k limit 1),
                    %(limit)s) as n
),
due as materialized (
    -- each picked user's share, locked in a CTE so no more rows than that are updated;
    -- the row's physical address lets the update find it without a key probe (the row
    -- is locked, so it cannot move before the update)
    select p.lap, p.run_id, c.tid
      from picked p
     cross join lateral (
        select i.ctid as tid from interactions i
         where i.user_id = p.user_id
           and i.status in ('pending', 'sending')
           and i.due_at <= now()
           -- a scalar subquery, not EXISTS: under OR the planner hashes an EXISTS, which
           -- seq-scans the whole table; this is one primary-key probe per row
           and (i.kind <> 'comment' or (
                 select v.status from interactions v
                  where v.user_id = i.user_id and v.seq = i.video_seq) = 'sent')
         order by i.due_at
         limit (select greatest(1, n) from share)
         for update of i skip locked
     ) c
     limit %(limit)s  -- never more (and the planner then joins by address, not by hash)
)
update interactions i
   set status = 'sending',
       attempts = i.attempts + 1,
       due_at = now() + make_interval(secs => %(lease_s)s),
       updated_at = now()
  from due
 where i.ctid = due.tid
returning due.lap, i.user_id, i.seq, i.id, i.kind, i.attempts, i.payload::text, due.run_id
"""


async def _claim(
    conn: Conn, limit: int, lease_s: float, after: str, first: Sequence[str]
) -> list[Claimed]:
    params = {
        "limit": limit,
        "lease_s": lease_s,
        "after": after,
        "users": FAIR_USERS,
        "first": list(first),
        "first_users": FIRST_USERS,
    }
    # plain tuples: a dict per row costs more than the rest of the claim's Python work
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(_CLAIM, params)
        rows = await cur.fetchall()
    # users served first, then round-robin order of users, each user's rows by seq (first
    # users in the order given)
    order = {user: k for k, user in enumerate(first)}
    rows.sort(key=lambda r: (r[0], order.get(r[1], 0), r[1], r[2]))
    return [
        Claimed(id_, user, seq, kind, tries, doc, run)
        for _, user, seq, id_, kind, tries, doc, run in rows
    ]


async def claim(
    db: Database, limit: int, lease_s: float, *, after: str = "", first: Sequence[str] = ()
) -> list[Claimed]:
    """Claim up to ``limit`` due rows of enabled users (SKIP LOCKED) under a lease, fairly.

    Up to ``FAIR_USERS`` users with unfinished rows are served, in round-robin order
    from the one after ``after`` (the last user served by the previous claim), each up
    to a fair share of ``limit`` (water-filling: an equal share, and what users with
    fewer due rows leave goes to those with more): one user's backlog never holds back
    another's first rows, and a batch is never left half empty while rows are due.
    Users in ``first`` (the first ``FIRST_USERS`` of them) are served before the round
    robin, each with the same share: rows that just became claimable (a new user's
    first rows, a video's comments) need not wait for the round robin to come by. The
    result is in that order, each user's rows by seq; each carries the run of its user
    at the claim. A comment is only claimed once its video is ``sent``, so it
    is never delivered before its video.
    """
    return await db.transaction(_claim, limit, lease_s, after, first)
