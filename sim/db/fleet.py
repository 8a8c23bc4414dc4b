"""The fleet: sim instances on one database, and which of them owns each user's simulation.

Every instance registers a row in ``sim_instances`` and heartbeats. A demo user's
simulation has one owner at a time: ``demo_users.owner_id``, under the owner's lease,
``sim_instances.lease_until`` (River's and Oban's leader rows with a TTL; Graphile
Worker's ``locked_by``/``locked_at``; pgqueuer frees a dead worker's rows by heartbeat
age). One heartbeat is one transaction: renewing its own row renews the lease of every
user the instance owns, in one row (no user's row is locked by it, so no store waits
for it); it prunes instances silent for long, and moves the instance towards its fair
share of the enabled users: acquiring users whose owner's lease ran out (``FOR UPDATE
SKIP LOCKED``) or handing surplus over. Nothing relies on a unique key colliding.

Every write of a user's simulation is fenced with a ``Fence`` (the owner and the lease's
epoch, a fencing token): ``sim_owns(...)`` in SQL (migration 0005) refuses it once the
user was taken over, handed over, turned off or restarted.

Changes other instances should hear about at once are announced on ``USERS_CHANNEL``
(``pg_notify`` in the transaction making them); ``OUTBOX_CHANNEL`` says new rows are due.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sim.db.pool import Conn, Database

__all__ = [
    "DISABLED",
    "ENABLED",
    "OUTBOX_CHANNEL",
    "PRUNE_AFTER_LEASES",
    "SHARE_SLACK",
    "USERS_CHANNEL",
    "Beat",
    "Fence",
    "Instance",
    "Lease",
    "Member",
    "beat",
    "fence_params",
    "leave",
    "list_instances",
    "register",
]

#: demo mode on/off, settings changed, users handed over: owners re-check their users
USERS_CHANNEL = "sim_users"
#: ``USERS_CHANNEL`` payloads: a user turned on, a user turned off (then the user id), or
#: ``*`` for users handed over
ENABLED, DISABLED = "+", "-"
#: new rows stored (payload: the user id): senders claim
OUTBOX_CHANNEL = "sim_outbox"
#: an instance silent for this many leases is removed from the registry
PRUNE_AFTER_LEASES = 5
#: users an instance keeps above its fair share before handing any over (no flapping)
SHARE_SLACK = 1


@dataclass(frozen=True, slots=True)
class Lease:
    """Who writes for a user: the instance whose heartbeat holds the user's lease."""

    owner: uuid.UUID


@dataclass(frozen=True, slots=True)
class Member:
    """An instance as the registry knows it, and how long each heartbeat's lease holds."""

    id: uuid.UUID
    host: str
    pid: int
    version: str
    lease_s: float


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease a simulation runs under: its writes hold only while it is unchanged."""

    owner: uuid.UUID
    epoch: int


@dataclass(frozen=True, slots=True)
class Instance:
    id: uuid.UUID
    host: str
    pid: int
    version: str
    started_at: datetime
    last_heartbeat: datetime
    lease_until: datetime
    alive: bool
    users: int


@dataclass(frozen=True, slots=True)
class Beat:
    """What one heartbeat found: the users this instance owns now, and the fleet's size."""

    owned: frozenset[str]
    acquired: tuple[str, ...]
    released: tuple[str, ...]
    instances: int
    share: int


def fence_params(fence: Fence | None) -> dict[str, Any]:
    """The ``%(owner)s`` and ``%(epoch)s`` parameters of ``sim_owns`` (None: unfenced)."""
    return {"owner": fence and fence.owner, "epoch": fence and fence.epoch}


async def _register(conn: Conn, m: Member) -> None:
    await conn.execute(
        "insert into sim_instances (id, host, pid, version, lease_until)"
        " values (%(me)s, %(host)s, %(pid)s, %(version)s,"
        "         now() + make_interval(secs => %(lease_s)s))"
        " on conflict (id) do update"
        " set last_heartbeat = now(), lease_until = excluded.lease_until",
        {"me": m.id, "host": m.host, "pid": m.pid, "version": m.version, "lease_s": m.lease_s},
    )


async def register(db: Database, member: Member) -> None:
    """Add this instance to the registry, holding a lease for ``member.lease_s``."""
    await db.transaction(_register, member)


_ACQUIRE = """
with free as (
    select user_id from demo_users
     where enabled and (owner_id is null or not sim_lease_held(owner_id))
     order by enabled_at
     limit %(n)s
       for update skip locked
)
update demo_users d
   set owner_id = %(me)s, owner_epoch = d.owner_epoch + 1
  from free
 where d.user_id = free.user_id
returning d.user_id
"""


# Statements that update many users' rows lock them in user_id order first (as the
# storer's and the go-live sweep's do): two of them never wait on each other
_RELEASE = """
with surplus as (
    select user_id from demo_users where user_id = any(%s) and owner_id = %s
     order by user_id for update
)
update demo_users d set owner_id = null
  from surplus where d.user_id = surplus.user_id
returning d.user_id
"""
_LEAVE = """
with mine as (
    select user_id from demo_users where owner_id = %s order by user_id for update
)
update demo_users d set owner_id = null
  from mine where d.user_id = mine.user_id
"""


async def _beat(conn: Conn, m: Member) -> Beat:
    me = m.id
    args: dict[str, Any] = {"me": me, "lease_s": m.lease_s}
    # renews the lease of every user this instance owns; re-inserted if it was pruned (a
    # process paused for long comes back, to the users nobody took over meanwhile)
    await _register(conn, m)
    await conn.execute(
        "delete from sim_instances"
        " where last_heartbeat < now() - make_interval(secs => %(lease_s)s * %(leases)s)",
        {**args, "leases": PRUNE_AFTER_LEASES},
    )
    cur = await conn.execute(
        "select (select count(*) from sim_instances"
        "         where lease_until > now()) as live,"
        "       (select count(*) from demo_users where enabled) as enabled",
        args,
    )
    counts = await cur.fetchone()
    assert counts is not None
    cur = await conn.execute(
        "select user_id from demo_users where owner_id = %(me)s and enabled", args
    )
    owned = {r["user_id"] for r in await cur.fetchall()}
    instances = max(1, int(counts["live"]))
    share = math.ceil(int(counts["enabled"]) / instances)
    acquired: list[str] = []
    released: list[str] = []
    if len(owned) > share + SHARE_SLACK:
        # which ones is arbitrary but stable (by user id): the same ones on every beat
        cur = await conn.execute(_RELEASE, (sorted(owned)[share:], me))
        released = [r["user_id"] for r in await cur.fetchall()]
        owned.difference_update(released)
        await conn.execute("select pg_notify(%s, '*')", (USERS_CHANNEL,))
    elif len(owned) < share:
        cur = await conn.execute(_ACQUIRE, {**args, "n": share - len(owned)})
        acquired = [r["user_id"] for r in await cur.fetchall()]
        owned.update(acquired)
    return Beat(frozenset(owned), tuple(acquired), tuple(released), instances, share)


async def beat(db: Database, member: Member) -> Beat:
    """One heartbeat: stay registered (which renews every lease held), move towards a
    fair share."""
    return await db.transaction(_beat, member)


async def _leave(conn: Conn, me: uuid.UUID) -> int:
    cur = await conn.execute(_LEAVE, (me,))
    await conn.execute("delete from sim_instances where id = %s", (me,))
    await conn.execute("select pg_notify(%s, '*')", (USERS_CHANNEL,))
    return cur.rowcount


async def leave(db: Database, me: uuid.UUID) -> int:
    """Hand every user over at once and leave the registry (graceful stop)."""
    return await db.transaction(_leave, me)


async def _list(conn: Conn, limit: int) -> list[Instance]:
    cur = await conn.execute(
        """
        select i.id, i.host, i.pid, i.version, i.started_at, i.last_heartbeat, i.lease_until,
               i.lease_until > now() as alive,
               case when i.lease_until > now()
                    then (select count(*) from demo_users d where d.owner_id = i.id)
                    else 0 end as users
          from sim_instances i
         order by i.started_at, i.id
         limit %s
        """,
        (limit,),
    )
    return [Instance(**r) for r in await cur.fetchall()]


async def list_instances(db: Database, limit: int = 1000) -> list[Instance]:
    """The registered instances, oldest first; ``alive`` while their lease holds."""
    return await db.transaction(_list, limit)
