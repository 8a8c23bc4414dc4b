"""The delivery policy, in one place: what becomes of a row after one delivery attempt.

- 2xx: ``sent``.
- 408/409/425/429, 5xx, timeouts, connection errors: ``pending`` again after
  exponential backoff with jitter (``SIM_BACKOFF_BASE_S`` doubling up to
  ``SIM_BACKOFF_MAX_S``; a ``Retry-After`` wins), until either bound is reached:
  ``SIM_MAX_ATTEMPTS`` attempts, or ``SIM_RETRY_MAX_AGE_S`` since the row was
  queued (the next attempt would come later than that). The age is checked where
  the outcome is written (``sim.db.outbox.record``), since only the row knows it.
- An attempt that failed with the endpoint down while the circuit breaker is
  open does not count: the attempt is given back and the row is due again at
  once (it is claimed when the circuit closes). So attempts are spent against a
  healthy endpoint, and an outage is bounded by the age alone.
- 410 Gone: the row is given back too, and the user's demo mode is turned off.
- Any other 4xx: ``failed`` with the reason kept.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sim.db.outbox import Claimed, Outcome
from sim.pipeline.timing import backoff_s
from sim.settings import Settings

__all__ = ["Attempt", "DeliveryPolicy"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """The classified result of one HTTP request."""

    verdict: str  # "ok" | "retry" | "failed" | "split" | "gone"
    reason: str | None = None
    retry_after_s: float | None = None
    status_code: int | None = None
    latency_s: float = 0.0
    webhook_id: str | None = None  # the request's webhook-id header (signed deliveries)

    @property
    def down(self) -> bool:
        """The endpoint did not answer, or answered 5xx: what the circuit breaker counts."""
        return self.verdict == "retry" and (self.status_code is None or self.status_code >= 500)


class DeliveryPolicy:
    """Turns an attempt into each row's outcome."""

    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self.max_attempts = settings.max_attempts
        self.max_age_s = settings.retry_max_age_s
        self.base_s = settings.backoff_base_s
        self.cap_s = settings.backoff_max_s
        self._rng = rng or random.Random()

    def outcome(self, row: Claimed, attempt: Attempt, *, refund: bool = False) -> Outcome:
        """``row``'s outcome; ``refund``: the attempt does not count (circuit open, 410)."""

        def make(status: str, retry_in_s: float = 0.0, error: str | None = None) -> Outcome:
            return Outcome(
                row.id,
                row.user_id,
                row.seq,
                row.kind,
                status,
                row.run_id,
                retry_in_s,
                error,
                refund=refund and status == "pending",
                max_age_s=self.max_age_s if status == "pending" and not refund else 0.0,
            )

        if attempt.verdict == "ok":
            return make("sent")
        if refund:
            return make("pending", 0.0, attempt.reason)
        if attempt.verdict != "retry":
            return make("failed", error=attempt.reason)
        if row.attempts >= self.max_attempts:
            return make("failed", error=f"gave up after {row.attempts} attempts: {attempt.reason}")
        if attempt.retry_after_s is not None:
            delay = attempt.retry_after_s * (1 + self._rng.uniform(0, 0.1))
        else:
            delay = self.delay_s(row.attempts)
        return make("pending", delay, attempt.reason)

    def delay_s(self, attempts: int) -> float:
        """The backoff after ``attempts`` attempts (1-based), jittered."""
        return backoff_s(attempts, self.base_s, self.cap_s, self._rng)
