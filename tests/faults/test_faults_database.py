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
from faults.faultprobe import Prober
from faults.faultproc import wait_until

pytestmark = pytest.mark.faults

BURST = {"videos": 8, "comments": 500, "dms": 500}
STORM_USERS = 4
STORM_S = 6.0
DOWN_S = 3.0
READYZ_TIMEOUT_S = 1.0  # SIM_READYZ_TIMEOUT_S of faultkit.SIM_ENV
MIN_KILLS = 30  # the storm goes on (past STORM_S) until it has killed this many
MIN_PROBES = 3  # a fault lasts (past its length) until each probe was answered this often


async def _sent(stack: Stack) -> int:
    return (await stack.settled()).get("sent", 0)


async def test_connection_kill_storm(stack: Stack, cluster: Cluster) -> None:
    """Every sim connection killed every 100 ms mid-burst: all sent, each id once, ready again."""
    started = trio.current_time()
    # a slow receiver and small batches keep the bursts in flight while the storm rages
    await stack.start(sim_env={"SIM_SEND_BATCH_SIZE": "20"}, sink_env={"SIM_SINK_LATENCY_S": "0.2"})
    assert stack.sim is not None
    async with client() as c:
        for i in range(STORM_USERS):
            await stack.enable(c, f"storm{i}", **BURST)
        total = STORM_USERS * sum(BURST.values())
        storm = Storm(cluster, stack.sim_db, interval_s=0.1)
        stop = trio.Event()
        sent_at_start = await _sent(stack)

        async def killed_enough() -> bool:
            return storm.killed >= MIN_KILLS

        with Prober(stack.sim.url, stack.workdir / "probes.log") as prober:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(storm.run, stop)
                await trio.sleep(STORM_S)  # the storm's length, not a wait for something
                # as strong on a slow machine as on a fast one
                await wait_until(killed_enough, 60, what=f"{MIN_KILLS} connections killed")
                await wait_until(
                    lambda: _probed(prober, MIN_PROBES), 30, what=f"{MIN_PROBES} probes"
                )
                stop.set()
        storm_end = trio.current_time()
        sent_at_end = await _sent(stack)
        # the storm began while the bursts were being delivered (not after)
        assert sent_at_start < total // 2, sent_at_start
        ready = await wait_until(
            lambda: _ready(stack, c), 30, what="readyz after the storm", interval_s=0.1
        )
        await stack.wait_done(90)
        recovery = trio.current_time() - storm_end
        stats = await stack.sink_stats(c)
    totals = check_totals(stack)
    assert stats["orphan_comments"] == 0, stats
    assert stats["rejected"] == 0, stats
    assert stack.unsigned() == 0
    probes = prober.stats(READYZ_TIMEOUT_S)
    healthz, readyz = probes
    assert set(healthz.statuses) == {200}, probes  # liveness never depends on the database
    assert set(readyz.statuses) <= {200, 503}, probes
    record(
        Row(
            1,
            "Connection kill storm",
            f"`pg_terminate_backend` of every sim connection every 100 ms for {STORM_S:g} s,"
            f" during {STORM_USERS} users' initial bursts",
            f"{storm.killed} connections killed in {storm.rounds} rounds;"
            f" {sent_at_end - sent_at_start} sent during the storm;"
            f" `/readyz` 200 in {readyz.statuses.get(200, 0)} of {readyz.count} probes during it",
            totals,
            "none needed: all sent during the storm"
            if sent_at_end == total
            else f"ready {ready:.1f} s and all sent {recovery:.1f} s after the storm",
            trio.current_time() - started,
            tuple(probes),
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
        with Prober(stack.sim.url, stack.workdir / "probes.log") as prober:
            await trio.sleep(DOWN_S)  # the outage's length, not a wait for something
            await wait_until(
                lambda: _probed(prober, MIN_PROBES), 30, what=f"{MIN_PROBES} probes while down"
            )
        await trio.to_thread.run_sync(cluster.start)
        recovery = await wait_until(
            lambda: _ready(stack, c), 30, what="readyz after the restart", interval_s=0.1
        )
        await stack.wait_done(90)
        stats = await stack.sink_stats(c)
        # once more with sim idle (demo mode off, nothing polls the database): every pooled
        # connection is dead when PostgreSQL is back, and the first request still answers
        # (before, it waited out the pool timeout, and got a 503)
        for i in range(2):
            r = await c.delete(f"{stack.sim.url}/v1/users/restart{i}/demo")
            assert r.status_code == 200, r.text
        await trio.to_thread.run_sync(cluster.stop)
        await trio.sleep(0.5)  # the second outage's length
        await trio.to_thread.run_sync(cluster.start)
        t0 = trio.current_time()
        r = await c.get(f"{stack.sim.url}/v1/users/restart0/demo")
        idle_answer = trio.current_time() - t0
        assert r.status_code == 200, r.text
    probes = prober.stats(READYZ_TIMEOUT_S)
    healthz, readyz = probes
    assert set(healthz.statuses) == {200}, probes  # liveness never depends on the database
    assert set(readyz.statuses) == {503}, probes
    # recovered without a restart of its own: the same worker process throughout
    assert stack.sim.alive() and stack.sim.worker() == worker
    totals = check_totals(stack)
    assert stats["orphan_comments"] == 0, stats
    record(
        Row(
            2,
            "PostgreSQL restart mid-run",
            f"PostgreSQL stopped (fast shutdown) for {DOWN_S:g} s after a fifth was sent,"
            " then started again; once more with sim idle",
            f"2 restarts; {readyz.count} `/readyz` probes while down, all 503,"
            f" slowest {readyz.max:.2f} s",
            totals,
            f"ready {recovery:.1f} s after PostgreSQL was back, without a restart; idle:"
            f" first request answered in {idle_answer:.2f} s",
            trio.current_time() - started,
            tuple(probes),
        )
    )


async def _probed(prober: Prober, n: int) -> bool:
    return all(len(samples) >= n for samples in prober.samples().values())


async def _at_least(stack: Stack, n: int) -> bool:
    return await _sent(stack) >= n


POOL_ENV = {
    "SIM_POOL_MIN_SIZE": "2",
    "SIM_POOL_MAX_SIZE": "3",
    "SIM_POOL_TIMEOUT_S": "2",
    "SIM_POOL_MAX_WAITING": "50",
}
API_REQUESTS = 200
KINDS = ("status", "page", "ready", "enable")


async def test_pool_exhaustion(stack: Stack) -> None:
    """200 concurrent API requests on a 3-connection pool during a burst: 503s, no 500, no loss."""
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
        with Prober(base, stack.workdir / "probes.log") as prober:
            await wait_until(lambda: _probed(prober, 1), 30, what="the prober's first probes")
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
    # every enable answered 202 left its user (whose whole burst check_totals accounts for)
    enabled = sum(1 for r in results if r[0] == "enable" and r[1] == 202)
    (crowd,) = stack.cluster.query(
        stack.sim_db, "select count(*) from demo_users where user_id like 'crowd%'"
    )
    assert int(crowd[0]) >= enabled, (crowd, enabled)
    probes = prober.stats(READYZ_TIMEOUT_S)
    assert all(p.count > 0 and set(p.statuses) <= {200, 503} for p in probes), probes
    slowest = {kind: max(r[2] for r in results if r[0] == kind) for kind in KINDS}
    totals = check_totals(stack)
    record(
        Row(
            6,
            "Pool exhaustion",
            f"{API_REQUESTS} concurrent API requests (status, pages, readyz, enable) on a pool"
            " of 2-3 connections (timeout 2 s, 50 waiting) during a 1,008-item burst",
            f"{len(overloads)} answered 503 + Retry-After, {API_REQUESTS - len(overloads)} OK,"
            f" 0 errors 500; {enabled} users enabled; slowest as seen by the test's"
            f" own client (all {API_REQUESTS} in flight from one process)"
            f" {max(slowest.values()):.1f} s"
            f" ({', '.join(f'{k} {v:.1f} s' for k, v in slowest.items())})",
            totals,
            f"ready {recovery:.1f} s after the last request (at {overloaded_at - started:.0f} s)",
            trio.current_time() - started,
            tuple(probes),
        )
    )
