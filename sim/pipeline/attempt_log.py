"""The attempt log's writer: every delivery request kept, written in batches off the hot path.

``add`` never waits: an entry goes on a bounded channel (dropped and counted when
the backlog is full, so a slow database never slows delivery). ``run`` writes what
has gathered as one INSERT, at most every ``_FLUSH_S`` or ``_BATCH`` entries, each
under ``batch_timeout_s``, and prunes the table by count and age every ``_PRUNE_S``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import trio

from sim.db.attempts import AttemptEntry
from sim.db.outbox import Claimed, Outcome
from sim.errors import DatabaseError
from sim.metrics import Metrics
from sim.pipeline.policy import Attempt
from sim.settings import Settings

__all__ = ["AttemptLog", "entries_for"]

log = logging.getLogger(__name__)

_BACKLOG = 10_000  # entries waiting to be written (each is one request)
_BATCH = 500
_FLUSH_S = 0.25
_PRUNE_S = 60.0

WriteFn = Callable[[Sequence[AttemptEntry]], Awaitable[int]]
PruneFn = Callable[[], Awaitable[int]]


def entries_for(
    rows: Sequence[Claimed],
    attempt: Attempt,
    outcomes: Sequence[Outcome],
    at: datetime,
) -> list[AttemptEntry]:
    """One entry per user in the request (a batch is normally one user's)."""
    # a 413 split is retried at once, in halves
    verdict = "retry" if attempt.verdict == "split" else attempt.verdict
    outcome = verdict if verdict in ("ok", "retry", "gone") else "failed"
    per_user: dict[str, list[int]] = {}
    if rows[0].user_id == rows[-1].user_id and len({r.user_id for r in rows}) == 1:
        per_user[rows[0].user_id] = list(range(len(rows)))
    else:
        for i, r in enumerate(rows):
            per_user.setdefault(r.user_id, []).append(i)
    out = []
    for user_id, idx in per_user.items():
        retry_in = (
            [outcomes[i].retry_in_s for i in idx if outcomes[i].status == "pending"]
            if outcomes and outcome != "ok"
            else []
        )
        out.append(
            AttemptEntry(
                user_id=user_id,
                at=at,
                webhook_id=attempt.webhook_id,
                attempt=max(rows[i].attempts for i in idx),
                items=len(idx),
                first_seq=min(rows[i].seq for i in idx),
                outcome=outcome,
                status_code=attempt.status_code,
                error=None if outcome == "ok" else attempt.reason,
                latency_s=attempt.latency_s,
                next_attempt_at=at + timedelta(seconds=attempt.latency_s + min(retry_in))
                if retry_in
                else None,
            )
        )
    return out


class AttemptLog:
    """Start with ``await nursery.start(log.run)``; ``close()`` flushes and ends it."""

    def __init__(
        self, settings: Settings, metrics: Metrics, write: WriteFn, prune: PruneFn
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._write = write
        self._prune = prune
        self._send, self._receive = trio.open_memory_channel[AttemptEntry](_BACKLOG)
        self.written = 0

    def add(
        self,
        rows: Sequence[Claimed],
        attempt: Attempt,
        outcomes: Sequence[Outcome],
        at: datetime,
    ) -> None:
        """Queue the request's entries; never waits (a full backlog drops and counts)."""
        for entry in entries_for(rows, attempt, outcomes, at):
            try:
                self._send.send_nowait(entry)
            except (trio.WouldBlock, trio.ClosedResourceError):
                self.metrics.attempts_dropped.inc()

    def close(self) -> None:
        self._send.close()

    async def run(
        self, *, task_status: trio.TaskStatus[AttemptLog] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started(self)
        next_prune = trio.current_time()
        batch: list[AttemptEntry] = []
        closed = False
        while not closed:
            with trio.move_on_after(_FLUSH_S):
                while len(batch) < _BATCH:
                    try:
                        batch.append(await self._receive.receive())
                    except trio.EndOfChannel:
                        closed = True
                        break
            if batch:
                await self._flush(batch)
                batch = []
            if trio.current_time() >= next_prune:
                next_prune = trio.current_time() + _PRUNE_S
                await self._prune_once()

    async def _flush(self, batch: list[AttemptEntry]) -> None:
        try:
            with trio.fail_after(self.settings.batch_timeout_s):
                await self._write(batch)
        except (DatabaseError, trio.TooSlowError) as exc:
            self.metrics.attempts_dropped.inc(len(batch))
            log.warning("Could not write %d attempt-log entries (%s)", len(batch), exc)
            return
        self.written += len(batch)
        self.metrics.attempts_logged.inc(len(batch))

    async def _prune_once(self) -> None:
        try:
            with trio.fail_after(self.settings.batch_timeout_s):
                deleted = await self._prune()
        except (DatabaseError, trio.TooSlowError) as exc:
            log.warning("Could not prune the attempt log (%s)", exc)
            return
        if deleted:
            log.info("Pruned %d attempt-log entries", deleted)
