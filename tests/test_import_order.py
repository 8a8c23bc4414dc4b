"""Importing psycopg before sim must not break the pool (sim.db.pool repairs the trap)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]

# psycopg and psycopg_pool first: psycopg.waiting binds asyncio's get_running_loop
# before trio_asyncio has had a chance to patch it.
SCRIPT = textwrap.dedent(
    """
    import psycopg, psycopg_pool
    import sys
    assert "trio_asyncio" not in sys.modules, "the trap was not set up"
    original = psycopg.waiting.get_running_loop

    import os
    import trio
    from sim.db import Database
    from sim.errors import DatabaseUnavailable
    from sim.settings import Settings

    if os.environ.get("UNDO_REPAIR"):  # the control: put the trap back as it was
        psycopg.waiting.get_running_loop = original

    async def one(conn):
        cur = await conn.execute("select 1 as one")
        return (await cur.fetchone())["one"]

    async def main():
        url = os.environ["SIM_TEST_DB_URL"]
        s = Settings(database_url=url, pool_min_size=1, pool_max_size=1, pool_open_timeout_s=3)
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                try:
                    db = await nursery.start(Database(s, url).run)
                except DatabaseUnavailable as exc:
                    print("unavailable:", exc)
                    return 3
                print("select 1 ->", await db.transaction(one))
                db.close()
        print("closed")
        return 0

    sys.exit(trio.run(main))
    """
)


async def _run(db_url: str, *, undo_repair: bool = False) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_", "DATABASE_URL"))}
    env["SIM_TEST_DB_URL"] = db_url
    if undo_repair:
        env["UNDO_REPAIR"] = "1"
    with trio.fail_after(60):
        return await trio.run_process(
            [sys.executable, "-c", SCRIPT],
            env=env,
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


async def test_psycopg_imported_first_still_opens_the_pool(db_url: str) -> None:
    """With psycopg imported before sim, a Database opens, runs select 1 and closes."""
    done = await _run(db_url)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert out.splitlines() == ["select 1 -> 1", "closed"]


async def test_without_the_repair_the_pool_never_opens(db_url: str) -> None:
    """Control: undoing sim's repair brings the trap back (so the test above proves something)."""
    done = await _run(db_url, undo_repair=True)
    out = done.stdout.decode()
    assert done.returncode == 3, f"stdout:\n{out}\nstderr:\n{done.stderr.decode()}"
    assert out.startswith("unavailable:")


def test_psycopg_still_binds_get_running_loop_where_the_repair_expects_it() -> None:
    """psycopg.waiting has ``get_running_loop``; after sim's import it is asyncio's patched one."""
    import asyncio

    import psycopg.waiting

    import sim.db.pool  # noqa: F401  (the import performs the repair when needed)

    bound = getattr(psycopg.waiting, "get_running_loop", None)
    assert bound is not None, "psycopg.waiting no longer binds get_running_loop: revisit the repair"
    assert bound is asyncio.get_running_loop
