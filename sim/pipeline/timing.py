"""Waiting well: exponential backoff with jitter, ``Retry-After``, and wake-ups."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import trio

__all__ = ["Wakeup", "backoff_s", "parse_retry_after"]


def backoff_s(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, half jitter."""
    exp = min(cap_s, base_s * 2.0 ** max(0, min(attempt - 1, 62)))
    return exp / 2 + rng.uniform(0, exp / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, 86_400.0))


class Wakeup:
    """A reusable signal: ``set()`` wakes every current ``wait()``; waits are bounded."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout_s: float) -> bool:
        """Wait for ``set()`` or ``timeout_s``; True when woken."""
        event = self._event
        with trio.move_on_after(timeout_s):
            await event.wait()
        if event.is_set():
            if self._event is event:
                self._event = trio.Event()
            return True
        return False
