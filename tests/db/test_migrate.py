"""Migrations: applied once, recorded, serialised by an advisory lock; timestamps are UTC-aware."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import trio
from conftest import sql

from sim.db import Conn, Database, apply_migrations, create_database, load_migrations
from sim.db.embedded import EmbeddedPostgres
from sim.db.migrate import _LOCK_KEY
from sim.settings import Settings


@pytest.fixture
def empty_db_url(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """A brand-new database with no schema at all (not a copy of the template)."""
    name = f"m_{uuid.uuid4().hex[:12]}"
    created = trio.run(create_database, pg_server.url("postgres"), name)
    assert created
    try:
        yield pg_server.url(name)
    finally:
        sql(pg_server.url("postgres"), f"drop database if exists {name} with (force)")


def _settings(url: str, tmp_path: Any) -> Settings:
    return Settings(database_url=url, data_dir=tmp_path, pool_min_size=1, pool_max_size=2)


@pytest.fixture
async def empty_db(
    empty_db_url: str, tmp_path: Any, nursery: trio.Nursery
) -> AsyncIterator[Database]:
    """An open ``Database`` on the empty database."""
    database = Database(_settings(empty_db_url, tmp_path), empty_db_url)
    with trio.fail_after(15):
        await nursery.start(database.run)
    yield database
    database.close()
    await database.wait_closed(10)


async def _recorded(conn: Conn) -> list[tuple[int, str, datetime]]:
    cur = await conn.execute(
        "select version, name, applied_at from sim_schema_migrations order by version"
    )
    return [(r["version"], r["name"], r["applied_at"]) for r in await cur.fetchall()]


def _shipped() -> list[int]:
    return [m.version for m in load_migrations()]


async def test_migrations_are_applied_once_and_recorded(empty_db: Database) -> None:
    """On an empty database every migration is applied and recorded; a second run applies none."""
    shipped = _shipped()
    assert shipped and shipped[0] == 1
    with trio.fail_after(20):
        assert await apply_migrations(empty_db) == shipped
        recorded = await empty_db.transaction(_recorded)
        assert [(v, n) for v, n, _ in recorded] == [(m.version, m.name) for m in load_migrations()]
        assert all(at.tzinfo is not None for _, _, at in recorded)

        assert await apply_migrations(empty_db) == []
        assert await empty_db.transaction(_recorded) == recorded


async def test_migrated_template_applies_nothing(db: Database) -> None:
    """The test database (a copy of the migrated template) is already up to date."""
    with trio.fail_after(10):
        assert await apply_migrations(db) == []
        assert [v for v, _, _ in await db.transaction(_recorded)] == _shipped()


async def test_concurrent_apply_runs_each_migration_once(empty_db_url: str, tmp_path: Any) -> None:
    """Two processes' worth of apply_migrations racing on a fresh database apply each once."""
    admin = await trio.to_thread.run_sync(lambda: psycopg.connect(empty_db_url, autocommit=True))
    results: list[list[int]] = []
    try:
        # Hold the migrations' advisory lock so that both appliers are surely
        # inside their transactions, blocked on it, before either can proceed.
        await trio.to_thread.run_sync(admin.execute, "select pg_advisory_lock(%s)", (_LOCK_KEY,))
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                databases = [
                    await nursery.start(
                        Database(_settings(empty_db_url, tmp_path), empty_db_url).run
                    )
                    for _ in range(2)
                ]

                async def apply(database: Database) -> None:
                    results.append(await apply_migrations(database))

                async with trio.open_nursery() as appliers:
                    for database in databases:
                        appliers.start_soon(apply, database)

                    waiting: list[tuple[Any, ...]] = []
                    while len(waiting) < 2:
                        await trio.sleep(0.05)
                        waiting = await trio.to_thread.run_sync(
                            sql,
                            empty_db_url,
                            "select pid from pg_stat_activity where datname = current_database()"
                            " and application_name = 'sim' and wait_event_type = 'Lock'"
                            " and wait_event = 'advisory'",
                        )
                    await trio.to_thread.run_sync(
                        admin.execute, "select pg_advisory_unlock(%s)", (_LOCK_KEY,)
                    )
                for database in databases:
                    database.close()
    finally:
        await trio.to_thread.run_sync(admin.close)

    assert sorted(results, key=len) == [[], _shipped()]
    rows = await trio.to_thread.run_sync(
        sql, empty_db_url, "select version, count(*) from sim_schema_migrations group by version"
    )
    assert sorted(rows) == [(v, 1) for v in _shipped()]


async def test_every_timestamp_column_is_timestamptz(db: Database) -> None:
    """No column in sim's schema is a naive ``timestamp without time zone``."""

    async def columns(conn: Conn) -> list[dict[str, Any]]:
        cur = await conn.execute(
            "select table_name, column_name, data_type from information_schema.columns"
            " where table_schema = 'public' and data_type like 'timestamp%%'"
            " order by table_name, column_name"
        )
        return await cur.fetchall()

    with trio.fail_after(30):
        found = await db.transaction(columns)
    naive = [c for c in found if c["data_type"] == "timestamp without time zone"]
    assert naive == []
    # the check is not vacuous: the schema does have timestamps, all aware
    tables = {c["table_name"] for c in found}
    assert {"interactions", "demo_users", "sim_schema_migrations"} <= tables
    assert {c["data_type"] for c in found} == {"timestamp with time zone"}


async def test_sessions_run_in_utc(db: Database) -> None:
    """Pooled sessions have TimeZone=UTC, and timestamps come back as aware UTC datetimes."""

    async def probe(conn: Conn) -> dict[str, Any]:
        cur = await conn.execute("select current_setting('TimeZone') as tz, now() as now")
        row = await cur.fetchone()
        assert row is not None
        show = await conn.execute("show timezone")
        shown = await show.fetchone()
        assert shown is not None
        return {**row, "shown": shown["TimeZone"]}

    with trio.fail_after(30):
        got = await db.transaction(probe)
    assert got["tz"] == "UTC" and got["shown"] == "UTC"
    now: datetime = got["now"]
    assert now.utcoffset() is not None and now.utcoffset() == UTC.utcoffset(now)
    assert abs((datetime.now(UTC) - now).total_seconds()) < 60


async def test_keying_by_user_and_seq_keeps_existing_rows(empty_db: Database) -> None:
    """Rows stored before 0003 keep their data, get video_seq, and are keyed by (user, seq)."""
    from sim.db.migrate import _apply

    before = [m for m in load_migrations() if m.version < 3]
    await empty_db.transaction(_apply, before)
    video, comment = uuid.uuid4(), uuid.uuid4()

    async def seed(conn: Conn) -> None:
        stored = ((video, 0, "video", None), (comment, 1, "comment", video))
        for ident, seq, kind, video_id in stored:
            await conn.execute(
                "insert into interactions (id, user_id, seq, kind, video_id, payload, created_at)"
                " values (%s, 'old', %s, %s, %s, '{}', now())",
                (ident, seq, kind, video_id),
            )

    await empty_db.transaction(seed)
    assert await apply_migrations(empty_db) == [m.version for m in load_migrations()][2:]

    async def rows(conn: Conn) -> list[dict[str, Any]]:
        cur = await conn.execute(
            "select id, seq, video_seq from interactions where user_id = 'old' order by seq"
        )
        return list(await cur.fetchall())

    assert await empty_db.transaction(rows) == [
        {"id": video, "seq": 0, "video_seq": None},
        {"id": comment, "seq": 1, "video_seq": 0},
    ]

    async def key(conn: Conn) -> list[Any]:
        cur = await conn.execute(
            "select pg_get_indexdef(indexrelid) as d from pg_index"
            " where indrelid = 'interactions'::regclass and indisprimary"
        )
        return [r["d"] for r in await cur.fetchall()]

    (definition,) = await empty_db.transaction(key)
    assert "(user_id, seq)" in definition
