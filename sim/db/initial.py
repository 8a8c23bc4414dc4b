"""The end of an initial burst: users whose every initial row is delivered go live.

One statement checks any number of waiting users at once (an instance's sweep), so
what waiting costs PostgreSQL does not grow with the number of users waiting: a user is
done when all its initial rows are generated and none is ``pending`` or ``sending``.
Fenced like every write of a simulation: only the run's owner marks it live.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sim.db.fleet import Fence, fence_params
from sim.db.pool import Conn, Database

__all__ = ["Finished", "Waiting", "finish_initial"]


@dataclass(frozen=True, slots=True)
class Waiting:
    """A simulation waiting for its initial burst to be delivered."""

    user_id: str
    run_id: uuid.UUID
    fence: Fence | None


@dataclass(frozen=True, slots=True)
class Finished:
    """A user marked live now, with how its initial burst ended."""

    user_id: str
    sent: int
    failed: int


_FINISH = """
with w as (
    select * from unnest(%s::text[], %s::uuid[], %s::uuid[], %s::int8[])
         as w(user_id, run_id, owner, epoch)
),
locked as (  -- in user_id order, as every statement that updates many users (no deadlock)
    select d.user_id from demo_users d where d.user_id in (select user_id from w)
     order by d.user_id for update
),
done as (
    update demo_users d
       set state = 'live', live_at = coalesce(d.live_at, now()), updated_at = now()
      from w, locked
     where d.user_id = w.user_id and locked.user_id = w.user_id and d.run_id = w.run_id
       and d.enabled
       and sim_owns(d.owner_id, d.owner_epoch, w.owner, w.epoch)
       and d.generated >= d.initial_total
       and not exists (select from interactions i
                        where i.user_id = d.user_id and i.seq < d.initial_total
                          and i.status in ('pending', 'sending'))
    returning d.user_id, d.initial_total
)
select done.user_id,
       count(*) filter (where i.status = 'sent') as sent,
       count(*) filter (where i.status = 'failed') as failed
  from done left join interactions i on i.user_id = done.user_id and i.seq < done.initial_total
 group by done.user_id
"""


async def _finish(conn: Conn, waiting: Sequence[Waiting]) -> list[Finished]:
    fences = [fence_params(w.fence) for w in waiting]
    cur = await conn.execute(
        _FINISH,
        (
            [w.user_id for w in waiting],
            [w.run_id for w in waiting],
            [f["owner"] for f in fences],
            [f["epoch"] for f in fences],
        ),
    )
    return [Finished(r["user_id"], r["sent"], r["failed"]) for r in await cur.fetchall()]


async def finish_initial(db: Database, waiting: Sequence[Waiting]) -> list[Finished]:
    """Mark live those of ``waiting`` whose initial burst is delivered (one statement)."""
    return await db.transaction(_finish, waiting) if waiting else []
