"""Versioned SQL migrations, applied once each under a PostgreSQL advisory lock."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from sim.db.pool import Conn, Database

__all__ = ["Migration", "apply_migrations", "load_migrations"]

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: two sim processes starting together serialise here
_LOCK_KEY = 0x5131_0001
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The migrations shipped in ``sim/db/migrations``, in version order."""
    found = []
    for entry in resources.files("sim.db").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


async def _apply(conn: Conn, migrations: list[Migration]) -> list[int]:
    # a migration may rewrite a large table, and an instance starting meanwhile waits
    # for it on the advisory lock: neither is bounded by the sessions' usual timeouts
    await conn.execute("set local statement_timeout = 0")
    await conn.execute("set local lock_timeout = 0")
    await conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    await conn.execute(
        "create table if not exists sim_schema_migrations ("
        " version integer primary key, name text not null,"
        " applied_at timestamptz not null default now())"
    )
    cur = await conn.execute("select version from sim_schema_migrations")
    done = {row["version"] for row in await cur.fetchall()}
    applied = []
    for m in migrations:
        if m.version in done:
            continue
        await conn.execute(m.sql.encode())
        await conn.execute(
            "insert into sim_schema_migrations (version, name) values (%s, %s)", (m.version, m.name)
        )
        applied.append(m.version)
    return applied


async def apply_migrations(db: Database) -> list[int]:
    """Apply every migration not yet recorded; return the versions applied now."""
    migrations = load_migrations()
    applied = await db.transaction(_apply, migrations)
    if applied:
        log.info("Applied migrations %s", ", ".join(f"{v:04d}" for v in applied))
    else:
        log.info("Schema up to date (version %04d)", migrations[-1].version if migrations else 0)
    return applied
