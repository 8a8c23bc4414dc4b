"""Two sim runtimes on one database: one owner per user, handover, cross-instance control."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio
from conftest import served, sql
from pipekit import sink_database

from sim.db.users import DemoConfig
from sim.runtime import Runtime
from sim.settings import Settings
from sim.sink import create_sink_app

CFG = DemoConfig(videos=1, comments=2, dms=2, live_per_minute=60, seed=7)


@asynccontextmanager
async def fleet(settings: Settings, n: int) -> AsyncIterator[list[Runtime]]:
    """``n`` runtimes on the test's database, delivering to one sink."""
    assert settings.database_url
    sink_cfg = settings.replace(database_url=sink_database(settings.database_url), pool_min_size=1)
    async with served(create_sink_app(sink_cfg, configure_logs=False)) as sink_url:
        cfg = settings.replace(main_app_url=f"{sink_url}/sink/interactions", pool_min_size=1)
        async with trio.open_nursery() as nursery:
            runtimes = [Runtime(cfg) for _ in range(n)]
            for rt in runtimes:
                await nursery.start(rt.run)
            try:
                yield runtimes
            finally:
                for rt in runtimes:
                    await rt.shutdown(10)


async def until(done: Callable[[], bool], timeout_s: float = 15) -> None:
    """Wait (bounded) until ``done()``, checking often."""
    with trio.fail_after(timeout_s):
        while True:
            if done():
                return
            await trio.sleep(0.02)


def _split(runtimes: list[Runtime], names: list[str]) -> bool:
    """Every user runs on exactly one of ``runtimes`` and each runs some."""
    running = [set(rt.pipeline().running()) for rt in runtimes]
    union = set().union(*running)
    return union == set(names) and sum(map(len, running)) == len(names) and all(running)


async def test_each_user_runs_on_exactly_one_instance(settings: Settings) -> None:
    """Users enabled through one instance spread over both, never running twice."""
    quick = settings.replace(heartbeat_s=0.3, owner_lease_s=2.0)
    names = [f"user{i}" for i in range(6)]
    async with fleet(quick, 2) as (a, b):
        for name in names:
            await a.pipeline().enable(name, CFG)
        await until(lambda: _split([a, b], names))
        owners = dict(sql(quick.database_url or "", "select user_id, owner_id from demo_users"))
        for rt in (a, b):
            assert {owners[u] for u in rt.pipeline().running()} == {rt.instance_id}


async def test_a_stopped_instance_hands_its_users_over_at_once(settings: Settings) -> None:
    """A graceful stop frees the users; the other instance runs them well before the lease."""
    slow = settings.replace(heartbeat_s=10, owner_lease_s=60)  # only a notification is quick
    names = [f"user{i}" for i in range(4)]
    async with fleet(slow, 2) as (a, b):
        for name in names:
            await a.pipeline().enable(name, CFG)
        assert a.pipeline().running() == names
        await a.shutdown(10)
        await until(lambda: b.pipeline().running() == names, timeout_s=8)


async def test_disable_through_another_instance_stops_the_owner(settings: Settings) -> None:
    """Demo mode turned off through A stops the user on B, its owner, by notification."""
    slow = settings.replace(heartbeat_s=10, owner_lease_s=60)
    async with fleet(slow, 2) as (a, b):
        row, started = await b.pipeline().enable("bob", CFG)
        assert started and row.owner_id == b.instance_id
        assert b.pipeline().running() == ["bob"]
        off, _ = await a.pipeline().disable("bob", purge=False)
        assert off is not None and not off.enabled
        await until(lambda: b.pipeline().running() == [], timeout_s=8)
        assert a.pipeline().running() == []
        row, started = await a.pipeline().enable("bob", CFG)  # on again, through A
        assert started and row.owner_id == a.instance_id
        assert a.pipeline().running() == ["bob"] and b.pipeline().running() == []


async def test_a_simulation_whose_lease_was_taken_stops_without_restarting(
    settings: Settings,
) -> None:
    """Its next store is refused: the simulation ends at once, nothing restarts it."""
    slow = settings.replace(heartbeat_s=10, owner_lease_s=60)
    busy = DemoConfig(videos=1, comments=0, dms=0, live_per_minute=600, seed=7)
    async with fleet(slow, 1) as (a,):
        await a.pipeline().enable("eve", busy)
        url = slow.database_url or ""
        await until(lambda: sql(url, "select live_at is not null from demo_users") == [(True,)])
        thief = "00000000-0000-4000-8000-000000000001"
        sql(url, "update demo_users set owner_id = %s, owner_epoch = owner_epoch + 1", (thief,))
        await until(lambda: a.pipeline().running() == [])
        stored = sql(url, "select live_generated from demo_users")
        assert a.metrics.user_restarts._value.get() == 0
        assert a.failure is None and sql(url, "select last_error from demo_users") == [(None,)]
        await until(lambda: a.pipeline().beats >= 1)
        assert sql(url, "select live_generated from demo_users") == stored  # nothing more
