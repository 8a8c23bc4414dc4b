"""The benchmarks' own embedded PostgreSQL, and plain psycopg helpers around it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import trio

from sim.db import Database, apply_migrations, outbox
from sim.db.embedded import EmbeddedPostgres, _start
from sim.settings import Settings

__all__ = ["BenchPostgres", "bench_postgres", "execute", "query"]

TEMPLATE = "bench_template"

COPY_COLUMNS = outbox.COPY_COLUMNS + ", status, attempts"


def execute(url: str, *statements: str, params: Any = None) -> None:
    """Run statements outside a transaction (VACUUM, CREATE DATABASE, ...)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode(), params)


def query(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql.encode(), params).fetchall()


@dataclass
class BenchPostgres:
    """One private server for the whole invocation; one database per scenario."""

    server: EmbeddedPostgres
    root: Path

    def url(self, database: str = "postgres") -> str:
        return self.server.url(database)

    @property
    def version(self) -> str:
        return str(query(self.url(), "show server_version")[0][0])

    def settings_line(self) -> str:
        names = ("shared_buffers", "synchronous_commit", "max_connections", "work_mem")
        values = [f"{n}={query(self.url(), f'show {n}')[0][0]}" for n in names]
        return ", ".join(values)

    def create(self, name: str, *, schema: bool = True) -> str:
        """A fresh database ``name`` (dropped first), with sim's schema unless told not to."""
        admin = self.url()
        execute(admin, f"drop database if exists {name} with (force)")
        if schema:
            execute(admin, f"create database {name} template {TEMPLATE}")
        else:
            execute(admin, f"create database {name}")
        return self.url(name)

    def drop(self, name: str) -> None:
        execute(self.url(), f"drop database if exists {name} with (force)")

    def sessions(self, name: str) -> int:
        """Sessions ever established to database ``name`` (pg_stat_database)."""
        execute(self.url(), "select pg_stat_force_next_flush()")
        rows = query(
            self.url(), "select sessions from pg_stat_database where datname = %s", (name,)
        )
        return int(rows[0][0]) if rows else 0

    def commits(self, name: str) -> int:
        """Transactions committed in database ``name`` (pg_stat_database)."""
        rows = query(
            self.url(), "select xact_commit from pg_stat_database where datname = %s", (name,)
        )
        return int(rows[0][0]) if rows else 0


async def _migrate(url: str) -> None:
    settings = Settings(database_url=url, pool_min_size=1, pool_max_size=1)
    async with trio.open_nursery() as nursery:
        db: Database = await nursery.start(Database(settings, url).run)
        await apply_migrations(db)
        db.close()


@contextmanager
def bench_postgres() -> Iterator[BenchPostgres]:
    """Start a private embedded server in a temporary directory; stop and delete it after."""
    root = Path(tempfile.mkdtemp(prefix="sim-bench-"))
    server = _start(root / "pg")
    try:
        pg = BenchPostgres(server, root)
        execute(pg.url(), f"drop database if exists {TEMPLATE}", f"create database {TEMPLATE}")
        trio.run(_migrate, pg.url(TEMPLATE))
        yield pg
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def copy_rows(url: str, rows: Iterable[Sequence[Any]], *, truncate: bool = True) -> None:
    """COPY outbox rows (``COPY_COLUMNS`` order) into ``interactions``, then VACUUM ANALYZE."""
    with psycopg.connect(url) as conn:
        if truncate:
            conn.execute("truncate interactions")
        with conn.cursor() as cur, cur.copy(f"copy interactions ({COPY_COLUMNS}) from stdin") as cp:
            for row in rows:
                cp.write_row(row)
        conn.commit()
    settle(url)


def settle(url: str) -> None:
    """Leave the table as a fresh run should find it: vacuumed, analysed, checkpointed."""
    execute(url, "vacuum (analyze) interactions", "checkpoint")
