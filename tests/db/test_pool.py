"""The pool against real embedded PostgreSQL: lifetime, cancellation, breakage, errors."""

from __future__ import annotations

import asyncio
import gc
import inspect
import warnings
from collections import deque
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import psycopg
import psycopg_pool
import pytest
import trio
from conftest import free_port, sql

from sim.db import Conn, Database
from sim.db.migrate import _LOCK_KEY, apply_migrations
from sim.db.pool import _LifoPool
from sim.errors import DatabaseError, DatabaseUnavailable, QueryTimeout
from sim.settings import Settings


async def _one(conn: Conn, query: str) -> Any:
    cur = await conn.execute(query.encode())
    row = await cur.fetchone()
    assert row is not None
    return next(iter(row.values()))


async def _backend_pid(conn: Conn) -> int:
    return int(await _one(conn, "select pg_backend_pid()"))


async def _sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """``sql()`` in a worker thread, so the Trio loop (and the pool) keep running."""
    return await trio.to_thread.run_sync(sql, url, query, params)


async def _opened(settings: Settings, nursery: trio.Nursery, **changes: Any) -> Database:
    """A ``Database`` on the test's database with ``changes`` to its settings, open."""
    assert settings.database_url
    database = Database(settings.replace(**changes), settings.database_url)
    with trio.fail_after(15):
        await nursery.start(database.run)
    return database


@pytest.fixture
async def db1(settings: Settings, nursery: trio.Nursery) -> AsyncIterator[Database]:
    """An open ``Database`` with exactly one pooled connection."""
    database = await _opened(settings, nursery, pool_min_size=1, pool_max_size=1, pool_timeout_s=5)
    yield database
    database.close()
    await database.wait_closed(10)


async def test_pool_opens_serves_and_closes_without_warnings(settings: Settings) -> None:
    """The pool opens, runs a transaction on the asyncio side, and closes with no warnings."""
    assert settings.database_url
    database = Database(settings, settings.database_url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                started = await nursery.start(database.run)
                assert started is database and database.is_open

                async def fn(conn: Conn) -> tuple[int, str]:
                    cur = await conn.execute("select 41 + 1 as answer, current_database() as db")
                    row = await cur.fetchone()
                    assert row is not None
                    return row["answer"], row["db"]

                answer, dbname = await database.transaction(fn)
                assert answer == 42
                assert settings.database_url.split("?")[0].endswith("/" + dbname)
                stats = database.stats()
                assert stats["pool_min"] == settings.pool_min_size
                assert stats["pool_max"] == settings.pool_max_size
                database.close()
            await database.wait_closed(5)
        assert not database.is_open
        assert database.stats() == {}
        gc.collect()  # surface ResourceWarnings of anything left unclosed
    assert [str(w.message) for w in caught] == []


async def test_closed_database_refuses_work(settings: Settings) -> None:
    """Before ``run`` and after ``close`` a transaction raises DatabaseUnavailable."""
    assert settings.database_url
    database = Database(settings, settings.database_url)
    with pytest.raises(DatabaseUnavailable):
        await database.transaction(_backend_pid)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(database.run)
            database.close()
    with pytest.raises(DatabaseUnavailable):
        await database.transaction(_backend_pid)


async def test_cancelled_query_stops_on_the_server_and_connection_is_reused(
    db1: Database, db_url: str
) -> None:
    """A cancel scope around pg_sleep(60) returns at once, the server stops it, the pool goes on."""
    pid_before = await db1.transaction(_backend_pid)

    # the guard is far below the statement's 60 s: only a cancelled statement returns in time
    with trio.fail_after(30), trio.move_on_after(0.2) as scope:
        await db1.transaction(_one, "select pg_sleep(60)")
    assert scope.cancelled_caught

    with trio.fail_after(30):  # until the server has stopped the statement
        while True:
            still_active = await _sql(
                db_url,
                "select pid, state, query from pg_stat_activity"
                " where datname = current_database() and pid <> pg_backend_pid()"
                " and state = 'active' and query like %s",
                ("%pg_sleep(60)%",),
            )
            if not still_active:
                break
            await trio.sleep(0.05)

    with trio.fail_after(30):
        pid_after = await db1.transaction(_backend_pid)
    assert pid_after == pid_before, "the one pooled connection should have been reused"
    assert db1.stats()["pool_size"] == 1


async def test_statement_runs_without_begin_and_hands_the_connection_back_transactional(
    db1: Database,
) -> None:
    """``statement`` runs autocommit (each statement its own transaction); the pooled
    connection comes back in transaction mode, for ``transaction`` to use."""

    async def two_statements(conn: Conn) -> tuple[bool, Any, Any]:
        autocommit = conn.autocommit
        first = await _one(conn, "select txid_current()")
        second = await _one(conn, "select txid_current()")
        return autocommit, first, second

    autocommit, first, second = await db1.statement(two_statements)
    assert autocommit
    assert first != second, "each statement is a transaction of its own"

    async def in_transaction(conn: Conn) -> tuple[bool, Any, Any]:
        return await two_statements(conn)

    autocommit, first, second = await db1.transaction(in_transaction)
    assert not autocommit
    assert first == second, "transaction runs its statements in one"
    assert db1.stats()["pool_size"] == 1


async def test_cancelled_statement_is_not_pooled_in_autocommit_mode(
    db1: Database, db_url: str
) -> None:
    """A statement cancelled mid-way closes its connection; the pool replaces it and
    ``transaction`` still gets a transactional one."""
    with trio.fail_after(30), trio.move_on_after(0.2) as scope:
        await db1.statement(_one, "select pg_sleep(60)")
    assert scope.cancelled_caught

    async def autocommit(conn: Conn) -> bool:
        return conn.autocommit

    with trio.fail_after(30):
        assert await db1.transaction(autocommit) is False
        assert await db1.transaction(_one, "select 1") == 1


async def test_pool_hands_out_the_most_recently_returned_connection(
    settings: Settings, nursery: trio.Nursery
) -> None:
    """Checkouts are LIFO: one after another they reuse one warm backend, not all in turn."""
    assert settings.database_url
    three = settings.replace(pool_min_size=3, pool_max_size=3, pool_timeout_s=5)
    database = Database(three, settings.database_url)
    with trio.fail_after(15):
        await nursery.start(database.run)
        assert database.stats()["pool_size"] == 3
        pids = [await database.transaction(_backend_pid) for _ in range(6)]
        assert len(set(pids)) == 1, pids

    database.close()
    await database.wait_closed(10)


# --- psycopg_pool internals that _LifoPool overrides (pyproject bounds psycopg-pool) -----------
def test_pool_internals_have_the_shape_lifo_pool_relies_on() -> None:
    """``_get_ready_connection(timeout)``, the ``_pool`` deque and ``_nconns_min`` still exist."""
    stock = psycopg_pool.AsyncConnectionPool._get_ready_connection
    assert inspect.iscoroutinefunction(stock)
    assert list(inspect.signature(stock).parameters) == ["self", "timeout"]
    assert _LifoPool._get_ready_connection is not stock
    assert inspect.iscoroutinefunction(psycopg_pool.AsyncConnectionPool._shrink_pool)
    pool = psycopg_pool.AsyncConnectionPool("", open=False, min_size=2, max_size=4)
    assert isinstance(pool._pool, deque)
    assert isinstance(pool._nconns_min, int)


def _first_checkout(cls: type[psycopg_pool.AsyncConnectionPool[Any]]) -> tuple[Any, list[Any], int]:
    """(connection handed out, the idle ones left, ``_nconns_min``) from idle a, b, c."""

    async def checkout() -> tuple[Any, list[Any], int]:
        pool = cls("", open=False, min_size=3, max_size=3)
        pool._pool.extend(["a", "b", "c"])  # oldest returned first, as putconn appends
        pool._nconns_min = 3
        conn = await pool._get_ready_connection(1.0)
        return conn, list(pool._pool), pool._nconns_min

    return asyncio.run(checkout())


def test_stock_pool_is_fifo_and_lifo_pool_keeps_its_minimum_accounting() -> None:
    """Stock hands out the oldest (so the override is needed); ours the newest, same min count."""
    assert _first_checkout(psycopg_pool.AsyncConnectionPool) == ("a", ["b", "c"], 2), (
        "psycopg_pool's checkout order changed: revisit sim.db.pool._LifoPool"
    )
    assert _first_checkout(_LifoPool) == ("c", ["a", "b"], 2)


async def test_idle_connections_shrink_from_the_cold_end(
    settings: Settings, nursery: trio.Nursery, db_url: str
) -> None:
    """Grown to 3, then used one at a time: it shrinks to its minimum and keeps the warm one."""
    assert settings.database_url
    elastic = settings.replace(
        pool_min_size=1, pool_max_size=3, pool_max_idle_s=1, pool_timeout_s=5
    )
    database = Database(elastic, settings.database_url)
    # an advisory lock held from outside keeps three transactions open at once
    locker = await trio.to_thread.run_sync(partial(psycopg.connect, db_url, autocommit=True))
    try:
        await trio.to_thread.run_sync(locker.execute, "select pg_advisory_lock(7)")
        with trio.fail_after(20):
            await nursery.start(database.run)
            async with trio.open_nursery() as three:
                for _ in range(3):
                    three.start_soon(database.transaction, _one, "select pg_advisory_xact_lock(7)")
                while True:
                    stats = database.stats()
                    if stats["pool_size"] == 3 and stats["requests_waiting"] == 0:
                        break
                    await trio.sleep(0.02)
                await trio.to_thread.run_sync(locker.execute, "select pg_advisory_unlock(7)")
    finally:
        await trio.to_thread.run_sync(locker.close)
    assert database.stats()["pool_available"] == 3

    used: set[int] = set()
    with trio.fail_after(30):  # psycopg_pool closes one idle connection per max_idle
        while database.stats()["pool_size"] > 1:
            used.add(await database.transaction(_backend_pid))
            await trio.sleep(0.05)  # steady, light use
        used.add(await database.transaction(_backend_pid))
    assert len(used) == 1, f"one at a time, the pool should reuse one backend: {used}"
    left: set[int] = set()
    with trio.move_on_after(10):  # a closed connection's backend takes a moment to exit
        while left != used:
            rows = await _sql(
                db_url,
                "select pid from pg_stat_activity"
                " where datname = current_database() and application_name = 'sim'",
            )
            left = {row[0] for row in rows}
            await trio.sleep(0.05)
    assert left == used, f"backends left: {left}, the warm one: {used}"
    database.close()
    await database.wait_closed(10)


async def test_pool_recovers_after_backends_are_terminated(db: Database, db_url: str) -> None:
    """After pg_terminate_backend of every pool connection the next operation still succeeds."""
    with trio.fail_after(30):
        pids_before = {await db.transaction(_backend_pid) for _ in range(3)}
    pool_pids = {
        row[0]
        for row in await _sql(
            db_url,
            "select pid from pg_stat_activity"
            " where datname = current_database() and application_name = 'sim'",
        )
    }
    assert pids_before <= pool_pids
    assert len(pool_pids) >= db.settings.pool_min_size

    terminated = await _sql(
        db_url,
        "select pg_terminate_backend(pid) from pg_stat_activity"
        " where datname = current_database() and application_name = 'sim'",
    )
    assert terminated and all(row[0] for row in terminated)

    with trio.fail_after(10):
        pid_after = await db.transaction(_backend_pid)
        assert pid_after not in pool_pids
        # and it goes on working
        for _ in range(5):
            assert await db.transaction(_one, "select 1") == 1


@pytest.fixture
async def bounded(settings: Settings, nursery: trio.Nursery) -> AsyncIterator[Database]:
    """An open ``Database`` whose sessions have short server-side bounds."""
    database = await _opened(
        settings,
        nursery,
        pool_min_size=1,
        pool_max_size=2,
        db_statement_timeout_s=0.5,
        db_lock_timeout_s=0.1,
    )
    yield database
    database.close()
    await database.wait_closed(10)


async def test_server_ends_a_statement_past_its_bound_and_the_connection_goes_on(
    bounded: Database,
) -> None:
    """pg_sleep(60) past ``db_statement_timeout_s`` is ended by PostgreSQL: QueryTimeout."""
    with trio.fail_after(30), pytest.raises(QueryTimeout) as info:
        await bounded.transaction(_one, "select pg_sleep(60)")
    assert isinstance(info.value.__cause__, psycopg.errors.QueryCanceled)
    with trio.fail_after(30):
        assert await bounded.transaction(_one, "select 1") == 1


async def test_server_ends_a_lock_wait_past_its_bound(bounded: Database, db_url: str) -> None:
    """A row lock held past ``db_lock_timeout_s`` makes the waiter fail with QueryTimeout."""
    await _sql(db_url, "create table lockme (id int primary key); insert into lockme values (1)")
    holder = await trio.to_thread.run_sync(partial(psycopg.connect, db_url, autocommit=False))
    try:
        await trio.to_thread.run_sync(holder.execute, "select 1 from lockme for update")
        with trio.fail_after(30), pytest.raises(QueryTimeout) as info:
            await bounded.transaction(_one, "select 1 from lockme for update")
    finally:
        await trio.to_thread.run_sync(holder.close)
    assert isinstance(info.value.__cause__, psycopg.errors.LockNotAvailable)


async def test_migrations_wait_out_a_long_advisory_lock(bounded: Database, db_url: str) -> None:
    """An instance starting while another migrates waits for it, past the sessions' bounds."""
    holder = await trio.to_thread.run_sync(partial(psycopg.connect, db_url, autocommit=True))
    try:
        await trio.to_thread.run_sync(holder.execute, f"select pg_advisory_lock({_LOCK_KEY})")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(apply_migrations, bounded)
            with trio.fail_after(30):
                while True:  # until apply_migrations waits on the lock
                    if await _sql(
                        db_url,
                        "select 1 from pg_stat_activity where datname = current_database()"
                        " and wait_event_type = 'Lock' and wait_event = 'advisory'",
                    ):
                        break
                    await trio.sleep(0.02)
            # the scenario: the lock stays held for twice the sessions' longest bound
            await trio.sleep(2 * bounded.settings.db_statement_timeout_s)
            await trio.to_thread.run_sync(holder.execute, "select pg_advisory_unlock_all()")
    finally:
        await trio.to_thread.run_sync(holder.close)


async def test_syntax_error_is_mapped_to_database_error(db: Database) -> None:
    """A syntax error surfaces as sim's DatabaseError caused by the psycopg error."""
    with trio.fail_after(30), pytest.raises(DatabaseError) as info:
        await db.transaction(_one, "selec 1")
    assert type(info.value) is DatabaseError
    assert isinstance(info.value.__cause__, psycopg.errors.SyntaxError)
    assert isinstance(info.value.__cause__, psycopg.Error)
    assert "42601" in str(info.value)
    with trio.fail_after(30):
        assert await db.transaction(_one, "select 1") == 1


async def test_unreachable_database_raises_unavailable_at_open(tmp_path: Any) -> None:
    """An unreachable URL makes ``run`` fail with DatabaseUnavailable within its open timeout."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere?connect_timeout=1"
    s = Settings(
        database_url=url,
        data_dir=tmp_path,
        pool_min_size=1,
        pool_max_size=1,
        pool_open_timeout_s=1.0,
        db_close_timeout_s=1.0,
    )
    database = Database(s, url)
    # a hang guard well below the default open timeout (30 s) that a lost setting would mean
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            with pytest.raises(DatabaseUnavailable) as info:
                await nursery.start(database.run)
    assert not database.is_open
    assert info.value.__cause__ is not None
    assert "nowhere" in str(info.value) or "1.0s" in str(info.value)
