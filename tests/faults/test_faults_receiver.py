"""Fault scenarios at the receiver: outage and slowness for a whole run; bad answers at the edge."""

from __future__ import annotations

import re

import httpx
import pytest
import trio
from faults.faultkit import Stack
from faults.faultplugin import Row, check_totals, client, record
from faults.faultplugin import cluster_fixture as cluster_fixture
from faults.faultplugin import stack_fixture as stack_fixture
from faults.faultproc import Service, wait_until

pytestmark = pytest.mark.faults

REQUEST_TIMEOUT_S = 1.0  # SIM_REQUEST_TIMEOUT_S of faultkit.SIM_ENV
SEND_CONCURRENCY = 4  # an upper bound: sim's default is 2 workers per user
OUTAGE_USERS = 2
OUTAGE_BURST = {"videos": 8, "comments": 300, "dms": 300}
OUTAGE_FAULTS = {"error_rate": 0.3, "hang_rate": 0.1, "hang_s": 5.0, "retry_after_s": 0.5}


def _histogram(text: str, name: str) -> dict[str, dict[str, float]]:
    """``{outcome: {le: cumulative count, "count": n}}`` of one Prometheus histogram."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = re.match(rf"{name}_(bucket|count)\{{([^}}]*)\}} (\S+)$", line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match[2]))
        key = labels["le"] if match[1] == "bucket" else "count"
        out.setdefault(labels["outcome"], {})[key] = float(match[3])
    return out


async def _tasks(c: httpx.AsyncClient, sim: Service) -> int:
    """sim's Trio task count, from its /metrics."""
    text = (await c.get(sim.url + "/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("sim_trio_tasks "))
    return int(float(line.split()[1]))


async def _steady_tasks(c: httpx.AsyncClient, sim: Service) -> int:
    """sim's Trio task count once it holds still (the same in three samples in a row):
    a single sample may catch passing tasks (a heartbeat round, a request being served)."""
    samples: list[int] = []

    async def steady() -> bool:
        samples.append(await _tasks(c, sim))
        return len(samples) >= 3 and len(set(samples[-3:])) == 1

    await wait_until(steady, 30, what="a steady task count", interval_s=0.2)
    return samples[-1]


def _resources(sim: Service, sink: Service) -> dict[str, float]:
    """What sim's worker holds open: connections to the receiver, descriptors, memory."""
    worker = sim.worker()
    assert worker is not None
    return {
        "connections": sum(sim.connections_to(sink.port).values()),
        "fds": worker.num_fds(),
        "threads": worker.num_threads(),
        "rss_mib": sim.rss_mib(),
    }


async def test_receiver_outage_and_slowness(stack: Stack) -> None:
    """30% 503 + Retry-After and 10% hangs all run long: all delivered, no leak, bounded waits."""
    started = trio.current_time()
    # small batches: many requests, so that many of them fail or hang
    await stack.start(sim_env={"SIM_SEND_BATCH_SIZE": "10"})
    assert stack.sim is not None and stack.sink is not None
    sim, sink = stack.sim, stack.sink
    async with client() as c:
        idle_tasks = await _steady_tasks(c, sim)
        await stack.enable(c, "warmup", videos=2, comments=40, dms=40)
        await stack.wait_done(30)
        await stack.wait_live(c, ["warmup"], 30)  # its steady state: the baseline
        before = _resources(sim, sink)
        before["tasks"] = await _steady_tasks(c, sim)
        await stack.set_faults(c, **OUTAGE_FAULTS, seed=3)
        run_start = trio.current_time()
        for i in range(OUTAGE_USERS):
            await stack.enable(c, f"outage{i}", **OUTAGE_BURST)
        await stack.wait_done(150)
        run_s = trio.current_time() - run_start
        r = await c.delete(sink.url + "/sink/admin/faults")
        assert r.status_code == 200
        users = ["warmup"] + [f"outage{i}" for i in range(OUTAGE_USERS)]
        await stack.wait_live(c, users, 30)
        per_user = before["tasks"] - idle_tasks
        senders = (OUTAGE_USERS + 1) * SEND_CONCURRENCY
        after: dict[str, float] = {}

        async def no_growth() -> bool:
            # at most one connection per sender that can be in flight; no descriptor, thread
            # or memory growth beyond what the pool and those connections account for; each
            # live user keeps the same fixed set of tasks. What was in flight when the faults
            # stopped may take a moment to settle (idle worker threads linger for 10 s); a
            # leak never does.
            after.update(_resources(sim, sink), tasks=await _tasks(c, sim))
            return (
                after["connections"] <= senders
                and after["tasks"] <= idle_tasks + (OUTAGE_USERS + 1) * per_user
                and after["fds"] <= before["fds"] + senders + 8
                and after["threads"] <= before["threads"] + 2
                and after["rss_mib"] <= before["rss_mib"] + 40
            )

        try:
            await wait_until(no_growth, 60, what="no growth", interval_s=0.5)
        except TimeoutError:
            raise AssertionError(
                f"resources grew: {before} -> {after} (tasks with no user: {idle_tasks})"
            ) from None
        metrics = (await c.get(sim.url + "/metrics")).text
        stats = await stack.sink_stats(c)
    totals = check_totals(stack)
    assert stats["orphan_comments"] == 0, stats
    sink_log = sink.log_text()
    hangs = sink_log.count("Sink fault: hanging")
    errors = sink_log.count("Sink fault: answering 503")
    assert hangs >= 10 and errors >= 30, (hangs, errors)
    # every request was cut off by sim's timeout (1 s), none waited out a 5 s hang; each
    # hang shows up as a retry between 0.5 s and 5 s
    seconds = _histogram(metrics, "sim_delivery_duration_seconds")
    for outcome, buckets in seconds.items():
        assert buckets["5.0"] == buckets["count"], (outcome, buckets)
    retry = seconds["retry"]
    assert retry["5.0"] - retry["0.5"] >= hangs, (retry, hangs)
    within = min(
        float(le)
        for le in ("0.5", "1.0", "2.5", "5.0")
        if all(b[le] == b["count"] for b in seconds.values())
    )
    requests = stats["requests"]
    record(
        Row(
            3,
            "Receiver outage and slowness",
            "receiver answers 30% of requests 503 with `Retry-After: 0.5` and holds 10% for 5 s"
            f" (sim's request timeout {REQUEST_TIMEOUT_S:g} s) for a whole run",
            f"{requests} requests: {errors} answered 503, {hangs} hung;"
            f" HTTP connections {before['connections']:.0f} → {after['connections']:.0f},"
            f" Trio tasks {before['tasks']:.0f} → {after['tasks']:.0f}"
            f" ({per_user:.0f} per live user, {OUTAGE_USERS} users added),"
            f" fds {before['fds']:.0f} → {after['fds']:.0f},"
            f" RSS {before['rss_mib']:.0f} → {after['rss_mib']:.0f} MiB",
            totals,
            f"none needed (faults for the whole run); run took {run_s:.1f} s,"
            f" every request ≤ {within:g} s",
            trio.current_time() - started,
        )
    )


EDGE_BURST = {"videos": 3, "comments": 60, "dms": 60}
EDGE_BATCH = 40
TOO_LARGE_OVER = 7


async def _phase(stack: Stack, c: httpx.AsyncClient, user_id: str, **faults: object) -> None:
    await stack.set_faults(c, **faults)
    await stack.enable(c, user_id, **EDGE_BURST)


def _user_rows(stack: Stack, user_id: str) -> list[tuple[str, int, str | None]]:
    rows = stack.cluster.query(
        stack.sim_db,
        "select status, attempts, last_error from interactions where user_id = %s",
        (user_id,),
    )
    return [(str(s), int(a), e) for s, a, e in rows]


async def test_bad_answers_at_the_edge(stack: Stack) -> None:
    """200 with garbage, dropped connections, 413s: retried, split or failed; nothing lost."""
    started = trio.current_time()
    await stack.start(sim_env={"SIM_SEND_BATCH_SIZE": str(EDGE_BATCH)})
    assert stack.sim is not None and stack.sink is not None
    per_user = sum(EDGE_BURST.values())
    async with client() as c:
        # 200 with a body that is not JSON: delivered (2xx is success), first time
        await _phase(stack, c, "garbage", mode="garbage")
        await stack.wait_done(30)
        # stored, then the connection dropped mid-response: sim cannot know, so it retries;
        # the receiver sees the repeats as repeated ids. Then the receiver behaves again.
        await _phase(stack, c, "dropped", mode="close")

        async def dropped_and_retried() -> bool:
            rows = await trio.to_thread.run_sync(_user_rows, stack, "dropped")
            return any(a > 1 for _, a, _ in rows)

        await wait_until(dropped_and_retried, 60, what="a dropped request retried")
        await stack.set_faults(c, mode=None)
        await stack.wait_done(30)
        # 413 for more than 7 items a request: sim halves the batch until it fits
        await _phase(stack, c, "split", too_large_over=TOO_LARGE_OVER)
        await stack.wait_done(30)
        # 413 even for one item: failed for good, with the reason (comments with their video)
        await _phase(stack, c, "refused", too_large_over=0)
        await stack.wait_done(30)
        stats = await stack.sink_stats(c)
    totals = check_totals(stack, failures_allowed=True)
    assert stats["orphan_comments"] == 0, stats
    garbage = _user_rows(stack, "garbage")
    assert {(s, a) for s, a, _ in garbage} == {("sent", 1)}, garbage
    dropped = _user_rows(stack, "dropped")
    assert all(s == "sent" for s, _, _ in dropped), dropped
    retried = sum(1 for _, a, _ in dropped if a > 1)
    assert retried > 0, dropped
    split = _user_rows(stack, "split")
    assert {(s, a) for s, a, _ in split} == {("sent", 1)}, split
    splits = stack.sim.log_text().count("Receiver said 413")
    assert splits >= per_user // EDGE_BATCH, splits
    refused = _user_rows(stack, "refused")
    assert all(s == "failed" and e for s, _, e in refused), refused
    assert any("413" in (e or "") for _, _, e in refused), refused
    assert any("its video could not be delivered" in (e or "") for _, _, e in refused), refused
    assert totals.failed_with_reason == per_user
    assert totals.delivered == totals.expected - per_user
    record(
        Row(
            7,
            "Bad data at the edge",
            "receiver answers 200 with a non-JSON body; stores then drops the connection"
            " mid-response (until a request was retried);"
            f" answers 413 above {TOO_LARGE_OVER} items; 413 always",
            f"{per_user} items per case; garbage: all sent on the first attempt; dropped:"
            f" {retried} rows retried; 413: {splits} batch splits, all sent;"
            f" 413 always: all {per_user} failed with the reason",
            totals,
            "delivery resumed as soon as the receiver stopped dropping connections",
            trio.current_time() - started,
        )
    )
