"""Sender workers: one set per instance, claiming every user's rows, woken rather than polling."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import trio
from conftest import sql

from sim.db import Database, outbox, users
from sim.db.outbox import Claimed, NewRow, Outcome
from sim.metrics import Metrics
from sim.pipeline.breaker import FREE, Pass
from sim.pipeline.delivery import Deliverer
from sim.pipeline.recorder import Recorder
from sim.pipeline.sender import Sender
from sim.settings import Settings


class Accepting(Deliverer):
    """Accepts every batch at once and remembers which users each batch carried."""

    batches: list[list[str]]

    async def deliver(self, rows: Sequence[Claimed], ticket: Pass = FREE) -> list[Outcome]:
        self.batches.append([r.user_id for r in rows])
        return [Outcome(r.id, r.user_id, r.seq, r.kind, "sent", r.run_id) for r in rows]


async def _store(db: Database, user: str, n: int) -> None:
    await users.enable_user(db, user, users.DemoConfig(0, 0, n, 0, 1))
    row = await users.get_user(db, user)
    assert row is not None
    now = datetime.now(UTC)
    rows = [NewRow(uuid.uuid4(), i, "dm", None, "{}", now) for i in range(n)]
    await outbox.store_rows(db, user, row.run_id, rows, live=False)


@asynccontextmanager
async def _idle_sender(
    db: Database, s: Settings, nursery: trio.Nursery
) -> AsyncIterator[tuple[Sender, Recorder, Accepting]]:
    """A sender (accepting every batch) and its recorder, running, every worker idle."""
    metrics = Metrics()
    recorder = Recorder(s, metrics, lambda batch: outbox.record(db, batch))
    async with httpx.AsyncClient() as client:
        deliverer = Accepting(client, s, metrics)
        deliverer.batches = []
        sender = Sender(db, s, deliverer, recorder)
        await nursery.start(recorder.run)
        await nursery.start(sender.run)
        with trio.fail_after(20):
            while True:  # every worker made its first (empty) claim and waits
                if sender.idle_workers == s.send_concurrency:
                    break
                await trio.sleep(0.02)
        yield sender, recorder, deliverer


async def _until_written(recorder: Recorder, n: int) -> None:
    while True:
        if recorder.rows_written == n:
            break
        await trio.sleep(0.02)


async def test_a_wake_up_delivers_every_users_rows_without_waiting_for_a_poll(
    db: Database, db_url: str, settings: Settings, nursery: trio.Nursery
) -> None:
    """With polls a minute apart, ``wake()`` alone gets two users' new rows delivered."""
    s = settings.replace(idle_poll_s=60.0, send_concurrency=3)
    async with _idle_sender(db, s, nursery) as (sender, recorder, deliverer):
        with trio.fail_after(20):
            await _store(db, "first", 3)
            await _store(db, "second", 2)
            sender.wake()
            await _until_written(recorder, 5)
    assert sorted(u for batch in deliverer.batches for u in batch) == ["first"] * 3 + ["second"] * 2
    assert sql(db_url, "select status, count(*) from interactions group by 1") == [("sent", 5)]


async def test_users_woken_first_are_served_first_and_the_round_robin_goes_on(
    db: Database, settings: Settings, nursery: trio.Nursery
) -> None:
    """``wake(first=...)``: the next claim serves those users before the round robin,
    which then goes on from the last user it served."""
    s = settings.replace(idle_poll_s=60.0, send_concurrency=1, send_batch_size=2)
    async with _idle_sender(db, s, nursery) as (sender, recorder, deliverer):
        with trio.fail_after(20):
            for user in ("a", "b", "c"):
                await _store(db, user, 3)
            sender.wake(first=["c"])
            await _until_written(recorder, 9)
    assert deliverer.batches[:2] == [["c", "a"], ["b", "c"]]


class Holding(Deliverer):
    """Holds every batch until cancelled (a receiver that does not answer)."""

    holding: trio.Event

    async def deliver(self, rows: Sequence[Claimed], ticket: Pass = FREE) -> list[Outcome]:
        self.holding.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")


async def test_halt_cancels_deliveries_and_gives_their_rows_back(
    db: Database, db_url: str, settings: Settings, nursery: trio.Nursery
) -> None:
    """``halt()`` (as a signal handler calls it) ends the workers; the rows are pending again."""
    s = settings.replace(idle_poll_s=60.0, send_concurrency=2)
    metrics = Metrics()
    recorder = Recorder(s, metrics, lambda batch: outbox.record(db, batch))
    stopped = trio.Event()

    async def run_sender(sender: Sender, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await sender.run(task_status=task_status)
        stopped.set()

    async with httpx.AsyncClient() as client:
        deliverer = Holding(client, s, metrics)
        deliverer.holding = trio.Event()
        sender = Sender(db, s, deliverer, recorder)
        await nursery.start(recorder.run)
        await _store(db, "held", 3)
        await nursery.start(run_sender, sender)
        with trio.fail_after(20):
            await deliverer.holding.wait()
            assert sql(db_url, "select status, attempts from interactions") == [("sending", 1)] * 3
            sender.halt()
            await stopped.wait()
    # due again at once, and the attempt that never got an answer is not counted
    assert sql(
        db_url, "select status, attempts, due_at <= now() from interactions group by 1, 2, 3"
    ) == [("pending", 0, True)]
    assert deliverer.halted and sender.idle_workers == 0
