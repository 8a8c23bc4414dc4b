"""Shared fixtures: one embedded PostgreSQL per test session, a fresh database per test."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from sim.db import Database, apply_migrations, outbox, users
from sim.db.embedded import EmbeddedPostgres, _start
from sim.db.outbox import Claimed, NewRow
from sim.settings import Settings

TEMPLATE = "sim_test_template"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    """A private embedded PostgreSQL for the whole session, stopped and removed at the end.

    Its directory is made with mkdtemp, not pytest's tmp_path: PostgreSQL runs as
    another system user under root, and pytest resets its own base folder to 0700.
    """
    base = Path(tempfile.mkdtemp(prefix="sim-test-pg-"))
    base.chmod(0o755)
    server = _start(base / "pgdata")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _admin(pg: EmbeddedPostgres) -> psycopg.Connection[Any]:
    return psycopg.connect(pg.url("postgres"), autocommit=True)


@pytest.fixture(scope="session")
def template_url(pg_server: EmbeddedPostgres) -> str:
    """A database with sim's schema applied, used as the template of each test's database."""
    with _admin(pg_server) as conn:
        conn.execute(f"drop database if exists {TEMPLATE}")
        conn.execute(f"create database {TEMPLATE}")
    url = pg_server.url(TEMPLATE)

    async def migrate() -> None:
        settings = Settings(database_url=url, pool_min_size=1, pool_max_size=2)
        async with trio.open_nursery() as nursery:
            db = await nursery.start(Database(settings, url).run)
            await apply_migrations(db)
            db.close()

    import trio_asyncio  # noqa: F401

    trio.run(migrate)
    return url


@pytest.fixture
def db_url(pg_server: EmbeddedPostgres, template_url: str) -> Iterator[str]:
    """A fresh database (a copy of the migrated template) for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with _admin(pg_server) as conn:
        conn.execute(f"create database {name} template {TEMPLATE}")
    try:
        yield pg_server.url(name)
    finally:
        with _admin(pg_server) as conn:
            conn.execute(f"drop database if exists {name} with (force)")


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for a test: its own database, small pool, quick polling."""
    return Settings(
        database_url=db_url,
        data_dir=tmp_path / "sim",
        pool_min_size=2,
        pool_max_size=10,
        idle_poll_s=0.05,
        backoff_base_s=0.05,
        backoff_max_s=0.5,
        request_timeout_s=5,
    )


@pytest.fixture
async def db(settings: Settings, nursery: trio.Nursery) -> AsyncIterator[Database]:
    """An open ``Database`` on the test's database."""
    assert settings.database_url
    database = Database(settings, settings.database_url)
    await nursery.start(database.run)
    yield database
    database.close()
    await database.wait_closed(10)


def sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one query synchronously (for checking invariants from outside sim)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


@asynccontextmanager
async def served(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` with hypercorn on 127.0.0.1 (an ephemeral port); yield its base URL."""
    config = Config()
    config.bind = [f"127.0.0.1:{port or free_port()}"]
    config.graceful_timeout = 5
    config.accesslog = None
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: serve(
                app, config, shutdown_trigger=shutdown.wait, task_status=task_status
            )
        )
        try:
            yield binds[0]
        finally:
            shutdown.set()


os.environ.setdefault("SIM_LOG_LEVEL", "INFO")


async def claimed_dms(db: Database, user: str, n: int) -> list[Claimed]:
    """Turn ``user`` on, store ``n`` DMs (seq 0..n-1) and claim them all."""
    await users.enable_user(db, user, users.DemoConfig(0, 0, n, 0, 1))
    row = await users.get_user(db, user)
    assert row is not None
    now = datetime.now(UTC)
    rows = [NewRow(uuid.uuid4(), i, "dm", None, "{}", now) for i in range(n)]
    await outbox.store_rows(db, user, row.run_id, rows, live=False)
    claimed = await outbox.claim(db, n, 60)
    assert len(claimed) == n
    return claimed
