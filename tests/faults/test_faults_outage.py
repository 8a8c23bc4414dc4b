"""Fault scenario: a main-app outage longer than the attempt budget, then a replay after 4xx."""

from __future__ import annotations

import re

import httpx
import pytest
import trio
from faults.faultkit import Stack
from faults.faultplugin import Row, check_totals, client, record
from faults.faultplugin import cluster_fixture as cluster_fixture
from faults.faultplugin import stack_fixture as stack_fixture
from faults.faultproc import wait_until

pytestmark = pytest.mark.faults

# the old budget, time-scaled: 3 attempts with backoff of at most 0.2 s are spent within
# about a second of refused connections; the outage lasts many times that
MAX_ATTEMPTS = 3
BACKOFF_MAX_S = 0.2
THRESHOLD = 3
PROBE_INTERVAL_S = 0.5
HTTP_CONCURRENCY = 8
OUTAGE_S = 8.0
OUTAGE_ENV = {
    "SIM_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "SIM_BACKOFF_MAX_S": str(BACKOFF_MAX_S),
    "SIM_CIRCUIT_FAILURE_THRESHOLD": str(THRESHOLD),
    "SIM_CIRCUIT_PROBE_INTERVAL_S": str(PROBE_INTERVAL_S),
    "SIM_HTTP_CONCURRENCY": str(HTTP_CONCURRENCY),
    "SIM_SEND_BATCH_SIZE": "20",
}
BURST = {"videos": 4, "comments": 120, "dms": 120}


async def _metric(c: httpx.AsyncClient, url: str, name: str) -> float:
    """One sample of sim's /metrics (``name`` with its labels, as printed)."""
    text = (await c.get(url + "/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def _circuit(c: httpx.AsyncClient, url: str) -> str:
    r = await c.get(url + "/readyz")
    assert r.status_code == 200, r.text  # the main app down is not sim unready
    return str(r.json()["circuit"]["state"])


async def test_main_app_outage_then_replay(stack: Stack) -> None:
    """Receiver refusing connections 8 s (old budget ~1 s): 0 failed, probes bounded; replay."""
    started = trio.current_time()
    await stack.start(sim_env=OUTAGE_ENV)
    assert stack.sim is not None and stack.sink is not None
    sim, sink = stack.sim, stack.sink
    retry = 'sim_deliveries_total{outcome="retry"}'
    async with client() as c:
        await stack.enable(c, "warmup", videos=1, comments=10, dms=10)
        await stack.wait_done(30)
        # the main app goes away: nothing listens on its port, connections are refused
        sink.kill()
        outage_start = trio.current_time()
        retries_before = await _metric(c, sim.url, retry)
        for i in range(2):
            await stack.enable(c, f"outage{i}", **BURST)

        async def opened() -> bool:
            return await _circuit(c, sim.url) != "closed"

        await wait_until(opened, 10, interval_s=0.05, what="the circuit opening")
        opened_after_s = trio.current_time() - outage_start
        states: set[str] = set()
        while trio.current_time() - outage_start < OUTAGE_S:
            states.add(await _circuit(c, sim.url))
            await trio.sleep(0.2)
        requests = await _metric(c, sim.url, retry) - retries_before
        probes = await _metric(c, sim.url, "sim_circuit_probes_total")
        counts = await stack.settled()
        assert counts.get("failed", 0) == 0, counts
        # the main app comes back on the same port
        sink.start()
        await sink.wait_ready()
        back = trio.current_time()
        await stack.wait_done(60)
        resumed_s = trio.current_time() - back
        assert await _circuit(c, sim.url) == "closed"
        closed = await _metric(c, sim.url, 'sim_circuit_transitions_total{state="closed"}')
        outage_s = back - outage_start

        # then a batch the main app refuses for good (400), and a replay once it accepts
        await stack.set_faults(c, error_rate=1.0, status=400)
        await stack.enable(c, "refused", videos=2, comments=20, dms=20)
        await stack.wait_done(30)
        failed = (await stack.settled()).get("failed", 0)
        assert failed == 42, failed
        await stack.set_faults(c, error_rate=0.0)
        r = await c.post(sim.url + "/v1/users/refused/demo/redeliver", json={})
        assert r.status_code == 200, r.text
        assert r.json()["requeued"] == failed
        await stack.wait_done(30)
        r = await c.get(sim.url + "/v1/users/outage0/deliveries", params={"limit": 500})
        log_entries = r.json()["items"]
    totals = check_totals(stack)
    assert {"open", "half_open"} & states, states
    # probes bounded: one per interval (one instance), plus the requests in flight when it
    # opened (at most one per HTTP slot) and the threshold's own failures
    assert probes <= outage_s / PROBE_INTERVAL_S + 2, (probes, outage_s)
    assert requests <= THRESHOLD + HTTP_CONCURRENCY + probes + 2, (requests, probes)
    assert closed >= 1
    refused_entries = [e for e in log_entries if e["outcome"] == "retry"]
    assert refused_entries and all(e["status_code"] is None for e in refused_entries)
    opens = len(re.findall("Circuit to the main app opened", sim.log_text()))
    record(
        Row(
            9,
            "Main-app outage longer than the attempt budget, then a replay",
            f"receiver process killed (connections refused) for {outage_s:.1f} s during 2 users'"
            f" bursts, with {MAX_ATTEMPTS} attempts and backoff ≤ {BACKOFF_MAX_S:g} s (rows"
            " would have failed within about 1 s); then 400 for a whole burst, replayed",
            f"circuit opened {opened_after_s:.2f} s into the outage ({opens} opening);"
            f" {requests:.0f} requests while down, {probes:.0f} of them probes (one per"
            f" {PROBE_INTERVAL_S:g} s); 0 rows failed; 42 refused with 400, all re-queued by"
            " one redeliver",
            totals,
            f"all delivered {resumed_s:.1f} s after the receiver was back (circuit closed by"
            " the first probe); the replay delivered all 42",
            trio.current_time() - started,
        )
    )
