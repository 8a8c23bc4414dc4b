"""The storer groups simulations' batches into few fenced transactions; the row budget."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import trio
import trio.testing
from conftest import sql

from sim.db import Database, fleet, outbox, users
from sim.db.fleet import Fence
from sim.db.outbox import NewRow, StoreBatch
from sim.db.users import DemoConfig
from sim.errors import LeaseLost
from sim.pipeline.storer import RowBudget, Storer
from sim.settings import Settings


async def test_row_budget_is_fifo_and_gives_back_on_cancel() -> None:
    """A large request waits its turn ahead of later small ones; a cancelled wait leaves."""
    budget = RowBudget(10)
    assert await budget.acquire(8) == 8
    order: list[str] = []

    async def take(name: str, rows: int) -> None:
        await budget.acquire(rows)
        order.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take, "big", 6)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(take, "small", 1)  # fits now, but "big" came first
        await trio.testing.wait_all_tasks_blocked()
        assert order == []
        with trio.CancelScope() as scope:
            scope.cancel()
            await budget.acquire(5)  # cancelled while queued: nothing taken
        budget.release(8)
    assert sorted(order) == ["big", "small"]  # both granted, in turn (woken in any order)
    assert budget.available == 10 - 6 - 1
    budget.release(7)
    assert await budget.acquire(50) == 10  # clipped to the capacity


async def _user(db: Database, name: str, me: uuid.UUID) -> tuple[uuid.UUID, Fence]:
    await users.enable_user(db, name, DemoConfig(0, 0, 3, 0, 1), lease=fleet.Lease(me))
    row = await users.get_user(db, name)
    assert row is not None and row.owner_id == me
    return row.run_id, Fence(me, row.owner_epoch)


def _rows(n: int) -> list[NewRow]:
    now = datetime.now(UTC)
    return [NewRow(uuid.uuid4(), i, "dm", None, "{}", now) for i in range(n)]


async def test_batches_of_many_users_share_a_transaction(
    db: Database, db_url: str, settings: Settings, nursery: trio.Nursery
) -> None:
    """Twenty users storing at once take a few transactions; each user's counter is right."""
    me = uuid.uuid4()
    runs = {f"u{i:02d}": await _user(db, f"u{i:02d}", me) for i in range(20)}
    storer = await nursery.start(Storer(db, settings).run)
    async with trio.open_nursery() as stores:
        for name, (run_id, fence) in runs.items():
            stores.start_soon(storer.store, StoreBatch(name, run_id, _rows(3), False, fence))
    assert storer.groups < 20
    assert sql(db_url, "select count(*), count(distinct user_id) from interactions") == [(60, 20)]
    assert sql(db_url, "select distinct generated from demo_users") == [(3,)]


async def test_a_refused_user_loses_only_its_own_batch(
    db: Database, db_url: str, settings: Settings, nursery: trio.Nursery
) -> None:
    """A stale fence in a group: that user gets LeaseLost, the others are stored."""
    me = uuid.uuid4()
    good = await _user(db, "good", me)
    stale_run, fence = await _user(db, "stale", me)
    sql(db_url, "update demo_users set owner_epoch = owner_epoch + 1 where user_id = 'stale'")
    storer = await nursery.start(Storer(db, settings).run)
    results: dict[str, str] = {}

    async def store(name: str, run_id: uuid.UUID, f: Fence) -> None:
        try:
            await storer.store(StoreBatch(name, run_id, _rows(2), False, f))
            results[name] = "stored"
        except LeaseLost:
            results[name] = "refused"

    async with trio.open_nursery() as stores:
        stores.start_soon(store, "stale", stale_run, fence)
        stores.start_soon(store, "good", *good)
    assert results == {"good": "stored", "stale": "refused"}
    assert sql(db_url, "select user_id, count(*) from interactions group by 1") == [("good", 2)]


async def test_a_failing_group_is_retried_batch_by_batch(
    db: Database, db_url: str, settings: Settings, nursery: trio.Nursery
) -> None:
    """One batch that can never be stored (a duplicate key) fails alone, not its group."""
    me = uuid.uuid4()
    ok_run, ok_fence = await _user(db, "ok", me)
    dup_run, dup_fence = await _user(db, "dup", me)
    storer = await nursery.start(Storer(db, settings.replace(db_retry_attempts=1)).run)
    await storer.store(StoreBatch("dup", dup_run, _rows(1), False, dup_fence))
    outcome: dict[str, BaseException | None] = {}

    async def store(name: str, batch: StoreBatch) -> None:
        try:
            await storer.store(batch)
            outcome[name] = None
        except Exception as exc:
            outcome[name] = exc

    async with trio.open_nursery() as stores:  # seq 0 of "dup" again: a key violation
        stores.start_soon(store, "dup", StoreBatch("dup", dup_run, _rows(1), False, dup_fence))
        stores.start_soon(store, "ok", StoreBatch("ok", ok_run, _rows(2), False, ok_fence))
    assert outcome["ok"] is None
    assert outcome["dup"] is not None and not isinstance(outcome["dup"], LeaseLost)
    assert sql(db_url, "select user_id, count(*) from interactions group by 1 order by 1") == [
        ("dup", 1),
        ("ok", 2),
    ]


async def test_store_before_the_storer_runs_is_an_error(db: Database, settings: Settings) -> None:
    """Nothing is queued that no writer will take."""
    with pytest.raises(Exception, match="not running"):
        await Storer(db, settings).store(StoreBatch("x", uuid.uuid4(), [], False))


async def test_an_initial_batch_is_not_queued_behind_live_ones(
    db: Database,
    db_url: str,
    settings: Settings,
    nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While every writer of any batch is busy with live items, a new user's first rows
    are stored by the writer of initial batches."""
    me = uuid.uuid4()
    runs = {name: await _user(db, name, me) for name in ("live1", "live2", "new")}
    release = trio.Event()
    busy: list[str] = []
    real = outbox.store_batches

    async def slow_live(db: Database, batches: list[StoreBatch]) -> frozenset[str]:
        if any(b.live for b in batches):
            busy.extend(b.user_id for b in batches)
            await release.wait()
        return await real(db, batches)

    monkeypatch.setattr(outbox, "store_batches", slow_live)
    storer = await nursery.start(Storer(db, settings).run)
    async with trio.open_nursery() as live:
        for name in ("live1", "live2"):
            run, fence = runs[name]
            live.start_soon(storer.store, StoreBatch(name, run, _rows(1), True, fence))
            await trio.testing.wait_all_tasks_blocked()
        assert sorted(busy) == ["live1", "live2"]  # both writers of any batch are held
        run, fence = runs["new"]
        with trio.fail_after(10):
            await storer.store(StoreBatch("new", run, _rows(3), False, fence))
        assert sql(db_url, "select user_id, count(*) from interactions group by 1") == [("new", 3)]
        release.set()
