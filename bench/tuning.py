"""Sensitivity of the tunables around their defaults: one run per variant.

These runs are what the defaults were chosen from (see BENCHMARKS.md, "Defaults");
a single run each, so read them for shape, not for the last per cent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any

from bench.pg import BenchPostgres
from bench.proc import Receiver
from bench.recording import sweep_recorder
from bench.relay import sweep_relay

__all__ = ["RECORDER_VARIANTS", "RELAY_MANY", "RELAY_ONE", "Tuning", "run_tuning"]

RECORDER_VARIANTS: list[dict[str, Any]] = [
    {"record_batch_size": b, "record_concurrency": c}
    for b in (500, 1000, 2500, 5000)
    for c in (1, 2, 4)
]
#: one user's stored rows (section 2's case): what one user's workers can do
RELAY_ONE: list[dict[str, Any]] = [
    *({"send_batch_size": b} for b in (250, 500, 2000)),
    *({"send_concurrency": c} for c in (1, 4)),
]
#: several users at once: what the global limits and the pool do
RELAY_MANY: list[dict[str, Any]] = [
    *({"http_concurrency": h} for h in (4, 16, 32)),
    *({"send_concurrency": c} for c in (1, 4)),
    *({"pool_max_size": p, "pool_min_size": min(p, 10)} for p in (5, 10, 20)),
]
MANY_USERS = 10


@dataclass
class Tuning:
    recorder: dict[str, float] = field(default_factory=dict)
    recorder_rows: int = 100_000
    relay_one: dict[str, float] = field(default_factory=dict)
    relay_many: dict[str, float] = field(default_factory=dict)
    one_rows: int = 100_000
    many_rows: int = 50_000
    many_users: int = MANY_USERS


def run_tuning(pg: BenchPostgres, receiver: Receiver, *, log: IO[str], say: Any) -> Tuning:
    t = Tuning()
    t.recorder = sweep_recorder(
        pg, rows=t.recorder_rows, variants=[{}, *RECORDER_VARIANTS], log=log, say=say
    )
    t.relay_one = sweep_relay(
        pg, receiver, rows=t.one_rows, n_users=1, variants=[{}, *RELAY_ONE], log=log, say=say
    )
    t.relay_many = sweep_relay(
        pg,
        receiver,
        rows=t.many_rows,
        n_users=t.many_users,
        variants=[{}, *RELAY_MANY],
        log=log,
        say=say,
    )
    return t
