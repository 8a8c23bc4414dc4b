"""Where the database is: ``DATABASE_URL``, or embedded PostgreSQL with a ``sim`` database."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
import trio
from psycopg import sql

from sim.db.embedded import EmbeddedPostgres, start_embedded
from sim.errors import DatabaseUnavailable
from sim.settings import Settings

__all__ = ["DatabaseLocation", "create_database", "locate_database"]

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "sim"


@dataclass
class DatabaseLocation:
    conninfo: str
    embedded: EmbeddedPostgres | None = None

    def release(self) -> None:
        """Stop the embedded server if this process was its last user."""
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def _create_database(admin_url: str, name: str) -> bool:
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (name,)
            ).fetchone()
            if exists:
                return False
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            return True
    except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
        # UniqueViolation: another process created it between our check and our
        # CREATE DATABASE (PostgreSQL checks the name first only for a nicer message)
        return False
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"cannot create database {name!r}: {exc}") from exc


async def create_database(admin_url: str, name: str) -> bool:
    """Create database ``name`` unless it exists; True when it was created."""
    return await trio.to_thread.run_sync(_create_database, admin_url, name)


async def locate_database(settings: Settings) -> DatabaseLocation:
    """``DATABASE_URL`` when set; otherwise start embedded PostgreSQL."""
    if settings.database_url:
        return DatabaseLocation(settings.database_url)
    embedded = await start_embedded(settings.data_dir)
    try:
        if await create_database(embedded.url("postgres"), EMBEDDED_DATABASE):
            log.info("Created database %r in embedded PostgreSQL", EMBEDDED_DATABASE)
    except BaseException:
        embedded.stop()
        raise
    return DatabaseLocation(embedded.url(EMBEDDED_DATABASE), embedded)
