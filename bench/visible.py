"""Time to visible: ``PUT /v1/users/{id}/demo`` until the receiver has all 208 initial items.

sim runs as ``make run`` runs it (hypercorn, ``hypercorn.toml``, the shipped defaults)
with ``SIM_MAIN_APP_URL`` pointing at the ack-only receiver. Users are turned on one
after another; each latency runs from just before the PUT to the receiver's arrival
time of the user's 208th distinct item (both ``time.monotonic()``, one clock on Linux).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import IO, Any

from bench.pg import BenchPostgres
from bench.proc import Receiver, sim_app
from bench.stats import Series, percentile

__all__ = ["VisibleResult", "run_visible"]

DB = "bench_visible"
INITIAL = 8 + 100 + 100  # the API's defaults


@dataclass
class VisibleResult:
    users: int
    latencies_ms: list[list[float]] = field(default_factory=list)  # one list per round

    @property
    def p50(self) -> Series:
        return Series.of([percentile(r, 50) for r in self.latencies_ms])

    @property
    def p95(self) -> Series:
        return Series.of([percentile(r, 95) for r in self.latencies_ms])

    @property
    def worst(self) -> Series:
        return Series.of([max(r) for r in self.latencies_ms])


def run_visible(
    pg: BenchPostgres, receiver: Receiver, *, users: int, rounds: int, log: IO[str], say: Any
) -> VisibleResult:
    result = VisibleResult(users=users)
    for r in range(rounds):
        url = pg.create(DB, schema=False)
        receiver.reset()
        env = {"DATABASE_URL": url, "SIM_MAIN_APP_URL": receiver.ingest_url}
        latencies = []
        with sim_app(env, log=log) as app:
            for u in range(users):
                user_id = f"visible-{r}-{u:03d}"
                started = time.monotonic()
                response = app.client.put(f"{app.url}/v1/users/{user_id}/demo", json={})
                if response.status_code != 202:
                    raise RuntimeError(f"PUT demo for {user_id}: HTTP {response.status_code}")
                doc = receiver.wait(user_id, INITIAL, timeout_s=60)
                if doc["count"] < INITIAL:
                    raise RuntimeError(f"{user_id}: only {doc['count']} of {INITIAL} arrived")
                latencies.append((doc["reached_at"] - started) * 1000)
        result.latencies_ms.append(latencies)
        say(
            f"  round {r + 1}: p50 {percentile(latencies, 50):.0f} ms, "
            f"p95 {percentile(latencies, 95):.0f} ms, max {max(latencies):.0f} ms"
        )
    pg.drop(DB)
    return result
