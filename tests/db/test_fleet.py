"""The fleet's registry and user leases, on real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
import trio
from conftest import sql

from sim.db import Database, fleet, outbox, users
from sim.db.fleet import Fence, Lease, Member
from sim.db.outbox import NewRow
from sim.db.users import DemoConfig
from sim.errors import LeaseLost

LEASE_S = 30.0


async def _beat(db: Database, me: uuid.UUID) -> fleet.Beat:
    return await fleet.beat(db, Member(me, "host", 1, "test", LEASE_S))


async def _enable(db: Database, n: int) -> list[str]:
    names = [f"u{i:02d}" for i in range(n)]
    for name in names:
        await users.enable_user(db, name, DemoConfig(0, 0, 1, 0, 1))
    return names


def _owners(url: str) -> dict[str, str | None]:
    rows = sql(url, "select user_id, owner_id::text from demo_users where enabled")
    return {u: o for u, o in rows}


def _die(url: str, me: uuid.UUID) -> None:
    """``me`` stops heartbeating: its heartbeat is old, its lease (its users') ran out."""
    sql(
        url,
        "update sim_instances set last_heartbeat = now() - interval '1 hour',"
        " lease_until = now() - interval '1 s' where id = %s",
        (me,),
    )


async def test_register_and_list(db: Database) -> None:
    """A registered instance is listed, alive, with the users it owns."""
    me = uuid.uuid4()
    await fleet.register(db, Member(me, "h1", 42, "0.1.0", LEASE_S))
    [found] = await fleet.list_instances(db)
    assert (found.id, found.host, found.pid, found.alive, found.users) == (me, "h1", 42, True, 0)
    assert found.started_at.tzinfo is not None


async def test_users_spread_evenly_and_each_has_one_owner(db: Database, db_url: str) -> None:
    """Two instances split the enabled users; a newcomer gets its share without flapping."""
    names = await _enable(db, 6)
    a, b = uuid.uuid4(), uuid.uuid4()
    first = await _beat(db, a)
    assert first.owned == frozenset(names) and first.instances == 1
    await fleet.register(db, Member(b, "host", 2, "test", LEASE_S))
    assert (await _beat(db, b)).owned == frozenset()  # nothing free yet: no collisions
    handed = await _beat(db, a)  # share is now 3: a hands over 3
    assert len(handed.owned) == 3 and len(handed.released) == 3
    taken = await _beat(db, b)
    assert taken.owned == frozenset(handed.released)
    owners = _owners(db_url)
    assert sorted(owners) == names and set(owners.values()) == {str(a), str(b)}
    for _ in range(3):  # stable: nobody gives anything away any more
        assert (await _beat(db, a)).owned == handed.owned
        assert (await _beat(db, b)).owned == taken.owned


async def test_a_dead_owner_is_taken_over_and_pruned(db: Database, db_url: str) -> None:
    """Leases of an instance that stopped heartbeating are acquired by the living."""
    names = await _enable(db, 4)
    a, b = uuid.uuid4(), uuid.uuid4()
    await _beat(db, a)
    await fleet.register(db, Member(b, "host", 2, "test", LEASE_S))
    _die(db_url, a)
    beat = await _beat(db, b)
    assert beat.owned == frozenset(names) and beat.instances == 1
    assert [i.id for i in await fleet.list_instances(db)] == [b]  # a was pruned
    epochs = sql(db_url, "select distinct owner_epoch from demo_users")
    assert epochs == [(2,)]  # one takeover each


async def test_a_stale_owner_cannot_store(db: Database, db_url: str) -> None:
    """After a takeover the old owner's store is refused and nothing of it is kept."""
    [name] = await _enable(db, 1)
    a, b = uuid.uuid4(), uuid.uuid4()
    await _beat(db, a)
    row = await users.get_user(db, name)
    assert row is not None and row.owner_id == a
    fence_a = Fence(a, row.owner_epoch)
    now = datetime.now(UTC)
    await outbox.store_rows(
        db,
        name,
        row.run_id,
        [NewRow(uuid.uuid4(), 0, "dm", None, "{}", now)],
        live=False,
        fence=fence_a,
    )
    _die(db_url, a)
    await _beat(db, b)
    stale = [NewRow(uuid.uuid4(), 1, "dm", None, "{}", now)]
    with pytest.raises(LeaseLost):
        await outbox.store_rows(db, name, row.run_id, stale, live=False, fence=fence_a)
    with pytest.raises(LeaseLost):
        await users.mark_live(db, name, row.run_id, fence=fence_a)
    taken = await users.get_user(db, name)
    assert taken is not None and taken.owner_id == b
    await outbox.store_rows(
        db, name, row.run_id, stale, live=False, fence=Fence(b, taken.owner_epoch)
    )
    assert sql(db_url, "select seq from interactions order by seq") == [(0,), (1,)]
    assert sql(db_url, "select generated from demo_users") == [(2,)]


async def test_leave_hands_everything_over(db: Database, db_url: str) -> None:
    """A leaving instance frees its users at once and leaves the registry."""
    names = await _enable(db, 3)
    a, b = uuid.uuid4(), uuid.uuid4()
    await _beat(db, a)
    await fleet.register(db, Member(b, "host", 2, "test", LEASE_S))
    assert await fleet.leave(db, a) == 3
    assert set(_owners(db_url).values()) == {None}
    assert (await _beat(db, b)).owned == frozenset(names)
    assert [i.id for i in await fleet.list_instances(db)] == [b]


async def test_enable_takes_a_free_user_and_disable_frees_it(db: Database, db_url: str) -> None:
    """Enabling with a lease owns the user unless another holds it; disabling frees it."""
    a, b = uuid.uuid4(), uuid.uuid4()
    for me in (a, b):
        await fleet.register(db, Member(me, "host", 1, "test", LEASE_S))
    cfg = DemoConfig(0, 0, 1, 0, 1)
    row, started = await users.enable_user(db, "x", cfg, lease=Lease(a))
    assert started and row.owner_id == a
    row, started = await users.enable_user(db, "x", cfg, lease=Lease(b))
    assert not started and row.owner_id == a  # a live lease is not taken
    off = await users.disable_user(db, "x")
    assert off is not None and off.owner_id is None
    assert (await _beat(db, a)).owned == frozenset()  # a disabled user is nobody's


async def test_a_lease_given_up_and_taken_again_is_a_new_lease(db: Database) -> None:
    """Handed over and re-acquired by the same instance: the old token is refused."""
    [name] = await _enable(db, 1)
    a = uuid.uuid4()
    await _beat(db, a)
    before = await users.get_user(db, name)
    assert before is not None
    await fleet.leave(db, a)
    await _beat(db, a)
    after = await users.get_user(db, name)
    assert after is not None and after.owner_id == a and after.owner_epoch > before.owner_epoch
    rows = [NewRow(uuid.uuid4(), 0, "dm", None, "{}", datetime.now(UTC))]
    with pytest.raises(LeaseLost):
        await outbox.store_rows(
            db, name, before.run_id, rows, live=False, fence=Fence(a, before.owner_epoch)
        )


async def test_enable_rules_in_one_statement(db: Database, db_url: str) -> None:
    """A fresh run, an enable of a user already on (nothing changes, no notification),
    a run resumed after rows were generated, and a fresh run when none were; the lease
    is taken unless a live owner holds it, its epoch bumped only for a new owner."""
    a, b = uuid.uuid4(), uuid.uuid4()
    for me in (a, b):
        await fleet.register(db, Member(me, "host", 1, "test", LEASE_S))
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen sim_users")

        def heard() -> list[str]:
            return [n.payload for n in listener.notifies(timeout=0.5, stop_after=10)]

        first, started = await users.enable_user(
            db, "r", DemoConfig(1, 2, 3, 6.0, 42, "tech"), lease=Lease(a)
        )
        assert started and first.state == "initializing" and first.enabled
        assert (first.seed, first.videos, first.comments, first.dms) == (42, 1, 2, 3)
        assert (first.initial_total, first.niche, first.live_per_minute) == (6, "tech", 6.0)
        assert first.owner_id == a and first.owner_epoch == 1
        assert heard() == ["+r"]

        again, started = await users.enable_user(
            db, "r", DemoConfig(9, 9, 9, 1.0, 7), lease=Lease(a)
        )
        assert not started and again.run_id == first.run_id and again.seed == 42
        assert again.owner_id == a and again.owner_epoch == 1  # renewed, the same lease
        assert heard() == []

        # off after rows were generated: the run resumes (same content, the new rate)
        await users.disable_user(db, "r")
        sql(db_url, "update demo_users set generated = 6, live_at = now() where user_id = 'r'")
        heard()
        resumed, started = await users.enable_user(
            db, "r", DemoConfig(9, 9, 9, 1.0, 7), lease=Lease(b)
        )
        assert started and resumed.run_id == first.run_id and resumed.seed == 42
        assert resumed.state == "live" and resumed.live_per_minute == 1.0
        assert resumed.owner_id == b and resumed.owner_epoch == 2
        assert resumed.disabled_at is None and resumed.last_error is None
        assert heard() == ["+r"]

        # another instance's enable while b's lease is live: b keeps the user
        kept, started = await users.enable_user(db, "r", DemoConfig(0, 0, 1, 0, 1), lease=Lease(a))
        assert not started and kept.owner_id == b and kept.owner_epoch == 2

        # once b's lease ran out (it stopped heartbeating), an enable through a takes it
        _die(db_url, b)
        taken, started = await users.enable_user(db, "r", DemoConfig(0, 0, 1, 0, 1), lease=Lease(a))
        assert not started and taken.owner_id == a and taken.owner_epoch == 3

        # off with nothing generated: a fresh run of the new settings
        await users.disable_user(db, "r")
        sql(db_url, "update demo_users set generated = 0 where user_id = 'r'")
        fresh, started = await users.enable_user(db, "r", DemoConfig(0, 0, 4, 0, 5))
        assert started and fresh.run_id != first.run_id and fresh.seed == 5
        assert (fresh.state, fresh.initial_total, fresh.live_at) == ("initializing", 4, None)
        assert fresh.owner_id is None  # no lease given: nobody owns it yet


async def test_a_beat_renews_every_lease_without_locking_a_user(db: Database, db_url: str) -> None:
    """The heartbeat renews its users' leases in its own row: a store holding a user's
    row does not hold the beat up, and the beat holds up no store."""
    names = await _enable(db, 3)
    me = uuid.uuid4()
    await _beat(db, me)
    [before] = sql(db_url, "select lease_until from sim_instances")
    with psycopg.connect(db_url) as store:
        # a store of one user holds its row (a transaction left open)
        store.execute("select from demo_users where user_id = %s for update", (names[0],))
        with trio.fail_after(10):  # it would wait out the session's lock_timeout
            beat = await _beat(db, me)
        store.rollback()
    assert beat.owned == frozenset(names)
    [after] = sql(db_url, "select lease_until from sim_instances")
    assert after > before  # every lease renewed, by the instance's one row
    assert sql(db_url, "select count(*) from demo_users where sim_lease_held(owner_id)") == [(3,)]
