"""The attempt log's writer: batched writes off the hot path, drops counted, pruning on a timer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import trio
import trio.testing

from sim.db.attempts import AttemptEntry
from sim.db.outbox import Claimed, Outcome
from sim.errors import DatabaseError
from sim.metrics import Metrics
from sim.pipeline.attempt_log import AttemptLog, entries_for
from sim.pipeline.policy import Attempt
from sim.settings import Settings

RUN = uuid.UUID(int=1)


def rows(user: str, n: int, attempts: int = 2) -> list[Claimed]:
    return [Claimed(uuid.uuid4(), user, i, "dm", attempts, json.dumps({}), RUN) for i in range(n)]


def pending(r: Claimed, retry_in_s: float) -> Outcome:
    return Outcome(r.id, r.user_id, r.seq, r.kind, "pending", r.run_id, retry_in_s, "HTTP 503")


def sent(batch: list[Claimed]) -> list[Outcome]:
    return [Outcome(r.id, r.user_id, r.seq, r.kind, "sent", r.run_id) for r in batch]


def test_one_entry_per_user_with_the_next_attempt() -> None:
    """A request's entry per user: highest attempt, first seq, soonest next attempt."""
    batch = rows("ann", 3) + rows("bob", 1, attempts=5)
    outs = [pending(r, 10.0 + i) for i, r in enumerate(batch)]
    at = datetime(2026, 11, 30, tzinfo=UTC)
    attempt = Attempt("retry", "HTTP 503", status_code=503, latency_s=0.5, webhook_id="msg_1")
    ann, bob = entries_for(batch, attempt, outs, at)
    assert ann.webhook_id == bob.webhook_id == "msg_1"
    assert (ann.user_id, ann.items, ann.attempt, ann.first_seq) == ("ann", 3, 2, 0)
    assert ann.next_attempt_at is not None
    assert (ann.next_attempt_at - at).total_seconds() == 10.5
    assert (bob.items, bob.attempt, bob.outcome, bob.status_code) == (1, 5, "retry", 503)
    one = rows("ann", 1)
    ok = entries_for(one, Attempt("ok", status_code=200), sent(one), at)
    assert ok[0].error is None and ok[0].next_attempt_at is None


async def test_writes_in_batches_and_prunes(autojump_clock: trio.testing.MockClock) -> None:
    """Entries added one request at a time reach the database as one batch; prune runs."""
    written: list[int] = []
    prunes: list[float] = []

    async def write(entries: Sequence[AttemptEntry]) -> int:
        written.append(len(entries))
        return len(entries)

    async def prune() -> int:
        prunes.append(trio.current_time())
        return 0

    metrics = Metrics()
    log = AttemptLog(Settings(), metrics, write, prune)
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        for _ in range(20):
            batch = rows("ann", 2)
            log.add(batch, Attempt("ok", status_code=200), sent(batch), datetime.now(UTC))
        await trio.sleep(1)
        assert written == [20]
        await trio.sleep(61)
        assert len(prunes) == 2
        log.close()
    assert log.written == 20
    assert metrics.registry.get_sample_value("sim_attempt_log_rows_total") == 20


async def test_failed_writes_are_dropped_and_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A write that fails never blocks delivery: the entries are counted as dropped."""

    async def write(entries: Sequence[AttemptEntry]) -> int:
        raise DatabaseError("down")

    async def prune() -> int:
        return 0

    metrics = Metrics()
    log = AttemptLog(Settings(), metrics, write, prune)
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        batch = rows("ann", 1)
        log.add(batch, Attempt("ok", status_code=200), sent(batch), datetime.now(UTC))
        log.close()
    assert log.written == 0
    assert metrics.registry.get_sample_value("sim_attempt_log_dropped_total") == 1


def test_a_413_split_is_logged_as_a_retry() -> None:
    """The 413 request itself is an attempt: logged as a retry of its rows, due at once."""
    batch = rows("ann", 4)
    attempt = Attempt("split", "HTTP 413", status_code=413)
    (entry,) = entries_for(batch, attempt, [], datetime(2026, 11, 30, tzinfo=UTC))
    assert (entry.outcome, entry.status_code, entry.items) == ("retry", 413, 4)
    assert entry.next_attempt_at is None
