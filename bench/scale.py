"""Scale curve: 10k, 100k and 1M interactions end to end through the sim app.

The API caps one user's initial burst (10,000 comments, 10,000 DMs, 1,000 videos), so
N interactions are N / 10,000 users of 10,000 each (385 videos, 4,808 comments, 4,807
DMs), all turned on at once through ``PUT /v1/users/{id}/demo``. sim runs under
hypercorn exactly as ``make run`` runs it, delivering to the ack-only receiver. The time
is PostgreSQL's own: the first user's ``enabled_at`` to the last user's ``live_at``,
which sim sets once every initial item of the user is recorded (generate → store →
deliver → record). Peak RSS is the kernel's high-water mark (VmHWM) of sim's process.
Generation alone (``OfflineProvider`` + ``to_rows``, no database) is timed separately.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import psycopg

from bench.data import demo_spec
from bench.pg import BenchPostgres, query
from bench.proc import Receiver, run_worker, sim_app
from bench.stats import Series

__all__ = ["ScalePoint", "generation_rate", "run_scale"]

DB = "bench_scale"
PER_USER = 10_000


# --- worker side -----------------------------------------------------------------------------
def generation_rate(args: dict[str, Any]) -> dict[str, Any]:
    """Items per second of sim's generator and row building, without a database."""
    from sim.pipeline.content import OfflineProvider
    from sim.pipeline.store import to_rows
    from sim.settings import Settings

    total, per_user = args["total"], args.get("per_user", PER_USER)
    batch = Settings().store_batch_size
    provider = OfflineProvider()
    made = 0
    started = time.perf_counter()
    for u in range(max(1, total // per_user)):
        run_id = uuid.uuid4()
        anchor = datetime.now(UTC)
        for drafts in provider.initial(demo_spec(min(per_user, total), u), batch):
            made += len(to_rows(f"gen-{u}", run_id, anchor, drafts))
    seconds = time.perf_counter() - started
    return {"rows": made, "seconds": seconds, "rate": made / seconds}


# --- orchestration ---------------------------------------------------------------------------
@dataclass
class ScalePoint:
    total: int
    users: int
    seconds: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    idle_rss_mb: list[float] = field(default_factory=list)
    peak_backends: list[int] = field(default_factory=list)
    generation: list[float] = field(default_factory=list)

    @property
    def per_1000_ms(self) -> Series:
        return Series.of([s / self.total * 1000 * 1000 for s in self.seconds])

    @property
    def rate(self) -> Series:
        return Series.of([self.total / s for s in self.seconds])


def _one_run(
    pg: BenchPostgres, receiver: Receiver, total: int, log: IO[str]
) -> tuple[float, float, float, int]:
    url = pg.create(DB, schema=False)
    receiver.reset()
    n_users = max(1, total // PER_USER)
    per_user = min(PER_USER, total)
    spec = demo_spec(per_user)
    body = {
        "videos": spec.videos,
        "comments": spec.comments,
        "dms": spec.dms,
        "live_per_minute": 0,
        "seed": 7,
    }
    env = {
        "DATABASE_URL": url,
        "SIM_MAIN_APP_URL": receiver.ingest_url,
        "SIM_MAX_ROWS_PER_USER": str(per_user),
    }
    with sim_app(env, log=log) as app, psycopg.connect(url, autocommit=True) as watch:
        idle = app.rss_mb()
        for u in range(n_users):
            response = app.client.put(f"{app.url}/v1/users/scale-{u:04d}/demo", json=body)
            if response.status_code != 202:
                raise RuntimeError(f"PUT demo: HTTP {response.status_code}: {response.text}")
        deadline = time.monotonic() + 1800
        backends = 0
        while True:
            row = watch.execute(
                "select count(*) filter (where live_at is null),"
                " extract(epoch from max(live_at) - min(enabled_at)),"
                " (select count(*) from pg_stat_activity"
                "   where datname = current_database() and application_name = 'sim')"
                " from demo_users"
            ).fetchone()
            assert row is not None
            backends = max(backends, int(row[2]))
            if row[0] == 0:
                seconds = float(row[1])
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"scale {total}: not finished within 30 minutes")
            time.sleep(0.2)
        peak = app.peak_rss_mb()
    stats = receiver.stats()
    sent = query(url, "select count(*) from interactions where status = 'sent'")[0][0]
    if sent != n_users * per_user or stats["unique"] != sent:
        raise RuntimeError(f"scale {total}: {sent} sent, receiver has {stats['unique']} unique")
    pg.drop(DB)
    return seconds, peak, idle, backends


def run_scale(
    pg: BenchPostgres,
    receiver: Receiver,
    *,
    sizes: list[tuple[int, int]],
    log: IO[str],
    say: Any,
) -> list[ScalePoint]:
    """``sizes``: (interactions, repeats). Sizes alternate round by round."""
    points = {total: ScalePoint(total, max(1, total // PER_USER)) for total, _ in sizes}
    rounds = max(r for _, r in sizes)
    for r in range(rounds):
        for total, repeats in sizes:
            if r >= repeats:
                continue
            point = points[total]
            gen = run_worker("generate", {"total": min(total, 100_000)}, log=log)
            point.generation.append(gen["rate"])
            seconds, peak, idle, backends = _one_run(pg, receiver, total, log)
            point.seconds.append(seconds)
            point.peak_backends.append(backends)
            point.peak_rss_mb.append(peak)
            point.idle_rss_mb.append(idle)
            say(
                f"  {total:,}: {seconds:.1f} s ({seconds / total * 1e6:.0f} ms per 1,000), "
                f"peak RSS {peak:.0f} MB (idle {idle:.0f}), generation alone "
                f"{gen['rate']:,.0f}/s, peak {backends} backends"
            )
    return list(points.values())
