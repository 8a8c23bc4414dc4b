"""Fault scenarios on sim's database: connection kill storm, PostgreSQL restart, pool exhaustion."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from faults.faultkit import Stack
from faults.faultpg import Cluster, Storm
from faults.faultplugin import Row, check_totals, client, record
from faults.faultplugin import cluster_fixture as cluster_fixture
from faults.faultplugin import stack_fixture as stack_fixture
from faults.faultproc import wait_until

pytestmark = pytest.mark.faults

BURST = {"videos": 8, "comments": 500, "dms": 500}
STORM_USERS = 4
STORM_S = 6.0
DOWN_S = 3.0
READYZ_TIMEOUT_S = 1.0  # SIM_READYZ_TIMEOUT_S of faultkit.SIM_ENV


async def _sent(stack: Stack) -> int:
    return (await stack.settled()).get("sent", 0)


async def test_connection_kill_storm(stack: Stack, cluster: Cluster) -> None:
    """Every sim connection killed every 100 ms mid-burst: all sent, each id once, ready again."""
    started = trio.current_time()
    # a slow receiver and small batches keep the bursts in flight while the storm rages
    await stack.start(sim_env={"SIM_SEND_BATCH_SIZE": "20"}, sink_env={"SIM_SINK_LATENCY_S": "0.2"})
    async with client() as c:
        for i in range(STORM_USERS):
            await stack.enable(c, f"storm{i}", **BURST)
        total = STORM_USERS * sum(BURST.values())
        storm = Storm(cluster, stack.sim_db, interval_s=0.1)
        stop = trio.Event()
        sent_at_start = await _sent(stack)
        probes: list[int] = []

        async def probe() -> None:
            while not stop.is_set():
                probes.append(await stack.readyz(c))
                await trio.sleep(0.25)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(storm.run, stop)
            nursery.start_soon(probe)
            await trio.sleep(STORM_S)
            stop.set()
        storm_end = trio.current_time()
        sent_at_end = await _sent(stack)
        # the storm began while the bursts were being delivered (not after)
        assert sent_at_start < total // 2, sent_at_start
        assert storm.killed >= STORM_S / 0.1 / 2, storm.killed
        ready = await wait_until(
            lambda: _ready(stack, c), 10, what="readyz after the storm", interval_s=0.1
        )
        await stack.wait_done(90)
        recovery = trio.current_time() - storm_end
        stats = await stack.sink_stats(c)
    totals = check_totals(stack)
    assert stats["orphan_comments"] == 0, stats
    assert stats["rejected"] == 0, stats
    assert stack.unsigned() == 0
    record(
        Row(
            1,
            "Connection kill storm",
            f"`pg_terminate_backend` of every sim connection every 100 ms for {STORM_S:g} s,"
            f" during {STORM_USERS} users' initial bursts",
            f"{storm.killed} connections killed in {storm.rounds} rounds;"
            f" {sent_at_end - sent_at_start} sent during the storm;"
            f" `/readyz` 200 in {probes.count(200)} of {len(probes)} probes during it",
            totals,
            "none needed: all sent during the storm"
            if sent_at_end == total
            else f"ready {ready:.1f} s and all sent {recovery:.1f} s after the storm",
            trio.current_time() - started,
        )
    )


async def _ready(stack: Stack, c: httpx.AsyncClient) -> bool:
    try:
        return await stack.readyz(c) == 200
    except httpx.TransportError:
        return False


async def test_postgres_restart(stack: Stack, cluster: Cluster) -> None:
    """PostgreSQL down mid-run: /readyz answers 503 quickly, sim recovers by itself, no loss."""
    started = trio.current_time()
    await stack.start(sink_env={"SIM_SINK_LATENCY_S": "0.05"})
    assert stack.sim is not None
    worker = stack.sim.worker()
    assert worker is not None
    total = 2 * sum(BURST.values())
    async with client() as c:
        for i in range(2):
            await stack.enable(c, f"restart{i}", **BURST)
        await wait_until(lambda: _at_least(stack, total // 5), 30, what="a fifth sent")
        await trio.to_thread.run_sync(cluster.stop)
        probes: list[tuple[int, float]] = []
        down_until = trio.current_time() + DOWN_S
        while trio.current_time() < down_until:
            t0 = trio.current_time()
            status = await stack.readyz(c)
            probes.append((status, trio.current_time() - t0))
            await trio.sleep(0.1)
        await trio.to_thread.run_sync(cluster.start)
        recovery = await wait_until(
            lambda: _ready(stack, c), 30, what="readyz after the restart", interval_s=0.1
        )
        await stack.wait_done(90)
        stats = await stack.sink_stats(c)
        # once more with sim idle (demo mode off, nothing polls the database): every pooled
        # connection is dead when PostgreSQL is back, and the first request still answers
        for i in range(2):
            r = await c.delete(f"{stack.sim.url}/v1/users/restart{i}/demo")
            assert r.status_code == 200, r.text
        await trio.to_thread.run_sync(cluster.stop)
        await trio.sleep(0.5)
        await trio.to_thread.run_sync(cluster.start)
        t0 = trio.current_time()
        r = await c.get(f"{stack.sim.url}/v1/users/restart0/demo")
        idle_answer = trio.current_time() - t0
        assert r.status_code == 200, r.text
    assert probes and all(status == 503 for status, _ in probes), probes
    slowest = max(seconds for _, seconds in probes)
    assert slowest < READYZ_TIMEOUT_S + 1.5, probes
    # recovered without a restart of its own: the same worker process throughout
    assert stack.sim.alive() and stack.sim.worker() == worker
    assert recovery < 15, recovery
    assert idle_answer < 2, idle_answer
    totals = check_totals(stack)
    assert stats["orphan_comments"] == 0, stats
    record(
        Row(
            2,
            "PostgreSQL restart mid-run",
            f"PostgreSQL stopped (fast shutdown) for {DOWN_S:g} s after a fifth was sent,"
            " then started again; once more with sim idle",
            f"2 restarts; {len(probes)} `/readyz` probes while down, all 503,"
            f" slowest {slowest:.2f} s",
            totals,
            f"ready {recovery:.1f} s after PostgreSQL was back, without a restart; idle:"
            f" first request answered in {idle_answer:.2f} s",
            trio.current_time() - started,
        )
    )


async def _at_least(stack: Stack, n: int) -> bool:
    return await _sent(stack) >= n


POOL_ENV = {
    "SIM_POOL_MIN_SIZE": "2",
    "SIM_POOL_MAX_SIZE": "3",
    "SIM_POOL_TIMEOUT_S": "2",
    "SIM_POOL_MAX_WAITING": "50",
}
POOL_TIMEOUT_S = 2.0
API_REQUESTS = 200
KINDS = ("status", "page", "ready", "enable")
SLACK_S = 1.5  # 200 requests at once on 2 CPUs: time spent outside the pool's wait


async def test_pool_exhaustion(stack: Stack) -> None:
    """200 concurrent API requests on a 3-connection pool during a burst: 503s, no 500, no hang."""
    started = trio.current_time()
    await stack.start(sim_env=POOL_ENV, sink_env={"SIM_SINK_LATENCY_S": "0.02"})
    assert stack.sim is not None
    base = stack.sim.url
    results: list[tuple[str, int, float, dict[str, Any] | None, str | None]] = []

    async def one(c: httpx.AsyncClient, i: int) -> None:
        kind = KINDS[i % len(KINDS)]
        t0 = trio.current_time()
        if kind == "status":
            r = await c.get(f"{base}/v1/users/busy/demo")
        elif kind == "page":
            r = await c.get(f"{base}/v1/users/busy/interactions?limit=50")
        elif kind == "ready":
            r = await c.get(f"{base}/readyz")
        else:
            body = {"videos": 1, "comments": 5, "dms": 5, "live_per_minute": 0, "seed": i}
            r = await c.put(f"{base}/v1/users/crowd{i}/demo", json=body)
        elapsed = trio.current_time() - t0
        try:
            doc = r.json()
        except ValueError:
            doc = None
        results.append((kind, r.status_code, elapsed, doc, r.headers.get("retry-after")))

    async with client(connections=API_REQUESTS + 10) as c:
        await stack.enable(c, "busy", **BURST)
        async with trio.open_nursery() as nursery:
            for i in range(API_REQUESTS):
                nursery.start_soon(one, c, i)
        overloaded_at = trio.current_time()
        recovery = await wait_until(lambda: _ready(stack, c), 15, what="readyz after overload")
        await stack.wait_done(90)
        after = await c.get(f"{base}/v1/users/busy/demo")
        assert after.status_code == 200, after.text
    assert len(results) == API_REQUESTS
    codes = sorted({status for _, status, _, _, _ in results})
    assert set(codes) <= {200, 202, 503}, results
    overloads = [r for r in results if r[1] == 503]
    for kind, _, _, doc, retry_after in overloads:
        assert retry_after is not None, (kind, doc)
        assert doc is not None and isinstance(doc.get("error"), dict), (kind, doc)
        assert doc["error"]["code"] in ("overloaded", "database_unavailable"), doc
    slowest = {kind: max(r[2] for r in results if r[0] == kind) for kind in KINDS}
    # an enable waits for the pool twice (enable, then the status it answers with)
    assert slowest["enable"] < 2 * POOL_TIMEOUT_S + SLACK_S, slowest
    for kind in ("status", "page"):
        assert slowest[kind] < POOL_TIMEOUT_S + SLACK_S, slowest
    assert slowest["ready"] < READYZ_TIMEOUT_S + SLACK_S, slowest
    totals = check_totals(stack)
    record(
        Row(
            6,
            "Pool exhaustion",
            f"{API_REQUESTS} concurrent API requests (status, pages, readyz, enable) on a pool"
            " of 2-3 connections (timeout 2 s, 50 waiting) during a 1,008-item burst",
            f"{len(overloads)} answered 503 + Retry-After, {API_REQUESTS - len(overloads)} OK,"
            f" 0 errors 500; slowest {max(slowest.values()):.1f} s"
            f" ({', '.join(f'{k} {v:.1f} s' for k, v in slowest.items())})",
            totals,
            f"ready {recovery:.1f} s after the last request (at {overloaded_at - started:.0f} s)",
            trio.current_time() - started,
        )
    )
