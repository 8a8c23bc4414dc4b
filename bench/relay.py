"""Relay throughput: claim → deliver → record stored interactions, against pgqueuer.

sim side: the rows and their ``demo_users`` (generation finished, live rate 0) are COPYed
in first; then a worker process runs sim's ``Runtime`` (pool, recorder, supervisor,
sender workers, deliverer: everything ``make run`` runs except the HTTP API) against the
ack-only receiver, which runs in its own process, and stops once every row is recorded.
pgqueuer side: its own no-op drain throughput (``bench.pgq``) on the same server, in the
same invocation, alternating with sim's runs. The connections section reads the sessions
opened, the peak backends and the transactions of sim's runs from PostgreSQL's statistics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import IO, Any

import psycopg
import trio

from bench.data import outbox_rows, seed_users
from bench.pg import BenchPostgres, copy_rows
from bench.proc import Receiver, run_worker
from bench.stats import Series, ratio_series
from sim.db import users
from sim.runtime import Runtime
from sim.settings import Settings

__all__ = ["RelayResult", "run_relay", "sim_relay"]

DB = "bench_relay"
PGQ_DB = "bench_pgq"


# --- worker side ---------------------------------------------------------------------------
async def _sim_relay(
    url: str, receiver_url: str, total: int, overrides: dict[str, Any]
) -> dict[str, Any]:
    settings = Settings(database_url=url, main_app_url=receiver_url, **overrides)
    runtime = Runtime(settings)
    started, cpu_started = time.perf_counter(), time.process_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        ready = time.perf_counter()
        recorder = runtime.recorder
        assert recorder is not None
        with trio.fail_after(600):
            while True:  # the runtime owns the recorder's listener, so poll its counter
                if recorder.rows_written >= total:
                    break
                await trio.sleep(0.005)
        finished, cpu_s = time.perf_counter(), time.process_time() - cpu_started
        totals = await users.status_totals(runtime.db)
        pool = runtime.db.stats()
        runtime.stop()
    sent = sum(r["n"] for r in totals if r.get("status") == "sent")
    return {
        "rows": total,
        "sent": sent,
        "seconds": finished - started,
        "startup_s": ready - started,
        "rate": total / (finished - started),
        "cpu_s": cpu_s,  # the sim process's CPU time (robust to a busy machine)
        "pool_size": pool.get("pool_size", 0),
        "pool_max": settings.pool_max_size,
        "abandoned": recorder.batches_abandoned,
    }


def sim_relay(args: dict[str, Any]) -> dict[str, Any]:
    """Run sim's pipeline until ``total`` outcomes are recorded."""
    result: dict[str, Any] = trio.run(
        _sim_relay, args["url"], args["receiver"], args["total"], args.get("overrides", {})
    )
    return result


# --- orchestration ---------------------------------------------------------------------------
@dataclass
class RelayResult:
    rows: int
    users: int
    sim: Series = field(default_factory=lambda: Series(()))
    pgq: Series = field(default_factory=lambda: Series(()))
    pgq_label: str = ""
    pgq_grid: dict[str, float] = field(default_factory=dict)
    sessions: list[int] = field(default_factory=list)
    peak_backends: list[int] = field(default_factory=list)
    transactions: list[int] = field(default_factory=list)
    pool_max: int = 0
    requests: list[int] = field(default_factory=list)
    sweep: dict[str, float] = field(default_factory=dict)

    @property
    def sim_over_pgq(self) -> Series:
        return ratio_series(self.sim, self.pgq)


class _BackendWatch:
    """Samples how many backends are connected to one database (from another database)."""

    def __init__(self, pg: BenchPostgres, database: str) -> None:
        self.conn = psycopg.connect(pg.url(), autocommit=True)
        self.database = database
        self.peak = 0

    def __call__(self) -> None:
        rows = self.conn.execute(
            "select count(*) from pg_stat_activity where datname = %s", (self.database,)
        ).fetchall()
        self.peak = max(self.peak, int(rows[0][0]))

    def close(self) -> None:
        self.conn.close()


def _sim_run(
    pg: BenchPostgres,
    receiver: Receiver,
    data: list[tuple[Any, ...]],
    n_users: int,
    per_user: int,
    overrides: dict[str, Any],
    log: IO[str],
) -> tuple[dict[str, Any], dict[str, int]]:
    url = pg.url(DB)
    copy_rows(url, data)
    seed_users(url, n_users, per_user)
    receiver.reset()
    watch = _BackendWatch(pg, DB)
    sessions, commits = pg.sessions(DB), pg.commits(DB)
    try:
        args = {"url": url, "receiver": receiver.ingest_url, "total": len(data)}
        out = run_worker("relay-sim", {**args, "overrides": overrides}, log=log, during=watch)
    finally:
        watch.close()
    time.sleep(0.6)  # let the backends' statistics reach pg_stat_database
    conn_stats = {
        "sessions": pg.sessions(DB) - sessions,
        "transactions": pg.commits(DB) - commits,
        "peak_backends": watch.peak,
    }
    stats = receiver.stats()
    if out["sent"] != len(data) or stats["unique"] != len(data):
        raise RuntimeError(
            f"relay: {out['sent']} sent, receiver has {stats['unique']} of {len(data)} unique"
        )
    conn_stats["requests"] = stats["requests"]
    return out, conn_stats


def _pgq_run(pg: BenchPostgres, jobs: int, consumers: int, batch: int, log: IO[str]) -> float:
    url = pg.create(PGQ_DB, schema=False)
    args = {"url": url, "jobs": jobs, "consumers": consumers, "batch": batch, "driver": "asyncpg"}
    out = run_worker("pgq", args, log=log)
    if out["done"] != jobs or out["left"]:
        raise RuntimeError(f"pgqueuer: {out['done']} of {jobs} jobs done, {out['left']} left")
    return float(out["rate"])


def run_relay(
    pg: BenchPostgres,
    receiver: Receiver,
    *,
    rows: int,
    n_users: int,
    rounds: int,
    quick: bool,
    log: IO[str],
    say: Any,
) -> RelayResult:
    pg.create(DB)
    per_user = rows // n_users
    data = list(outbox_rows(n_users, per_user))
    result = RelayResult(rows=len(data), users=n_users, pool_max=Settings().pool_max_size)

    # pgqueuer at its benchmark tool's defaults (5 consumers x batch 10) and with the
    # bigger batches it needs to go fast; the best screening run is what sim is compared
    # with in each round
    pgq_variants = [(5, 100), (1, 1000)] if quick else [(5, 10), (5, 100), (2, 500), (1, 1000)]
    for consumers, batch in pgq_variants:
        rate = _pgq_run(pg, len(data), consumers, batch, log)
        result.pgq_grid[f"{consumers} consumers x batch {batch}"] = rate
        say(f"  pgqueuer {consumers} consumers x batch {batch}: {rate:,.0f} jobs/s")
    best = max(result.pgq_grid, key=lambda k: result.pgq_grid[k])
    result.pgq_label = best
    consumers, batch = next((c, b) for c, b in pgq_variants if f"{c} consumers x batch {b}" == best)
    sim_rates: list[float] = []
    pgq_rates: list[float] = []
    for r in range(rounds):
        order = ["sim", "pgq"] if r % 2 == 0 else ["pgq", "sim"]
        for which in order:
            if which == "sim":
                out, conns = _sim_run(pg, receiver, data, n_users, per_user, {}, log)
                sim_rates.append(out["rate"])
                result.sessions.append(conns["sessions"])
                result.peak_backends.append(conns["peak_backends"])
                result.transactions.append(conns["transactions"])
                result.requests.append(conns["requests"])
            else:
                pgq_rates.append(_pgq_run(pg, len(data), consumers, batch, log))
        say(
            f"  round {r + 1}: sim {sim_rates[-1]:,.0f}/s, pgqueuer {pgq_rates[-1]:,.0f}/s; "
            f"sim opened {result.sessions[-1]} sessions (peak {result.peak_backends[-1]} "
            f"backends) for {result.transactions[-1]:,} transactions"
        )
    result.sim, result.pgq = Series.of(sim_rates), Series.of(pgq_rates)
    pg.drop(DB)
    pg.drop(PGQ_DB)
    return result


def sweep_relay(
    pg: BenchPostgres,
    receiver: Receiver,
    *,
    rows: int,
    n_users: int,
    variants: list[dict[str, Any]],
    log: IO[str],
    say: Any,
) -> dict[str, float]:
    """One run per settings variant (for choosing defaults); label → interactions/s."""
    pg.create(DB)
    per_user = rows // n_users
    data = list(outbox_rows(n_users, per_user))
    found: dict[str, float] = {}
    for overrides in variants:
        label = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "defaults"
        out, _ = _sim_run(pg, receiver, data, n_users, per_user, overrides, log)
        found[label] = out["rate"]
        say(f"  sim {label}: {out['rate']:,.0f}/s")
    pg.drop(DB)
    return found
