"""Embedded PostgreSQL when DATABASE_URL is unset: started, kept across restarts, stopped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from conftest import sql

from sim.db import DatabaseLocation, create_database, locate_database
from sim.db.embedded import EmbeddedPostgres
from sim.settings import Settings


def _postgres_pids(pgdata: Path) -> list[int]:
    """PIDs of processes whose command line names ``pgdata`` (a postmaster serving it)."""
    found = subprocess.run(
        ["pgrep", "-f", str(pgdata)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """sim's data directory, outside pytest's basetemp; no postgres of it may outlive the test.

    Outside basetemp because, as root, pgserver runs PostgreSQL as the ``pgserver``
    user, and every pytest session that starts (another engineer's, say) resets
    /tmp/pytest-of-root to 0700, which makes initdb and pg_ctl fail for a while.
    """
    home = Path(tempfile.mkdtemp(prefix="sim-test-data-"))
    pgdata = (home / "pg").resolve()
    try:
        yield home
    finally:
        strays = _postgres_pids(pgdata)
        for pid in strays:
            os.kill(pid, signal.SIGINT)  # "fast" shutdown
        deadline = time.monotonic() + 10
        while _postgres_pids(pgdata) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(home, ignore_errors=True)
        assert strays == [], f"postgres processes outlived the test: {strays}"


async def _locate(settings: Settings) -> DatabaseLocation:
    with trio.fail_after(60):
        return await locate_database(settings)


async def _release(location: DatabaseLocation) -> None:
    with trio.fail_after(30):
        await trio.to_thread.run_sync(location.release)


async def test_embedded_postgres_starts_persists_and_stops(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No DATABASE_URL: a 'sim' database in data_dir/pg, kept over a restart, stopped on release."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings.from_env({}).replace(data_dir=data_dir)
    assert settings.database_url is None
    pgdata = (data_dir / "pg").resolve()

    location = await _locate(settings)
    try:
        assert location.embedded is not None
        assert location.embedded.pgdata == pgdata
        assert (pgdata / "PG_VERSION").is_file()
        assert _postgres_pids(pgdata), "no postgres process serves data_dir/pg"
        url = location.conninfo
        assert sql(url, "select current_database()") == [("sim",)]
        sql(url, "create table survivor (id int primary key, note text)")
        sql(url, "insert into survivor values (1, 'written before the restart')")
    finally:
        await _release(location)
    assert location.embedded is None
    assert _postgres_pids(pgdata) == [], "release() left postgres running"

    again = await _locate(settings)
    try:
        assert again.embedded is not None and again.embedded.pgdata == pgdata
        assert again.conninfo == url
        assert sql(again.conninfo, "select id, note from survivor") == [
            (1, "written before the restart")
        ]
        dbs = sql(again.conninfo, "select datname from pg_database where datname = 'sim'")
        assert dbs == [("sim",)]
    finally:
        await _release(again)
    assert _postgres_pids(pgdata) == [], "release() left postgres running"


async def test_database_url_skips_embedded(
    db_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a database URL nothing is started and nothing is created in data_dir."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    settings = Settings.from_env({"DATABASE_URL": db_url}).replace(data_dir=data_dir)
    location = await _locate(settings)
    assert location.conninfo == db_url and location.embedded is None
    await _release(location)
    assert not (data_dir / "pg").exists()


async def test_create_database_is_safe_to_race(pg_server: EmbeddedPostgres) -> None:
    """Three at once creating one database: one creates it, the others find it, none fails."""
    admin = pg_server.url("postgres")
    names = [f"race_{uuid.uuid4().hex[:10]}" for _ in range(5)]
    try:
        for name in names:
            results: list[bool] = []

            async def create(name: str, results: list[bool]) -> None:
                results.append(await create_database(admin, name))

            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    for _ in range(3):
                        nursery.start_soon(create, name, results)
            assert sorted(results) == [False, False, True]
    finally:
        for name in names:
            sql(admin, f"drop database if exists {name} with (force)")


# --- pgserver internals that EmbeddedPostgres.stop uses (pyproject bounds pgserver) ----------
def test_pgserver_internals_have_the_shape_stop_relies_on(pg_server: EmbeddedPostgres) -> None:
    """The inter-process ``_lock`` and the ``global_process_id_list`` of holder pids exist."""
    server = pg_server.server
    lock = server._lock
    for name in ("acquire", "release", "__enter__", "__exit__"):
        assert callable(getattr(lock, name, None)), f"pgserver's _lock has no {name}"
    handles = server.global_process_id_list
    assert callable(handles.put)
    pids = handles.get()
    assert isinstance(pids, list) and all(isinstance(p, int) for p in pids)
    assert os.getpid() in pids, "pgserver no longer lists this process as a holder"


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


async def test_a_dead_holder_does_not_keep_the_server_up(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder killed without cleanup is forgotten: release() still stops PostgreSQL."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings.from_env({}).replace(data_dir=data_dir)
    pgdata = (data_dir / "pg").resolve()
    location = await _locate(settings)
    try:
        assert location.embedded is not None
        handles = location.embedded.server.global_process_id_list
        dead = _dead_pid()
        handles.put([*handles.get(), dead])
        assert dead in handles.get()
    finally:
        await _release(location)
    assert _postgres_pids(pgdata) == [], "a dead holder kept postgres running"
