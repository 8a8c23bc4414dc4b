"""Demo users: turning demo mode on and off, status, pages of interactions, purge."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sim.db.fleet import DISABLED, ENABLED, USERS_CHANNEL, Fence, Lease, fence_params
from sim.db.pool import Conn, Database
from sim.errors import LeaseLost

__all__ = [
    "STATUSES",
    "DemoConfig",
    "UserRow",
    "count_by_state",
    "disable_user",
    "enable_user",
    "enabled_users",
    "get_status",
    "get_user",
    "get_users",
    "list_statuses",
    "mark_live",
    "page_interactions",
    "purge_batch",
    "set_error",
    "status_totals",
]

STATUSES = ("pending", "sending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class DemoConfig:
    videos: int
    comments: int
    dms: int
    live_per_minute: float
    seed: int
    niche: str | None = None  # None: derived from the seed


@dataclass(frozen=True, slots=True)
class UserRow:
    user_id: str
    state: str
    enabled: bool
    run_id: uuid.UUID
    seed: int
    videos: int
    comments: int
    dms: int
    live_per_minute: float
    initial_total: int
    generated: int
    live_generated: int
    enabled_at: datetime
    live_at: datetime | None
    disabled_at: datetime | None
    last_error: str | None
    restarts: int
    owner_id: uuid.UUID | None = None  # the instance running the simulation (its lease holder)
    owner_epoch: int = 0
    updated_at: datetime | None = None  # the last change: for a live user, its last item
    niche: str | None = None  # what the account's content is about (None: from the seed)

    @property
    def config(self) -> DemoConfig:
        return DemoConfig(
            self.videos, self.comments, self.dms, self.live_per_minute, self.seed, self.niche
        )


_COLUMNS = ", ".join(UserRow.__dataclass_fields__)


def _user(row: dict[str, Any] | None) -> UserRow | None:
    return None if row is None else UserRow(**{k: row[k] for k in UserRow.__dataclass_fields__})


async def _get(conn: Conn, user_id: str, lock: bool = False) -> UserRow | None:
    cur = await conn.execute(
        f"select {_COLUMNS} from demo_users where user_id = %s" + (" for update" if lock else ""),
        (user_id,),
    )
    return _user(await cur.fetchone())


async def get_user(db: Database, user_id: str) -> UserRow | None:
    return await db.transaction(_get, user_id)


async def _get_many(conn: Conn, user_ids: list[str]) -> dict[str, UserRow]:
    cur = await conn.execute(
        f"select {_COLUMNS} from demo_users where user_id = any(%s)", (user_ids,)
    )
    return {r["user_id"]: UserRow(**r) for r in await cur.fetchall()}


async def get_users(db: Database, user_ids: list[str]) -> dict[str, UserRow]:
    """The rows of ``user_ids`` that exist, by user id (one query)."""
    return await db.transaction(_get_many, user_ids) if user_ids else {}


# one statement (migrations 0008, 0009): lock, insert or resume, take the lease, notify
_ENABLE = """
select e.started, (e.u).*
  from sim_enable(%(user_id)s::text, %(run_id)s::uuid, %(seed)s::bigint, %(videos)s::integer,
                  %(comments)s::integer, %(dms)s::integer, %(live_per_minute)s::float8,
                  %(niche)s::text, %(owner)s::uuid, %(channel)s::text, %(payload)s::text) e
"""


async def _enable(
    conn: Conn, user_id: str, cfg: DemoConfig, lease: Lease | None
) -> tuple[UserRow, bool]:
    cur = await conn.execute(
        _ENABLE,
        {
            "user_id": user_id,
            "run_id": uuid.uuid4(),  # a fresh run's (ids derive from it); unused otherwise
            "seed": cfg.seed,
            "videos": cfg.videos,
            "comments": cfg.comments,
            "dms": cfg.dms,
            "live_per_minute": cfg.live_per_minute,
            "niche": cfg.niche,
            "owner": lease and lease.owner,
            "channel": USERS_CHANNEL,
            "payload": ENABLED + user_id,
        },
    )
    found = await cur.fetchone()
    row = _user(found)
    assert found is not None and row is not None
    return row, bool(found["started"])


async def enable_user(
    db: Database, user_id: str, cfg: DemoConfig, *, lease: Lease | None = None
) -> tuple[UserRow, bool]:
    """Turn demo mode on; ``(row, started)``: started is False when it was already on.

    With ``lease`` the caller's instance becomes the owner when nobody holds a live lease
    on the user (``row.owner_id`` says who owns it); other instances are notified.
    """
    return await db.statement(_enable, user_id, cfg, lease)


async def _disable(conn: Conn, user_id: str) -> UserRow | None:
    cur = await conn.execute(
        f"""
        update demo_users set enabled = false, state = 'disabled',
               disabled_at = coalesce(disabled_at, now()), updated_at = now(),
               owner_id = null
         where user_id = %s returning {_COLUMNS}
        """,
        (user_id,),
    )
    row = _user(await cur.fetchone())
    if row is not None:  # its owner, wherever it runs, stops the simulation
        await conn.execute("select pg_notify(%s, %s)", (USERS_CHANNEL, DISABLED + user_id))
    return row


async def disable_user(db: Database, user_id: str) -> UserRow | None:
    """Turn demo mode off (idempotent); None when the user never had it."""
    return await db.transaction(_disable, user_id)


async def _purge_batch(conn: Conn, user_id: str, limit: int) -> int:
    cur = await conn.execute(
        "delete from interactions where user_id = %s and seq in"
        " (select seq from interactions where user_id = %s order by seq limit %s)",
        (user_id, user_id, limit),
    )
    deleted = cur.rowcount
    if deleted < limit:
        await conn.execute(
            "update demo_users set generated = 0, live_generated = 0, live_at = null,"
            " updated_at = now() where user_id = %s and not enabled",
            (user_id,),
        )
    return deleted


async def purge_batch(db: Database, user_id: str, limit: int) -> int:
    """Delete up to ``limit`` of the user's rows in one short transaction."""
    return await db.transaction(_purge_batch, user_id, limit)


async def _status(conn: Conn, user_id: str) -> tuple[UserRow, dict[str, int]] | None:
    user = await _get(conn, user_id)
    if user is None:
        return None
    cur = await conn.execute(
        "select status, count(*) as n from interactions where user_id = %s group by status",
        (user_id,),
    )
    counts = dict.fromkeys(STATUSES, 0)
    for r in await cur.fetchall():
        counts[r["status"]] = r["n"]
    return user, counts


async def get_status(db: Database, user_id: str) -> tuple[UserRow, dict[str, int]] | None:
    """The user's row and their interactions counted by status."""
    return await db.transaction(_status, user_id)


async def _mark_live(conn: Conn, user_id: str, run_id: uuid.UUID, fence: Fence | None) -> None:
    cur = await conn.execute(
        "update demo_users set state = 'live', live_at = coalesce(live_at, now()),"
        " updated_at = now()"
        " where user_id = %(user_id)s and run_id = %(run_id)s and enabled"
        " and sim_owns(owner_id, owner_epoch, %(owner)s, %(epoch)s)",
        {"user_id": user_id, "run_id": run_id, **fence_params(fence)},
    )
    if cur.rowcount == 0:
        raise LeaseLost(f"demo run of user {user_id!r} is no longer this instance's")


async def mark_live(
    db: Database, user_id: str, run_id: uuid.UUID, *, fence: Fence | None = None
) -> None:
    """The initial burst is done: the user is live (fenced by the simulation's lease)."""
    await db.transaction(_mark_live, user_id, run_id, fence)


async def _set_error(conn: Conn, user_id: str, error: str | None, failed: bool) -> None:
    await conn.execute(
        "update demo_users set last_error = %s, restarts = restarts + %s,"
        " state = case when %s and enabled then 'failed' else state end, updated_at = now()"
        " where user_id = %s",
        (error, 1 if error else 0, failed, user_id),
    )


async def set_error(db: Database, user_id: str, error: str | None, *, failed: bool = False) -> None:
    """Keep the last error of a user's simulation (and count a restart)."""
    await db.transaction(_set_error, user_id, error, failed)


async def _enabled(conn: Conn) -> list[str]:
    cur = await conn.execute("select user_id from demo_users where enabled order by enabled_at")
    return [r["user_id"] for r in await cur.fetchall()]


async def enabled_users(db: Database) -> list[str]:
    """Users whose demo mode is on (to resume at start-up)."""
    return await db.transaction(_enabled)


async def _page(
    conn: Conn, user_id: str, status: str | None, kind: str | None, limit: int, after: int
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """
        select id::text as id, seq, kind, status, attempts, created_at, sent_at, last_error, payload
          from interactions
         where user_id = %s and seq > %s
           and (%s::text is null or status = %s) and (%s::text is null or kind = %s)
         order by seq limit %s
        """,
        (user_id, after, status, status, kind, kind, limit),
    )
    return list(await cur.fetchall())


async def page_interactions(
    db: Database, user_id: str, *, status: str | None, kind: str | None, limit: int, after: int
) -> list[dict[str, Any]]:
    """One keyset page of the user's interactions, in generation order."""
    return await db.transaction(_page, user_id, status, kind, limit, after)


async def _totals(conn: Conn) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "select kind, status, count(*) as n from interactions group by kind, status"
    )
    users = await conn.execute("select state, count(*) as n from demo_users group by state")
    return [
        *(await cur.fetchall()),
        *({"state": r["state"], "n": r["n"]} for r in await users.fetchall()),
    ]


async def status_totals(db: Database) -> list[dict[str, Any]]:
    """Interactions by kind and status, and users by state (for metrics)."""
    return await db.transaction(_totals)


async def _list_statuses(
    conn: Conn, limit: int, offset: int
) -> list[tuple[UserRow, dict[str, int], int]]:
    cur = await conn.execute(
        f"""
        select u.*, c.pending, c.sending, c.sent, c.failed, c.initial_done
          from (select {_COLUMNS} from demo_users
                 order by enabled desc, enabled_at desc, user_id limit %s offset %s) u
          cross join lateral (
                select count(*) filter (where status = 'pending') as pending,
                       count(*) filter (where status = 'sending') as sending,
                       count(*) filter (where status = 'sent') as sent,
                       count(*) filter (where status = 'failed') as failed,
                       count(*) filter (where seq < u.initial_total
                                          and status in ('sent', 'failed')) as initial_done
                  from interactions i where i.user_id = u.user_id) c
         order by u.enabled desc, u.enabled_at desc, u.user_id
        """,
        (limit, offset),
    )
    out = []
    for r in await cur.fetchall():
        user = _user(r)
        assert user is not None
        out.append((user, {s: int(r[s]) for s in STATUSES}, int(r["initial_done"])))
    return out


async def list_statuses(
    db: Database, limit: int, offset: int = 0
) -> list[tuple[UserRow, dict[str, int], int]]:
    """A page of users (enabled first, newest first; ``limit`` after skipping ``offset``):
    row, counts by status, and how many of the initial burst are done (sent or failed)."""
    return await db.transaction(_list_statuses, limit, offset)


async def _states(conn: Conn) -> dict[str, int]:
    cur = await conn.execute("select state, count(*) as n from demo_users group by state")
    return {r["state"]: int(r["n"]) for r in await cur.fetchall()}


async def count_by_state(db: Database) -> dict[str, int]:
    """How many users are in each state (one index-free scan of ``demo_users``)."""
    return await db.transaction(_states)
