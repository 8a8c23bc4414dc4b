"""The one place where sim meets psycopg: a trio-asyncio loop and a connection pool.

psycopg's async classes are asyncio-only, so ``Database.run`` opens a
trio-asyncio loop and an ``AsyncConnectionPool`` inside it, in one long-running
Trio task. Everything else in sim calls ``Database.transaction(fn, *args)``: a
plain Trio coroutine that crosses to asyncio once, runs ``fn(conn, *args)`` in
one transaction on a pooled connection, and maps psycopg's errors to sim's.
"""

from __future__ import annotations

# trio_asyncio must be imported before psycopg: it patches asyncio's
# get_running_loop, which psycopg binds at import time.
import trio_asyncio  # isort: skip

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import psycopg
import psycopg.waiting
import psycopg_pool
import trio
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from sim.errors import (
    DatabaseError,
    DatabaseUnavailable,
    PoolExhausted,
    QueryTimeout,
    SimError,
)
from sim.settings import Settings, mask_url

__all__ = ["Conn", "Database", "map_error", "session_options"]

log = logging.getLogger(__name__)

Conn = AsyncConnection[dict[str, Any]]
T = TypeVar("T")
P = ParamSpec("P")

# The import-order trap, repaired: if psycopg was imported before this module
# (and so before trio_asyncio), psycopg.waiting still holds asyncio's original
# get_running_loop, which cannot see a trio-asyncio loop. Rebind it.
if psycopg.waiting.get_running_loop is not asyncio.get_running_loop:  # type: ignore[attr-defined]
    psycopg.waiting.get_running_loop = asyncio.get_running_loop  # type: ignore[attr-defined]
    log.debug("psycopg was imported before trio_asyncio; rebound its get_running_loop")


def map_error(exc: BaseException) -> SimError:
    """The sim error for a psycopg / psycopg_pool error."""
    if isinstance(exc, psycopg_pool.TooManyRequests):
        return PoolExhausted(f"database overloaded: {exc}")
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return PoolExhausted(f"no database connection available in time: {exc}")
    if isinstance(exc, psycopg_pool.PoolClosed):
        return DatabaseUnavailable("the connection pool is closed")
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return QueryTimeout(f"query cancelled: {exc}".strip())
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return QueryTimeout(f"lock not obtained in time: {exc}".strip())
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailable(f"database unavailable: {exc}".strip())
    if isinstance(exc, psycopg.Error):
        sqlstate = getattr(exc, "sqlstate", None)
        return DatabaseError(f"database error ({sqlstate}): {exc}".strip())
    if isinstance(exc, OSError):
        return DatabaseUnavailable(f"database unreachable: {exc}")
    return DatabaseError(f"unexpected database failure: {exc!r}")


def session_options(settings: Settings) -> str:
    """libpq ``options`` for sim's sessions: UTC, and server-side bounds on every wait.

    Whatever happens on the client, PostgreSQL ends a statement, a lock wait or an idle
    open transaction that outlives its bound, so no session holds a pooled connection or
    row locks indefinitely; the error reaches the caller as a ``DatabaseError``.
    """

    def ms(seconds: float) -> int:
        return max(1, round(seconds * 1000))

    return (
        "-c TimeZone=UTC"
        f" -c statement_timeout={ms(settings.db_statement_timeout_s)}"
        f" -c lock_timeout={ms(settings.db_lock_timeout_s)}"
        f" -c idle_in_transaction_session_timeout={ms(settings.db_idle_in_transaction_timeout_s)}"
    )


def _log_only(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # trio_asyncio would re-raise what asyncio merely logs, ending the loop.
    exc = context.get("exception")
    log.warning("asyncio: %s%s", context.get("message", "error"), f" ({exc!r})" if exc else "")


class _LifoPool(psycopg_pool.AsyncConnectionPool[Conn]):
    """psycopg_pool's pool, handing out the most recently returned connection first.

    The stock pool is a FIFO queue: every checkout takes the connection that has
    been idle longest, so work rotates over all ``pool_min_size`` backends and each
    keeps paying for cold caches (plans, relation and catalogue caches). Taking the
    newest keeps a few backends busy and warm; the rest stay idle at the left end,
    which is where the pool shrinks from (``max_idle``). The recorder benchmark
    went from ~0.8 to ~1.0 of the raw psycopg ceiling with this alone.
    ``tests/db/test_pool.py`` checks the order, so a psycopg_pool release that
    renames the hook is noticed.
    """

    # the signature is psycopg_pool's own, hence its ``timeout`` parameter
    async def _get_ready_connection(self, timeout: float | None) -> Conn | None:  # noqa: ASYNC109
        if self._pool and (timeout is None or timeout > 0.0):
            conn = self._pool.pop()  # the stock pool does popleft()
            self._nconns_min = min(self._nconns_min, len(self._pool))
            return conn
        return await super()._get_ready_connection(timeout)


class Database:
    """A psycopg ``AsyncConnectionPool`` owned by one Trio task.

    Start it with ``await nursery.start(db.run)``; stop it with ``db.close()``
    (the task then closes the pool, shielded and under a deadline, and returns).
    """

    def __init__(self, settings: Settings, conninfo: str) -> None:
        self.settings = settings
        self.conninfo = conninfo
        self._loop: Any = None
        self._pool: psycopg_pool.AsyncConnectionPool[Conn] | None = None
        self._closing = trio.Event()
        self._closed = trio.Event()
        self.connection_errors = 0

    # --- lifetime -----------------------------------------------------------------
    async def run(
        self, *, task_status: trio.TaskStatus[Database] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Open the loop and the pool, report started, serve until ``close()``.

        When the pool cannot be opened this raises ``DatabaseUnavailable`` itself,
        not wrapped in an ``ExceptionGroup``.
        """
        s = self.settings
        # What is raised inside ``trio_asyncio.open_loop()`` comes out wrapped in
        # nested ExceptionGroups (the loop's nurseries) and ``nursery.start`` unwraps
        # only one level; so an open failure is kept and raised once the loop is shut.
        failure: DatabaseUnavailable | None = None
        try:
            async with trio_asyncio.open_loop() as loop:
                loop.set_exception_handler(_log_only)
                self._loop = loop
                pool = self._new_pool()
                failure = await self._open(pool, loop)
                if failure is None:
                    self._pool = pool
                    log.info(
                        "Database pool open (min %d, max %d) at %s",
                        s.pool_min_size,
                        s.pool_max_size,
                        mask_url(self.conninfo),
                    )
                    task_status.started(self)
                    try:
                        await self._closing.wait()
                    finally:
                        self._pool = None
                        await self._close_pool(pool, loop, s.db_close_timeout_s)
                        log.info("Database pool closed")
        finally:
            self._loop = None
            self._closed.set()
        if failure is not None:
            raise failure from failure.__cause__

    def _new_pool(self) -> psycopg_pool.AsyncConnectionPool[Conn]:
        s = self.settings
        return _LifoPool(
            self.conninfo,
            min_size=s.pool_min_size,
            max_size=s.pool_max_size,
            timeout=s.pool_timeout_s,
            max_lifetime=s.pool_max_lifetime_s,
            max_idle=s.pool_max_idle_s,
            max_waiting=s.pool_max_waiting,
            # no ``check``: ``transaction`` checks each connection itself (see _live_connection)
            kwargs={
                "row_factory": dict_row,
                "application_name": "sim",
                "options": session_options(s),
            },
            reconnect_failed=self._reconnect_failed,
            name="sim",
            open=False,
        )

    async def _open(
        self, pool: psycopg_pool.AsyncConnectionPool[Conn], loop: Any
    ) -> DatabaseUnavailable | None:
        """Open ``pool``; on failure close it again and return the error to raise."""
        s = self.settings
        try:
            with trio.fail_after(s.pool_open_timeout_s + 1):
                await trio_asyncio.aio_as_trio(pool.open, loop=loop)(
                    wait=True, timeout=s.pool_open_timeout_s
                )
        except (psycopg.Error, psycopg_pool.PoolTimeout, OSError, trio.TooSlowError) as exc:
            await self._close_pool(pool, loop, 1)
            if isinstance(exc, trio.TooSlowError):
                message = f"database pool did not open within {s.pool_open_timeout_s}s"
            else:
                message = f"cannot open the database pool at {mask_url(self.conninfo)}: {exc}"
            failure = DatabaseUnavailable(message)
            failure.__cause__ = exc
            return failure
        return None

    async def _close_pool(
        self, pool: psycopg_pool.AsyncConnectionPool[Conn], loop: Any, timeout_s: float
    ) -> None:
        """Close ``pool``, shielded from cancellation and bounded by ``db_close_timeout_s``."""
        with trio.CancelScope(shield=True), trio.move_on_after(self.settings.db_close_timeout_s):
            await trio_asyncio.aio_as_trio(pool.close, loop=loop)(timeout=timeout_s)

    def close(self) -> None:
        """Ask ``run`` to close the pool and return."""
        self._closing.set()

    async def wait_closed(self, timeout_s: float) -> None:
        with trio.move_on_after(timeout_s):
            await self._closed.wait()

    def _reconnect_failed(self, pool: Any) -> None:
        log.error("Database reconnection failed for longer than the pool's reconnect timeout")

    # --- operations ------------------------------------------------------------------
    async def transaction(
        self, fn: Callable[..., Awaitable[T]], *args: Any, timeout_s: float | None = None
    ) -> T:
        """Run ``await fn(conn, *args)`` on the asyncio side, in one transaction.

        One crossing per call. The transaction commits when ``fn`` returns and
        rolls back when it raises; a Trio cancellation cancels the statement on
        the server. psycopg errors come out as ``sim.errors.DatabaseError``s.
        """
        pool, loop = self._pool, self._loop
        if pool is None or loop is None:
            raise DatabaseUnavailable("the database is not open")
        getconn_timeout = self.settings.pool_timeout_s if timeout_s is None else timeout_s

        async def on_aio() -> T:
            conn = await _live_connection(pool, getconn_timeout)
            try:
                async with conn:  # commit, or roll back on error (as pool.connection() does)
                    return await fn(conn, *args)
            finally:
                await pool.putconn(conn)

        return await self._on_aio(on_aio, loop)

    async def statement(
        self, fn: Callable[..., Awaitable[T]], *args: Any, timeout_s: float | None = None
    ) -> T:
        """Run ``await fn(conn, *args)`` on the asyncio side with autocommit on.

        For work that is one statement (such as one call of a server-side function):
        the statement is its own transaction, without the BEGIN and COMMIT round trips
        ``transaction`` costs. Each further statement ``fn`` runs would be a transaction
        of its own too. Errors and cancellation as in ``transaction``.
        """
        pool, loop = self._pool, self._loop
        if pool is None or loop is None:
            raise DatabaseUnavailable("the database is not open")
        getconn_timeout = self.settings.pool_timeout_s if timeout_s is None else timeout_s

        async def on_aio() -> T:
            conn = await _live_connection(pool, getconn_timeout, autocommit=True)
            try:
                return await fn(conn, *args)
            finally:
                try:
                    if conn.pgconn.transaction_status == TransactionStatus.IDLE:
                        await conn.set_autocommit(False)  # as the pool hands connections out
                finally:
                    await _put_back(pool, conn)

        return await self._on_aio(on_aio, loop)

    async def _on_aio(self, on_aio: Callable[[], Awaitable[T]], loop: Any) -> T:
        """Run ``on_aio`` in the trio-asyncio loop (one crossing); map psycopg's errors."""
        try:
            return await trio_asyncio.aio_as_trio(on_aio, loop=loop)()  # type: ignore[no-any-return]
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed, OSError) as exc:
            if isinstance(exc, psycopg.OperationalError):
                self.connection_errors += 1
            raise map_error(exc) from exc

    async def ping(self, timeout_s: float) -> None:
        """One round trip, bounded by ``timeout_s``, that never queues for a pooled
        connection: with requests already waiting for one, it connects afresh, outside
        the pool (a probe must not wait behind the load it reports on). Raises a
        ``DatabaseError``."""
        loop = self._loop
        try:
            with trio.fail_after(timeout_s):
                if not self.stats().get("requests_waiting", 0):
                    await self.transaction(_ping, timeout_s=timeout_s)
                elif loop is None:
                    raise DatabaseUnavailable("the database is not open")
                else:
                    await trio_asyncio.aio_as_trio(_connect_once, loop=loop)(self.conninfo)
        except trio.TooSlowError as exc:
            raise DatabaseUnavailable(f"database did not answer within {timeout_s}s") from exc
        except (psycopg.Error, OSError) as exc:
            raise map_error(exc) from exc

    def stats(self) -> dict[str, int]:
        """The pool's counters (``pool_size``, ``pool_available``, ``requests_waiting``, ...)."""
        pool = self._pool
        if pool is None:
            return {}
        stats = dict(pool.get_stats())
        stats.setdefault("connection_errors_mapped", self.connection_errors)
        return stats

    @property
    def loop(self) -> Any:
        """The trio-asyncio loop the pool lives in (for ``sim.db`` modules with their own
        connections, such as the listener); None while closed."""
        return self._loop

    @property
    def is_open(self) -> bool:
        return self._pool is not None


async def _live_connection(
    pool: psycopg_pool.AsyncConnectionPool[Conn], timeout_s: float, *, autocommit: bool = False
) -> Conn:
    """A pooled connection that has just answered a round trip, within ``timeout_s``
    (with ``autocommit`` it is returned in autocommit mode: the caller turns it off again).

    psycopg_pool's own ``check`` sleeps after each dead connection it meets (1 s, then
    2, 4, ...), so after a PostgreSQL restart an idle pool full of dead connections made
    the first request wait out the whole pool timeout. Here a dead connection is closed
    and handed back (the pool replaces it) and the next one is tried at once.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise psycopg_pool.PoolTimeout(f"no live connection within {timeout_s:.2f} sec")
        conn = await pool.getconn(timeout=remaining)
        try:
            if autocommit:
                await conn.set_autocommit(True)  # the check below then leaves it on
            await psycopg_pool.AsyncConnectionPool.check_connection(conn)
        except psycopg.Error:
            await conn.close()  # closed: the pool discards it and opens a replacement
            await pool.putconn(conn)
            continue
        except BaseException:
            await _put_back(pool, conn)
            raise
        return conn


async def _put_back(pool: psycopg_pool.AsyncConnectionPool[Conn], conn: Conn) -> None:
    """Return ``conn`` to the pool; one still in autocommit mode (a statement cancelled
    or broken mid-way) is closed first, so the pool replaces it: transactions need it off."""
    if conn.autocommit:
        await conn.close()
    await pool.putconn(conn)


async def _ping(conn: Conn) -> None:
    """Nothing more: ``transaction`` checked the connection with a round trip already.

    (A ``select 1`` here cost three more: BEGIN, the query, COMMIT.)
    """


async def _connect_once(conninfo: str) -> None:
    """Connect, and close again: the server answered (the handshake is the round trip)."""
    conn = await psycopg.AsyncConnection.connect(conninfo, application_name="sim-probe")
    await conn.close()
