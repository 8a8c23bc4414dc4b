"""The fault suite's PostgreSQL: a private embedded server to stop, start and harass.

``Cluster`` is a dedicated embedded PostgreSQL that can be stopped and started again
(``pg_ctl``); ``Storm`` kills every sim connection of a database, over and over
(``pg_terminate_backend``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
import trio

from sim.db.embedded import EmbeddedPostgres, _start

__all__ = ["Cluster", "Storm"]

log = logging.getLogger(__name__)


class Cluster:
    """A dedicated embedded PostgreSQL that the suite may stop, start and harass."""

    def __init__(self, root: Path) -> None:
        self.server: EmbeddedPostgres = _start(root / "pgdata")
        info = self.server.server.get_postmaster_info()
        self.pgdata = Path(self.server.server.pgdata)
        self.socket_dir = Path(info.socket_dir)
        self.logfile = Path(self.server.server.log)
        self.user: str | None = self.server.server.system_user
        self.running = True

    def url(self, database: str) -> str:
        return self.server.url(database)

    def _admin(self, database: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)

    def create_database(self, name: str) -> str:
        with self._admin() as conn:
            conn.execute(f'create database "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    def query(self, database: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """One statement on ``database`` (its own short connection); the rows, if any."""
        with self._admin(database) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def log_offset(self) -> int:
        return self.logfile.stat().st_size

    def dropped_connections(self, since: int) -> int:
        """Sessions that ended without a goodbye since log offset ``since``.

        A client that closes its connection says so; one that vanishes leaves an
        "unexpected EOF" (logged for idle sessions too in databases made by ``Stack``).
        """
        with self.logfile.open("rb") as log_file:
            log_file.seek(since)
            text = log_file.read().decode(errors="replace")
        return sum(1 for line in text.splitlines() if "unexpected EOF on client" in line)

    def _pg_ctl(self, *args: str, timeout_s: float = 30) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(list(args), pgdata=self.pgdata, user=self.user, timeout=timeout_s)

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are disconnected); waits until it is down."""
        self._pg_ctl("-w", "-m", "fast", "stop")
        self.running = False

    def start(self) -> None:
        """Start it again on the same socket; waits until it accepts connections."""
        from pgserver.utils import PostmasterInfo

        self._pg_ctl(
            "-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.logfile), "start"
        )
        # pgserver stops the server it knows at clean-up: let it know the new postmaster
        self.server.server._postmaster_info = PostmasterInfo.read_from_pgdata(self.pgdata)
        self.running = True

    def close(self) -> None:
        """Stop the server (pgserver does, as the last handle goes) and release the handle."""
        if not self.running:
            self.server.server._postmaster_info = None  # nothing left to stop
        self.server.stop()
        self.running = False


class Storm:
    """Terminates every ``sim`` backend of one database, every ``interval_s``, until stopped."""

    def __init__(self, cluster: Cluster, database: str, interval_s: float = 0.1) -> None:
        self.cluster = cluster
        self.database = database
        self.interval_s = interval_s
        self.rounds = 0
        self.killed = 0

    async def run(self, stop: trio.Event) -> None:
        conn = await trio.to_thread.run_sync(self.cluster._admin)
        try:
            while not stop.is_set():
                rows = await trio.to_thread.run_sync(self._kill, conn)
                self.rounds += 1
                self.killed += rows
                with trio.move_on_after(self.interval_s):
                    await stop.wait()
        finally:
            conn.close()

    def _kill(self, conn: psycopg.Connection[Any]) -> int:
        rows = conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where application_name = 'sim' and datname = %s and pid <> pg_backend_pid()",
            (self.database,),
        ).fetchall()
        return sum(1 for (ok,) in rows if ok)
