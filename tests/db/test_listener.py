"""The LISTEN connection: debounced notifications, and coming back after being killed."""

from __future__ import annotations

from collections.abc import Callable

import trio
from conftest import sql

from sim.db import Database
from sim.db.listener import Listener


class Seen:
    """What the handlers were called with, and a wake-up on each call."""

    def __init__(self) -> None:
        self.calls: list[frozenset[str] | None] = []
        self.connects = 0
        self.changed = trio.Event()

    def handler(self, payloads: frozenset[str] | None) -> None:
        self.calls.append(payloads)
        self.changed.set()

    def connected(self) -> None:
        self.connects += 1
        self.changed.set()

    async def until(self, done: Callable[[], object]) -> None:
        with trio.fail_after(10):
            while not done():
                self.changed = trio.Event()
                await self.changed.wait()


def _listener(db: Database, seen: Seen, debounce_s: float = 0.2) -> Listener:
    return Listener(
        db,
        {"sim_test": seen.handler},
        debounce_s=debounce_s,
        on_connect=seen.connected,
        backoff=lambda attempt: 0.05,
    )


def _notify(url: str, *payloads: str) -> None:
    for payload in payloads:
        sql(url, "select pg_notify('sim_test', %s)", (payload,))


async def test_notifications_arrive_coalesced(
    db: Database, db_url: str, nursery: trio.Nursery
) -> None:
    """A burst of notifications reaches the handler as one call with every payload."""
    seen = Seen()
    listener = await nursery.start(_listener(db, seen).run)
    await listener.wait_connected()
    _notify(db_url, "a", "b", "a", "c")
    await seen.until(
        lambda: seen.calls and set().union(*(c or () for c in seen.calls)) >= {"a", "b", "c"}
    )
    assert len(seen.calls) <= 2  # coalesced, not one call per notification
    _notify(db_url, "*")
    await seen.until(lambda: None in seen.calls)


async def test_listener_reconnects_after_its_backend_is_killed(
    db: Database, db_url: str, nursery: trio.Nursery
) -> None:
    """pg_terminate_backend on the listener: it reconnects, resyncs, and hears again."""
    seen = Seen()
    listener = await nursery.start(_listener(db, seen, debounce_s=0).run)
    old = await listener.wait_connected()
    assert sql(db_url, "select pg_terminate_backend(%s)", (old,)) == [(True,)]
    await seen.until(lambda: seen.connects == 2)
    new = await listener.wait_connected()
    assert new != old
    _notify(db_url, "after")
    await seen.until(lambda: frozenset({"after"}) in seen.calls)
