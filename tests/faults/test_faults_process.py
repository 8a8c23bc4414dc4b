"""Fault scenarios on sim's process: SIGTERM mid-run, SIGKILL mid-run; a restart finishes."""

from __future__ import annotations

import re
import signal

import pytest
import trio
from faults.faultkit import Stack
from faults.faultplugin import Row, check_totals, client, record
from faults.faultplugin import cluster_fixture as cluster_fixture
from faults.faultplugin import stack_fixture as stack_fixture
from faults.faultproc import wait_until

pytestmark = pytest.mark.faults

BURST = {"videos": 8, "comments": 1000, "dms": 1000}
USERS = 2
#: at most 8 requests of 100 rows in flight: when the receiver starts holding new
#: requests, more rows are still to send than can be in flight, so the run cannot finish
#: before the signal lands (with 1,000-row requests the last rows could all be in flight
#: already, and a faster sim delivered everything before the SIGTERM)
SMALL_BATCHES = {"SIM_SEND_BATCH_SIZE": "100", "SIM_HTTP_CONCURRENCY": "8"}
GRACEFUL_TIMEOUT_S = 10.0  # hypercorn.toml
MARGIN_S = 3.0
LEASE_S = 3.0  # SIM_LEASE_S of faultkit.SIM_ENV
HANG_S = 60.0  # a held request: far beyond sim's request timeout


async def _start_and_interrupt(stack: Stack) -> int:
    """Start both, enable the users, wait until a quarter is sent; the total to expect."""
    await stack.start(sim_env=SMALL_BATCHES, sink_env={"SIM_SINK_LATENCY_S": "0.1"})
    total = USERS * sum(BURST.values())
    async with client() as c:
        for i in range(USERS):
            await stack.enable(c, f"proc{i}", **BURST)

    async def quarter() -> bool:
        return (await stack.settled()).get("sent", 0) >= total // 4

    await wait_until(quarter, 30, what="a quarter sent", interval_s=0.05)
    return total


def _give_back_lines(log: str) -> list[str]:
    """sim's lines about claimed rows given back when it stopped (or left to their lease)."""
    return [line for line in log.splitlines() if "claimed rows" in line or "lease will" in line]


async def _restart(stack: Stack) -> tuple[float, float]:
    """Start sim again; (seconds until ready, seconds until every interaction is settled)."""
    assert stack.sim is not None
    stack.sim.start()
    ready = await stack.sim.wait_ready()
    done = await stack.wait_done(90)
    return ready, done


async def test_sigterm_mid_run(stack: Stack) -> None:
    """SIGTERM mid-run: a clean, bounded exit (rows given back), and a restart finishes the run."""
    started = trio.current_time()
    total = await _start_and_interrupt(stack)
    assert stack.sim is not None
    # from now on the receiver holds every new request (sim times them out and retries):
    # the run cannot finish before the signal lands, and requests are in flight when it does
    async with client() as c:
        await stack.set_faults(c, hang_rate=1.0, hang_s=HANG_S)
    sent_before = (await stack.settled()).get("sent", 0)
    pg_log_from = stack.cluster.log_offset()
    stack.sim.signal(signal.SIGTERM)
    # a generous bound on the wait; how long the exit took is a figure of the report
    exited = await stack.sim.wait_exit(3 * GRACEFUL_TIMEOUT_S)
    assert exited is not None, "sim still runs after SIGTERM"
    assert stack.sim.proc is not None and stack.sim.proc.returncode == 0
    log = stack.sim.log_text()
    assert stack.sim.problems() == []
    assert "Database pool closed" in log
    # and PostgreSQL saw every connection closed properly, none just dropped
    assert stack.cluster.dropped_connections(pg_log_from) == 0
    after_stop = await stack.settled()
    # the senders gave their claimed rows back: nothing waits for a lease to run out
    assert after_stop.get("sending", 0) == 0, (after_stop, _give_back_lines(log))
    assert after_stop.get("sent", 0) < total
    given_back = sum(int(n) for n in re.findall(r"Gave back (\d+) of", log))
    assert stack.sink is not None
    async with client() as c:  # the receiver answers again
        r = await c.delete(stack.sink.url + "/sink/admin/faults")
        assert r.status_code == 200, r.text
    ready, done = await _restart(stack)
    totals = check_totals(stack)
    assert stack.sim.problems() == []
    record(
        Row(
            4,
            "SIGTERM mid-run",
            f"SIGTERM to sim after {sent_before} of {total} interactions were sent, its"
            " requests then held by the receiver; restart",
            f"1 SIGTERM; exit in {exited:.1f} s (graceful timeout {GRACEFUL_TIMEOUT_S:g} s),"
            " exit code 0, no error in its log nor a dropped connection in PostgreSQL's,"
            f" {given_back} claimed rows given back, no row left `sending`",
            totals,
            f"restarted sim ready in {ready:.1f} s, run complete {done:.1f} s later",
            trio.current_time() - started,
        )
    )


async def test_sigkill_mid_run(stack: Stack) -> None:
    """SIGKILL mid-run: a restart re-drives the claimed rows after their lease; nothing lost."""
    started = trio.current_time()
    total = await _start_and_interrupt(stack)
    assert stack.sim is not None
    pg_log_from = stack.cluster.log_offset()
    stack.sim.kill()
    killed_at = trio.current_time()
    claimed = stack.cluster.query(
        stack.sim_db, "select id, attempts from interactions where status = 'sending'"
    )
    counts = await stack.settled()
    assert counts.get("sent", 0) < total, "the run was over before SIGKILL"
    ready, _ = await _restart(stack)
    totals = check_totals(stack)
    # every row in flight at the kill was claimed again (a new attempt) and delivered
    if claimed:
        again = dict(
            stack.cluster.query(
                stack.sim_db,
                "select id, attempts from interactions where id = any(%s)",
                ([i for i, _ in claimed],),
            )
        )
        assert all(again[i] > n for i, n in claimed), "a claimed row was not re-driven"
    # the check of the SIGTERM scenario sees a kill: PostgreSQL logged the dropped sessions
    dropped = stack.cluster.dropped_connections(pg_log_from)
    assert dropped > 0
    record(
        Row(
            5,
            "SIGKILL mid-run",
            f"SIGKILL to sim (master and worker) after {counts.get('sent', 0)} of {total}"
            " interactions were sent; restart",
            f"1 SIGKILL with {len(claimed)} rows claimed (lease {LEASE_S:g} s);"
            f" {dropped} sessions dropped",
            totals,
            f"restarted sim ready in {ready:.1f} s, run complete"
            f" {trio.current_time() - killed_at:.1f} s after the kill",
            trio.current_time() - started,
        )
    )
