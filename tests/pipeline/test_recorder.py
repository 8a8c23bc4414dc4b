"""The recorder batches outcomes, bounds each batch, retries failures in isolation."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence

import pytest
import trio
import trio.testing
from conftest import claimed_dms, sql

from sim.db import Conn, Database, outbox
from sim.db.outbox import Outcome
from sim.errors import DatabaseUnavailable
from sim.metrics import Metrics
from sim.pipeline.recorder import Recorder
from sim.settings import Settings

RUN = uuid.UUID(int=1)  # a run id for rows that never touch the database


def outcomes(n: int, user: str = "u") -> list[Outcome]:
    return [Outcome(uuid.uuid4(), user, seq, "dm", "sent", RUN) for seq in range(n)]


class FakeWrites:
    """A write seam that records batches and fails the ones it is told to."""

    def __init__(self, fail_first: dict[int, int] | None = None, delay_s: float = 0.0) -> None:
        self.batches: list[int] = []
        self.calls = 0
        self.fail_first = fail_first or {}  # batch size -> failures before success
        self.delay_s = delay_s
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, batch: Sequence[Outcome]) -> int:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await trio.sleep(self.delay_s)
            if self.fail_first.get(len(batch), 0) > 0:
                self.fail_first[len(batch)] -= 1
                raise DatabaseUnavailable("connection was closed in the middle of operation")
            self.batches.append(len(batch))
            return len(batch)
        finally:
            self.in_flight -= 1


def make(settings: Settings, writes: FakeWrites, **changes: object) -> Recorder:
    return Recorder(settings.replace(**changes), Metrics(), writes)


async def test_full_batches_flush_by_size(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """2,500 outcomes with batch size 1,000 → batches of 1000, 1000, 500."""
    writes = FakeWrites()
    rec = make(settings, writes, record_batch_size=1000, send_batch_size=100)
    async with trio.open_nursery() as nursery:
        await nursery.start(rec.run)
        for _ in range(25):
            await rec.submit(outcomes(100))
        rec.close()
    assert sorted(writes.batches) == [500, 1000, 1000]


async def test_a_sent_video_is_recorded_without_waiting_for_the_interval(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """Comments wait for their video's record, so a batch with a sent video flushes at once."""
    writes = FakeWrites()
    rec = make(settings, writes, record_flush_interval_s=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(rec.run)
        await rec.submit(outcomes(3))
        await trio.sleep(1)
        assert writes.batches == []  # DMs alone wait for the interval
        video = Outcome(uuid.uuid4(), "u", 99, "video", "sent", RUN)
        start = trio.current_time()
        await rec.submit([video])
        await trio.testing.wait_all_tasks_blocked()
        assert writes.batches == [4] and trio.current_time() - start < 0.01
        rec.close()


async def test_partial_batch_flushes_after_the_interval(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A few outcomes are written once the flush interval passes, without closing."""
    writes = FakeWrites()
    rec = make(settings, writes, record_flush_interval_s=0.25)
    async with trio.open_nursery() as nursery:
        await nursery.start(rec.run)
        await rec.submit(outcomes(7))
        await trio.sleep(0.2)
        assert writes.batches == []
        await trio.sleep(0.1)
        assert writes.batches == [7]
        nursery.cancel_scope.cancel()


async def test_failing_batch_is_retried_while_others_proceed(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A batch failing twice is retried; the other batches are written meanwhile."""
    writes = FakeWrites(fail_first={30: 2}, delay_s=0.01)
    rec = make(settings, writes, record_batch_size=50, record_flush_interval_s=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(rec.run)
        await rec.submit(outcomes(30))
        await trio.sleep(0.02)
        for _ in range(4):
            await rec.submit(outcomes(50))
        rec.close()
    assert Counter(writes.batches) == Counter({50: 4, 30: 1})
    assert writes.calls == 7
    assert rec.batches_abandoned == 0


async def test_batch_failing_for_good_is_abandoned_not_fatal(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """After record_max_retries a batch is given up (rows return with their lease); others go on."""
    writes = FakeWrites(fail_first={10: 100})
    metrics = Metrics()
    rec = Recorder(settings.replace(record_batch_size=10, record_max_retries=3), metrics, writes)
    async with trio.open_nursery() as nursery:
        await nursery.start(rec.run)
        await rec.submit(outcomes(10))  # a full batch of its own: fails on every attempt
        await rec.submit(outcomes(5))
        rec.close()
    assert writes.batches == [5]
    assert writes.calls == 1 + 3 + 1  # the first try and 3 retries of the 10, then the 5
    assert rec.batches_abandoned == 1 and rec.rows_written == 5
    assert metrics.registry.get_sample_value("sim_recorder_abandoned_batches_total") == 1


async def test_concurrency_is_bounded(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """No more than record_concurrency batches are written at once."""
    writes = FakeWrites(delay_s=1.0)
    rec = make(settings, writes, record_batch_size=10, record_concurrency=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(rec.run)
        for _ in range(20):
            await rec.submit(outcomes(10))
        rec.close()
    assert writes.max_in_flight == 3 and sum(writes.batches) == 200


async def test_slow_batch_is_cut_by_batch_timeout(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A write slower than batch_timeout_s is cancelled and retried, not awaited forever."""
    writes = FakeWrites(delay_s=5.0)
    rec = make(settings, writes, batch_timeout_s=1.0, record_max_retries=2)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(rec.run)
        await rec.submit(outcomes(3))
        rec.close()
    assert writes.batches == [] and writes.calls == 3
    assert trio.current_time() - start < 10
    assert rec.batches_abandoned == 1


@pytest.mark.parametrize("fault", ["killed_connection", "statement_timeout"])
async def test_real_batch_failure_is_retried_and_nothing_lost(
    db: Database, settings: Settings, fault: str
) -> None:
    """On real PostgreSQL: a killed connection / a too-slow statement mid-batch → retried."""
    claimed = await claimed_dms(db, "rec", 3000)
    injected = 0

    async def kill_self(conn: Conn) -> None:
        await conn.execute("select pg_terminate_backend(pg_backend_pid())")

    async def sleep_long(conn: Conn) -> None:
        await conn.execute("select pg_sleep(5)")

    async def write(batch: Sequence[Outcome]) -> int:
        nonlocal injected
        if len(batch) == 1000 and injected < 2:
            injected += 1
            await db.transaction(kill_self if fault == "killed_connection" else sleep_long)
        return await outbox.record(db, batch)

    # batches flush by size only (the interval would cut them short on a busy machine)
    cfg = settings.replace(record_batch_size=1000, record_flush_interval_s=600, batch_timeout_s=0.5)
    rec = Recorder(cfg, Metrics(), write)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(rec.run)
            for start in range(0, 3000, 100):
                await rec.submit(
                    [
                        Outcome(c.id, c.user_id, c.seq, c.kind, "sent", c.run_id)
                        for c in claimed[start : start + 100]
                    ]
                )
            rec.close()
    assert injected == 2 and rec.batches_abandoned == 0
    url = settings.database_url or ""
    assert sql(url, "select status, count(*) from interactions group by status") == [("sent", 3000)]
    assert sql(url, "select count(*) from interactions where sent_at is null") == [(0,)]
