"""Backoff grows and is capped; Retry-After is read in both forms; wake-ups are bounded."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import trio
import trio.testing

from sim.pipeline.timing import Wakeup, backoff_s, parse_retry_after


def test_backoff_grows_exponentially_with_jitter_and_cap() -> None:
    """Each delay lies in [d/2, d] for d = min(cap, base * 2**(n-1))."""
    rng = random.Random(1)
    for attempt in range(1, 30):
        d = min(10.0, 0.5 * 2 ** (attempt - 1))
        delay = backoff_s(attempt, 0.5, 10.0, rng)
        assert d / 2 <= delay <= d


def test_retry_after_seconds_and_http_date() -> None:
    """Delta-seconds and HTTP dates both give seconds; junk gives None."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now) == 30.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None


async def test_wakeup_wakes_waiters_and_times_out(autojump_clock: trio.testing.MockClock) -> None:
    """set() ends a wait early; without it the wait ends at its timeout."""
    wake = Wakeup()
    assert await wake.wait(1.0) is False
    async with trio.open_nursery() as nursery:

        async def setter() -> None:
            await trio.sleep(0.1)
            wake.set()

        nursery.start_soon(setter)
        start = trio.current_time()
        assert await wake.wait(10.0) is True
        assert trio.current_time() - start < 1
