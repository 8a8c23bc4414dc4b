"""Fault scenario on a fleet: three sims on one database, killed, stopped and restarted."""

from __future__ import annotations

import dataclasses
import signal
from dataclasses import dataclass, field

import pytest
import trio
from faults.faultkit import SECRET, SIM_ENV, Stack
from faults.faultplugin import Row, client, record
from faults.faultplugin import cluster_fixture as cluster_fixture
from faults.faultplugin import stack_fixture as stack_fixture
from faults.faultproc import Service, wait_until

pytestmark = pytest.mark.faults

INSTANCES = 3
USERS = 20
LIVE_PER_MINUTE = 60
RATE_PER_S = USERS * LIVE_PER_MINUTE / 60
OWNER_LEASE_S = 2.0
FLEET_ENV = {"SIM_OWNER_LEASE_S": str(OWNER_LEASE_S), "SIM_HEARTBEAT_S": "0.6"}
STEADY_S = 15.0  # each phase runs this long before the next fault
WINDOW_S = 20.0  # the live rate is measured over windows this long
TOLERANCE = 0.25
GRACEFUL_S = 15.0


@dataclass
class Fleet:
    """Three sim processes on the stack's database (its receiver started already)."""

    stack: Stack
    sims: list[Service] = field(default_factory=list)

    def start(self) -> None:
        assert self.stack.sink is not None
        url = self.stack.cluster.create_database(self.stack.sim_db)
        for i in range(INSTANCES):
            sim = Service(
                f"sim{i}",
                "sim.app:create_app()",
                {
                    **SIM_ENV,
                    **FLEET_ENV,
                    "DATABASE_URL": url,
                    "SIM_MAIN_APP_URL": self.stack.sink.url + "/sink/interactions",
                    "SIM_WEBHOOK_SECRET": SECRET,
                },
                self.stack.workdir,
            )
            sim.env["SIM_PUBLIC_URL"] = sim.url
            self.stack.services.append(sim)
            self.sims.append(sim)
            sim.start()
        self.stack.sim = self.sims[0]

    def query(self, sql: str, params: object = None) -> list[tuple[object, ...]]:
        return self.stack.cluster.query(self.stack.sim_db, sql, params)

    async def covered(self, dead: str) -> bool:
        """Every enabled user has a live owner, and it is not ``dead``."""
        rows = await trio.to_thread.run_sync(
            self.query,
            "select count(*) from demo_users where enabled and (owner_id is null"
            " or not sim_lease_held(owner_id) or owner_id = %s::uuid)",
            (dead,),
        )
        return rows[0][0] == 0

    def owners(self) -> set[str]:
        return {str(o) for (o,) in self.query("select distinct owner_id from demo_users")}

    def instance_of(self, sim: Service) -> str:
        """The fleet id of ``sim`` (its worker process registered it)."""
        worker = sim.worker()
        assert worker is not None, f"{sim.name} is not running"
        rows = self.query("select id from sim_instances where pid = %s", (worker.pid,))
        assert rows, f"{sim.name} is not registered"
        return str(rows[0][0])


async def _takeover(fleet: Fleet, sim: Service, how: str) -> float:
    """Stop ``sim`` (SIGKILL or SIGTERM); seconds until its users all have a live owner."""
    gone = fleet.instance_of(sim)
    start = trio.current_time()
    if how == "kill":
        sim.kill()
    else:
        sim.signal(signal.SIGTERM)
    took = await wait_until(
        lambda: fleet.covered(gone), 30, interval_s=0.05, what=f"takeover after {how}"
    )
    if how != "kill":
        assert await sim.wait_exit(GRACEFUL_S) is not None, f"{sim.name} did not exit"
    assert trio.current_time() - start >= took
    return took


async def _restart(sim: Service) -> None:
    sim.start()
    await sim.wait_ready(60)


def _rates(stack: Stack, database: str, sql: str, since_s: float) -> list[float]:
    """Items per second in ``WINDOW_S`` windows over the last ``since_s`` seconds (whole
    windows only, newest first); ``sql`` selects one timestamp per live item as ``t``."""
    rows = stack.cluster.query(
        database,
        f"select floor(extract(epoch from now() - t) / %(w)s)::int as w, count(*) from ({sql}) x"
        " where t > now() - make_interval(secs => %(since)s) group by w",
        {"w": WINDOW_S, "since": since_s},
    )
    counts = {int(w): int(n) for w, n in rows}
    return [counts.get(w, 0) / WINDOW_S for w in range(int(since_s // WINDOW_S))]


def _live_rates(stack: Stack, since_s: float) -> tuple[list[float], list[float]]:
    """Live items per second, (stored by sim, first seen by the receiver)."""
    stored = _rates(
        stack, stack.sim_db, "select inserted_at as t from interactions where seq > 0", since_s
    )
    seen = _rates(
        stack,
        stack.sink_db,
        "select first_seen_at as t from sink_received where kind <> 'video'",
        since_s,
    )
    return stored, seen


async def test_fleet_kill_stop_and_rolling_restart(stack: Stack) -> None:
    """3 sims, 20 live users: SIGKILL one, SIGTERM one, restart all in turn; nothing lost."""
    started = trio.current_time()
    sink = stack.start_sink()
    fleet = Fleet(stack)
    fleet.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.wait_ready)
        for sim in fleet.sims:
            nursery.start_soon(sim.wait_ready, 60)
    async with client() as c:
        for i in range(USERS):  # through every instance in turn
            stack.sim = fleet.sims[i % INSTANCES]
            await stack.enable(
                c, f"fleet{i:02d}", videos=1, comments=0, dms=0, live_per_minute=LIVE_PER_MINUTE
            )
        stack.sim = fleet.sims[0]

        async def spread() -> bool:
            return len(await trio.to_thread.run_sync(fleet.owners)) == INSTANCES

        await wait_until(spread, 30, what="users spread over the fleet")
        measured_from = trio.current_time()
        await trio.sleep(STEADY_S)

        killed = await _takeover(fleet, fleet.sims[0], "kill")
        await _restart(fleet.sims[0])
        await trio.sleep(STEADY_S)
        stopped = await _takeover(fleet, fleet.sims[1], "term")
        await _restart(fleet.sims[1])
        await trio.sleep(STEADY_S)
        rolling = []
        for sim in fleet.sims:
            rolling.append(await _takeover(fleet, sim, "term"))
            await _restart(sim)
        await trio.sleep(STEADY_S)

        stored, seen = await trio.to_thread.run_sync(
            _live_rates, stack, trio.current_time() - measured_from
        )
        # live generation off (off, then on at rate 0: the run resumes and its senders
        # deliver what is left)
        for i in range(USERS):
            sim = fleet.sims[i % INSTANCES]
            r = await c.delete(f"{sim.url}/v1/users/fleet{i:02d}/demo")
            assert r.status_code == 200, r.text
            stack.sim = sim
            await stack.enable(c, f"fleet{i:02d}", videos=1, comments=0, dms=0)

    async def drained() -> bool:
        counts = await stack.settled()
        return counts.get("pending", 0) + counts.get("sending", 0) == 0

    await wait_until(drained, 60, what="every row delivered")
    # every generated row is expected at the receiver: live items are not in the bursts
    totals = dataclasses.replace(stack.totals(), expected=stack.totals().generated)
    assert totals.missing == 0 and totals.unexpected == 0, totals
    assert totals.visible_duplicates == 0, totals
    assert totals.delivered == totals.generated, totals
    assert totals.statuses.get("failed", 0) == 0, totals
    print(f"live items/s, newest window first: stored {stored}, at the receiver {seen}")
    lease_losses = sum(sim.log_text().count("no longer owned here") for sim in fleet.sims)
    takeovers = [stopped, *rolling]
    # recorded before the rate is checked: the report shows the figures either way
    record(
        Row(
            8,
            "Fleet: kill, stop, rolling restart",
            f"{INSTANCES} sims on one database, {USERS} live users at {LIVE_PER_MINUTE}/min"
            f" each (owner lease {OWNER_LEASE_S:g} s): SIGKILL one, SIGTERM one, then SIGTERM"
            " and restart each in turn",
            f"1 SIGKILL, {1 + INSTANCES} SIGTERMs, {2 + INSTANCES} restarts; live items"
            f" stored {min(stored):.1f}-{max(stored):.1f}/s, seen by the receiver"
            f" {min(seen):.1f}-{max(seen):.1f}/s, in {len(stored)} windows of {WINDOW_S:g} s"
            f" (configured {RATE_PER_S:g}/s, ±{TOLERANCE:.0%} allowed);"
            f" {lease_losses} simulations stopped by a refused write",
            totals,
            f"users of the SIGKILLed sim owned again after {killed:.1f} s; of a SIGTERMed one"
            f" after {min(takeovers):.2f}-{max(takeovers):.2f} s",
            trio.current_time() - started,
        )
    )
    low, high = RATE_PER_S * (1 - TOLERANCE), RATE_PER_S * (1 + TOLERANCE)
    assert stored and all(low <= r <= high for r in stored), (stored, seen)
