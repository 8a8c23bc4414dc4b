"""Wake-ups by LISTEN/NOTIFY on one dedicated connection, outside the pool.

The connection is psycopg's ``AsyncConnection`` in autocommit mode, living in the
database's trio-asyncio loop. Notifications are coalesced: after the first one arrives
the listener keeps collecting for ``notify_debounce_s`` and then calls each channel's
handler once with the set of payloads seen (``None`` when there were too many to list).
A dropped connection is re-established with backoff, and ``on_connect`` runs after each
(re)connection so that whatever was missed meanwhile is caught up on. Polling stays the
fallback everywhere: a lost notification only delays work.

It needs a session of its own: a direct connection or a session-mode pooler, not
PgBouncer in transaction mode (LISTEN does not survive there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
import trio
import trio_asyncio
from psycopg import AsyncConnection, sql

from sim.db.pool import Database, map_error
from sim.errors import DatabaseError

__all__ = ["Handler", "Listener"]
log = logging.getLogger(__name__)

#: called with the payloads seen on a channel since the last call (None: too many to list)
Handler = Callable[[frozenset[str] | None], None]

#: more distinct payloads than this in one window are reported as "any" (None)
MAX_PAYLOADS = 1000
#: an idle listener checks its connection this often (a silently dead one raises)
IDLE_CHECK_S = 5.0
#: waiting for a notification, one crossing at most this long (cancellation stays prompt)
WAIT_S = 1.0

Notices = list[tuple[str, str]]


class Listener:
    """LISTENs on ``handlers``' channels. Start with ``await nursery.start(listener.run)``."""

    def __init__(
        self,
        db: Database,
        handlers: Mapping[str, Handler],
        *,
        debounce_s: float,
        on_connect: Callable[[], None],
        backoff: Callable[[int], float],
    ) -> None:
        self.db = db
        self.handlers = dict(handlers)
        self.debounce_s = debounce_s
        self.on_connect = on_connect
        self.backoff = backoff
        #: the listening backend's pid while connected (None between connections)
        self.backend_pid: int | None = None
        self.connects = 0
        self._connected = trio.Event()

    async def wait_connected(self) -> int:
        """Wait until listening; the backend's pid."""
        while self.backend_pid is None:
            await self._connected.wait()
        return self.backend_pid

    async def run(
        self, *, task_status: trio.TaskStatus[Listener] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen until cancelled, reconnecting whenever the connection drops.

        Reports started after the first attempt, connected or not: the service runs
        on polling meanwhile.
        """
        failures = 0
        started = False
        while True:
            conn: AsyncConnection[tuple[object, ...]] | None = None
            try:
                conn = await self._aio(self._connect)
                self.backend_pid = conn.info.backend_pid
                self.connects += 1
                failures = 0
                log.info("Listening on %s (backend %d)", ", ".join(self.handlers), self.backend_pid)
                self._connected.set()
                self.on_connect()
                if not started:
                    started = True
                    task_status.started(self)
                await self._serve(conn)
            except DatabaseError as exc:
                failures += 1
                delay = self.backoff(failures)
                log.warning("Listener connection lost (%s); reconnecting in %.2fs", exc, delay)
                if not started:
                    started = True
                    task_status.started(self)
                await trio.sleep(delay)
            finally:
                self.backend_pid = None
                self._connected = trio.Event()
                if conn is not None:
                    with trio.CancelScope(shield=True), trio.move_on_after(2):
                        await self._close(conn)

    async def _serve(self, conn: AsyncConnection[tuple[object, ...]]) -> None:
        idle = 0.0
        while True:
            notices = await self._aio(_drain, conn, WAIT_S, self.debounce_s)
            if notices:
                idle = 0.0
                self._dispatch(notices)
                continue
            idle += WAIT_S
            if idle >= IDLE_CHECK_S:
                idle = 0.0
                await self._aio(_check, conn)

    def _dispatch(self, notices: Notices) -> None:
        by_channel: dict[str, set[str]] = {}
        for channel, payload in notices:
            by_channel.setdefault(channel, set()).add(payload)
        for channel, payloads in by_channel.items():
            handler = self.handlers.get(channel)
            if handler is None:
                continue
            if "*" in payloads or len(payloads) > MAX_PAYLOADS:
                handler(None)
            else:
                handler(frozenset(payloads))

    async def _connect(self) -> AsyncConnection[tuple[object, ...]]:
        conn = await AsyncConnection.connect(
            self.db.conninfo, autocommit=True, application_name="sim", connect_timeout=10
        )
        for channel in self.handlers:
            await conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
        return conn

    async def _close(self, conn: AsyncConnection[tuple[object, ...]]) -> None:
        try:
            await self._aio(conn.close)
        except DatabaseError:
            pass

    async def _aio(self, fn: Callable[..., object], *args: object) -> Any:
        loop = self.db.loop
        if loop is None:
            raise DatabaseError("the database is not open")
        try:
            return await trio_asyncio.aio_as_trio(fn, loop=loop)(*args)
        except (psycopg.Error, OSError) as exc:
            raise map_error(exc) from exc


async def _drain(
    conn: AsyncConnection[tuple[object, ...]], wait_s: float, window_s: float
) -> Notices:
    """Wait up to ``wait_s`` for a notification; then collect for ``window_s`` more."""
    out: Notices = [
        (n.channel, n.payload) async for n in conn.notifies(timeout=wait_s, stop_after=1)
    ]
    if out and window_s > 0:
        async for n in conn.notifies(timeout=window_s):
            out.append((n.channel, n.payload))
            if len(out) >= 10 * MAX_PAYLOADS:
                break
    return out


async def _check(conn: AsyncConnection[tuple[object, ...]]) -> None:
    await conn.execute("select 1")
