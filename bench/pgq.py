"""pgqueuer's own no-op job throughput, the way its drain benchmark measures it.

Runs in a worker process (``python -m bench.worker pgq``): install pgqueuer's schema
in an empty database, enqueue ``jobs`` empty jobs in batches (not timed), then start
``consumers`` queue managers, each on its own connection, dequeuing ``batch`` jobs at
a time into an entrypoint that does nothing, in drain mode; the time from their start
to the last one returning is the measurement. pgqueuer's benchmark tool runs under
uvloop with asyncpg by default; so does this.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from typing import Any

__all__ = ["pgq_drain"]

ENTRYPOINT = "noop"


def _module(name: str) -> Any:
    # imported by name: pgqueuer, asyncpg and uvloop come with the ``bench`` extra only,
    # and the type checker runs without it
    return importlib.import_module(name)


async def _driver(url: str, kind: str) -> Any:
    pgqueuer = _module("pgqueuer")
    if kind == "asyncpg":
        return pgqueuer.AsyncpgDriver(await _module("asyncpg").connect(dsn=url))
    psycopg = _module("psycopg")
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    return pgqueuer.PsycopgDriver(conn)


async def _drain(
    url: str, jobs: int, consumers: int, batch: int, driver: str, settle: bool
) -> dict[str, Any]:
    pgqueuer = _module("pgqueuer")
    drain = _module("pgqueuer.domain.types").QueueExecutionMode.drain

    setup = pgqueuer.Queries(await _driver(url, driver))
    await setup.install()
    chunk = 10_000
    for start in range(0, jobs, chunk):
        n = min(chunk, jobs - start)
        await setup.enqueue([ENTRYPOINT] * n, [b""] * n, [0] * n)
    if settle:  # as sim's rows get before a run: vacuumed, analysed, checkpointed
        await setup.driver.execute("VACUUM (ANALYZE)")
        await setup.driver.execute("CHECKPOINT")

    done = 0

    async def noop(job: Any) -> None:
        nonlocal done
        done += 1

    pgqs = []
    for _ in range(consumers):
        pgq = pgqueuer.PgQueuer(await _driver(url, driver))
        pgq.entrypoint(ENTRYPOINT)(noop)
        pgqs.append(pgq)
    started = time.perf_counter()
    await asyncio.gather(*(p.run(batch_size=batch, mode=drain) for p in pgqs))
    elapsed = time.perf_counter() - started
    left = sum(s.count for s in await setup.queue_size() if s.status == "queued")
    return {
        "jobs": jobs,
        "done": done,
        "left": left,
        "seconds": elapsed,
        "rate": done / elapsed,
        "consumers": consumers,
        "batch": batch,
        "driver": driver,
    }


def pgq_drain(args: dict[str, Any]) -> dict[str, Any]:
    logging.getLogger("pgqueuer").setLevel(logging.WARNING)
    coro = _drain(
        args["url"],
        args["jobs"],
        args["consumers"],
        args["batch"],
        args["driver"],
        args.get("settle", True),
    )
    try:
        uvloop = _module("uvloop")
    except ImportError:  # pgqueuer depends on uvloop on Linux; elsewhere plain asyncio
        result: dict[str, Any] = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    return result
