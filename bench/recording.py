"""Recording throughput: mark N delivered interactions ``sent``, three ways, side by side.

(a) the old service's method: sync psycopg, ``UPDATE ... WHERE id IN (50 ids)`` one batch
    at a time, committed each, a new connection every 200 rows, on the table as the old
    service had it: with a unique index on ``id`` (created for these runs only);
(b) sim's ``Recorder`` as shipped (the ``Settings`` defaults) writing through
    ``sim.db.outbox.record``, fed as the senders feed it (lists of ``send_batch_size``);
(c) raw psycopg (asyncio, one connection per concurrent writer) over a small grid of
    batch size x concurrency x (``seq = any(%s)`` per user | ``from unnest(%s, %s)``): the
    ceiling.

Every run starts from the same table: the rows COPYed afresh, VACUUM ANALYZE, CHECKPOINT.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

import psycopg
import trio

from bench.data import outbox_rows, seed_users
from bench.pg import BenchPostgres, copy_rows, execute, query
from bench.proc import run_worker
from bench.stats import Series, ratio_series
from sim.db import Database, outbox
from sim.db.outbox import Outcome
from sim.metrics import Metrics
from sim.pipeline.recorder import Recorder
from sim.settings import Settings

__all__ = ["RecordingResult", "old_method", "raw_variant", "run_recording", "sim_recorder"]

DB = "bench_recording"

# rows are addressed by their key, (user_id, seq): one statement per user in the batch
_ANY = (
    "update interactions set status = 'sent', sent_at = now()"
    " where user_id = %s and seq = any(%s::int8[])"
)
_UNNEST = (
    "update interactions i set status = 'sent', sent_at = now()"
    " from unnest(%s::text[], %s::int8[]) as u(user_id, seq)"
    " where i.user_id = u.user_id and i.seq = u.seq"
)

OLD_ID_INDEX = "create unique index interactions_old_id on interactions (id)"
#: the old service's method: ids per UPDATE, and rows per connection
OLD_BATCH = 50
OLD_PER_SESSION = 200
#: the users the recording table's rows belong to
USERS = 10

Delivered = tuple[uuid.UUID, str, int, str, uuid.UUID]  # id, user_id, seq, kind, run_id


def _delivered(url: str) -> list[Delivered]:
    rows = query(
        url,
        "select i.id, i.user_id, i.seq, i.kind, d.run_id from interactions i"
        " join demo_users d using (user_id) where i.status = 'sending'",
    )
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def _result(n: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"rows": n, "seconds": seconds, "rate": n / seconds, **extra}


# --- worker side (each runs in its own process) ------------------------------------------
def old_method(args: dict[str, Any]) -> dict[str, Any]:
    """(a): 50-row ``IN (...)`` UPDATEs by id, commit each, a new session every 200 rows."""
    url = args["url"]
    ids = [i for i, _, _, _, _ in _delivered(url)]
    batch, per_session = OLD_BATCH, OLD_PER_SESSION
    sessions = 0
    started = time.perf_counter()
    conn: psycopg.Connection[Any] | None = None
    try:
        for start in range(0, len(ids), batch):
            if start % per_session == 0:
                if conn is not None:
                    conn.close()
                conn = psycopg.connect(url)
                sessions += 1
            assert conn is not None
            chunk = ids[start : start + batch]
            marks = ", ".join(["%s"] * len(chunk))
            conn.execute(
                f"UPDATE interactions SET status = 'sent', sent_at = now() WHERE id IN ({marks})",
                chunk,
            )
            conn.commit()
    finally:
        if conn is not None:
            conn.close()
    return _result(len(ids), time.perf_counter() - started, sessions=sessions)


async def _sim_recorder(url: str, overrides: dict[str, Any]) -> dict[str, Any]:
    settings = Settings(database_url=url, **overrides)
    delivered = await trio.to_thread.run_sync(_delivered, url)
    outcomes = [
        Outcome(i, user, seq, kind, "sent", run_id=run) for i, user, seq, kind, run in delivered
    ]
    step = settings.send_batch_size
    async with trio.open_nursery() as nursery:
        db: Database = await nursery.start(Database(settings, url).run)
        recorder = Recorder(settings, Metrics(), partial(outbox.record, db))
        started = time.perf_counter()
        async with trio.open_nursery() as recording:
            await recording.start(recorder.run)
            for start in range(0, len(outcomes), step):
                await recorder.submit(outcomes[start : start + step])
            recorder.close()
        seconds = time.perf_counter() - started
        db.close()
    return _result(
        recorder.rows_written,
        seconds,
        abandoned=recorder.batches_abandoned,
        batch=settings.record_batch_size,
        concurrency=settings.record_concurrency,
    )


def sim_recorder(args: dict[str, Any]) -> dict[str, Any]:
    """(b): sim's ``Recorder`` with the shipped defaults (or ``overrides``)."""
    result: dict[str, Any] = trio.run(_sim_recorder, args["url"], args.get("overrides", {}))
    return result


async def _raw(url: str, batch: int, concurrency: int, method: str) -> dict[str, Any]:
    keys = [(user, seq) for _, user, seq, _, _ in _delivered(url)]
    chunks = iter([keys[s : s + batch] for s in range(0, len(keys), batch)])
    conns = [await psycopg.AsyncConnection.connect(url) for _ in range(concurrency)]

    async def write(conn: psycopg.AsyncConnection[Any], chunk: list[tuple[str, int]]) -> None:
        if method == "unnest":
            await conn.execute(_UNNEST, ([u for u, _ in chunk], [s for _, s in chunk]))
            return
        per_user: dict[str, list[int]] = {}
        for user, seq in chunk:
            per_user.setdefault(user, []).append(seq)
        for user, seqs in per_user.items():
            await conn.execute(_ANY, (user, seqs))

    async def writer(conn: psycopg.AsyncConnection[Any]) -> None:
        for chunk in chunks:  # a shared iterator: each chunk is taken once
            await write(conn, chunk)
            await conn.commit()

    started = time.perf_counter()
    await asyncio.gather(*(writer(c) for c in conns))
    seconds = time.perf_counter() - started
    for c in conns:
        await c.close()
    return _result(len(keys), seconds, batch=batch, concurrency=concurrency, method=method)


def raw_variant(args: dict[str, Any]) -> dict[str, Any]:
    """(c): one raw psycopg variant of the grid."""
    return asyncio.run(_raw(args["url"], args["batch"], args["concurrency"], args["method"]))


# --- orchestration -----------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    batch: int
    concurrency: int
    method: str

    @property
    def label(self) -> str:
        return f"{self.batch:,} x {self.concurrency}, {self.method}"


@dataclass
class RecordingResult:
    rows: int
    old: Series = field(default_factory=lambda: Series(()))
    sim: Series = field(default_factory=lambda: Series(()))
    ceiling: Series = field(default_factory=lambda: Series(()))
    ceiling_label: list[str] = field(default_factory=list)
    grid: dict[Variant, float] = field(default_factory=dict)
    old_sessions: int = 0
    sim_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def sim_over_old(self) -> Series:
        return ratio_series(self.sim, self.old)

    @property
    def sim_over_ceiling(self) -> Series:
        return ratio_series(self.sim, self.ceiling)


def _grid(quick: bool) -> list[Variant]:
    batches = (1000, 5000) if quick else (1000, 5000, 20_000)
    concurrencies = (1, 4) if quick else (1, 2, 4)
    return [Variant(b, c, m) for b in batches for c in concurrencies for m in ("any", "unnest")]


def _rotations(items: Sequence[str], rounds: int) -> Iterator[list[str]]:
    for r in range(rounds):
        k = r % len(items)
        yield [*items[k:], *items[:k]]


def _database(pg: BenchPostgres, rows: int) -> tuple[str, list[tuple[Any, ...]]]:
    """A fresh database, its 10 users (outcomes are recorded within their runs) and the
    ``rows`` to COPY in before each run."""
    url = pg.create(DB)
    seed_users(url, USERS, rows // USERS)
    return url, list(outbox_rows(10, rows // 10, status="sending"))


def run_recording(
    pg: BenchPostgres, *, rows: int, rounds: int, quick: bool, log: IO[str], say: Any
) -> RecordingResult:
    url, data = _database(pg, rows)
    result = RecordingResult(rows=len(data))

    def measured(kind: str, args: dict[str, Any]) -> dict[str, Any]:
        copy_rows(url, data)
        old = kind == "recording-old"
        if old:  # the old service's table was keyed by id
            execute(url, OLD_ID_INDEX, "vacuum (analyze) interactions", "checkpoint")
        before = pg.sessions(DB)
        try:
            out = run_worker(kind, {"url": url, **args}, log=log)
        finally:
            if old:
                execute(url, "drop index if exists interactions_old_id")
        out["sessions_opened"] = pg.sessions(DB) - before
        sent = query(url, "select count(*) from interactions where status = 'sent'")[0][0]
        if sent != len(data):
            raise RuntimeError(f"{kind} {args}: {sent} of {len(data)} rows marked sent")
        return out

    say(f"recording: screening {len(_grid(quick))} raw variants on {len(data):,} rows")
    for v in _grid(quick):
        out = measured(
            "recording-raw", {"batch": v.batch, "concurrency": v.concurrency, "method": v.method}
        )
        result.grid[v] = out["rate"]
        say(f"  raw {v.label}: {out['rate']:,.0f} rows/s")
    top = sorted(result.grid, key=lambda v: -result.grid[v])[: 2 if quick else 3]
    old: list[float] = []
    sim: list[float] = []
    ceiling: list[float] = []
    for r, order in enumerate(_rotations(["old", "sim", "raw"], rounds)):
        best_label, best = "", 0.0
        for which in order:
            if which == "old":
                out = measured("recording-old", {})
                old.append(out["rate"])
                result.old_sessions = out["sessions_opened"]
            elif which == "sim":
                out = measured("recording-sim", {})
                sim.append(out["rate"])
            else:
                for v in top:
                    args = {"batch": v.batch, "concurrency": v.concurrency, "method": v.method}
                    out = measured("recording-raw", args)
                    if out["rate"] > best:
                        best, best_label = out["rate"], v.label
                ceiling.append(best)
                result.ceiling_label.append(best_label)
        say(
            f"  round {r + 1}: old {old[-1]:,.0f}, sim {sim[-1]:,.0f}, "
            f"ceiling {ceiling[-1]:,.0f} rows/s ({best_label})"
        )
    result.old, result.sim, result.ceiling = Series.of(old), Series.of(sim), Series.of(ceiling)
    pg.drop(DB)
    return result


def sweep_recorder(
    pg: BenchPostgres,
    *,
    rows: int,
    variants: list[dict[str, Any]],
    log: IO[str],
    say: Any,
) -> dict[str, float]:
    """sim's recorder with other settings, one run each (for choosing defaults)."""
    url, data = _database(pg, rows)
    found: dict[str, float] = {}
    for overrides in variants:
        label = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "defaults"
        copy_rows(url, data)
        out = run_worker("recording-sim", {"url": url, "overrides": overrides}, log=log)
        found[label] = out["rate"]
        say(f"  recorder {label}: {out['rate']:,.0f} rows/s")
    pg.drop(DB)
    return found
