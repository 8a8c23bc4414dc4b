"""Embedded PostgreSQL (the ``pgserver`` package) for when ``DATABASE_URL`` is unset."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import trio

from sim.errors import DatabaseUnavailable

__all__ = ["EmbeddedPostgres", "start_embedded"]

log = logging.getLogger(__name__)
logging.getLogger("pgserver").setLevel(logging.WARNING)


@dataclass
class EmbeddedPostgres:
    """A running pgserver instance; ``stop()`` releases this process's handle."""

    pgdata: Path
    server: Any

    def url(self, database: str = "postgres") -> str:
        return str(self.server.get_uri(database))

    def stop(self) -> None:
        """Release the handle; pgserver stops the server when no process holds one.

        pgserver counts holders by pid in a file; a holder that was killed never
        removes itself and would keep the server up forever, so dead pids are
        forgotten first.
        """
        handles = self.server.global_process_id_list
        with self.server._lock:
            handles.put([pid for pid in handles.get() if psutil.pid_exists(pid)])
        self.server.cleanup()

    def pid(self) -> int | None:
        pid = self.server.get_pid()
        return int(pid) if pid is not None else None


def _start(pgdata: Path) -> EmbeddedPostgres:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI); harmless here
        warnings.simplefilter("ignore")
        # a heavy import; only needed when no DATABASE_URL is given
        from pgserver.postgres_server import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise DatabaseUnavailable(f"cannot start embedded PostgreSQL in {pgdata}: {exc}") from exc
    log.info("Embedded PostgreSQL running (data in %s, pid %s)", pgdata, server.get_pid())
    return EmbeddedPostgres(pgdata=pgdata, server=server)


async def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    """Start (or attach to) the embedded server whose data lives in ``data_dir/pg``."""
    pgdata = (data_dir / "pg").resolve()
    os.makedirs(pgdata.parent, exist_ok=True)
    return await trio.to_thread.run_sync(_start, pgdata)
