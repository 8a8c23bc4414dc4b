"""One retry policy for database work: claims, stores of generated rows, status updates.

Exponential backoff with half jitter (``backoff_s``), its first delay, cap and
number of tries from ``Settings`` (``SIM_DB_RETRY_*``). ``retry_call`` is the
loop for a plain call; loops that interleave their own bookkeeping with the
wait (the recorder, the sender) use the policy's ``delay_s`` and ``exhausted``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import trio

from sim.errors import describe
from sim.pipeline.timing import backoff_s
from sim.settings import Settings

__all__ = ["RetryPolicy", "retry_call"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait after each failure, and after how many tries to give up."""

    base_s: float
    max_s: float
    attempts: int  # tries in all, the first included

    @classmethod
    def for_database(cls, settings: Settings, *, attempts: int | None = None) -> RetryPolicy:
        """The policy of ``SIM_DB_RETRY_*`` (``attempts`` overrides the number of tries)."""
        tries = settings.db_retry_attempts if attempts is None else attempts
        return cls(settings.db_retry_base_s, settings.db_retry_max_s, tries)

    def delay_s(self, failures: int, rng: random.Random) -> float:
        """The wait after the ``failures``-th failure in a row (1-based)."""
        return backoff_s(failures, self.base_s, self.max_s, rng)

    def exhausted(self, failures: int) -> bool:
        """True once ``failures`` tries have failed: no further try."""
        return failures >= self.attempts


async def retry_call(
    policy: RetryPolicy,
    fn: Callable[[], Awaitable[T]],
    *,
    retry_on: type[Exception] | tuple[type[Exception], ...],
    rng: random.Random,
    what: str,
) -> T:
    """``await fn()``, retried on ``retry_on`` as ``policy`` says; the last error is raised.

    Only ``retry_on`` is retried: anything else (``trio.Cancelled`` above all) passes through.
    """
    failures = 0
    while True:
        try:
            return await fn()
        except retry_on as exc:
            failures += 1
            if policy.exhausted(failures):
                raise
            delay = policy.delay_s(failures, rng)
            log.warning("%s failed (%s); retry %d in %.2fs", what, describe(exc), failures, delay)
            await trio.sleep(delay)
