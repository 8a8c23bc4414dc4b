"""The retry policy: backoff until max attempts, refunds while the circuit is open, 4xx final."""

from __future__ import annotations

import json
import random
import uuid

from sim.db.outbox import Claimed
from sim.pipeline.policy import Attempt, DeliveryPolicy
from sim.settings import Settings

RUN = uuid.UUID(int=1)


def row(attempts: int) -> Claimed:
    return Claimed(uuid.uuid4(), "u", 0, "dm", attempts, json.dumps({}), RUN)


def policy(**changes: object) -> DeliveryPolicy:
    return DeliveryPolicy(Settings(**changes), random.Random(0))  # type: ignore[arg-type]


def test_retry_backs_off_and_carries_the_age_limit() -> None:
    """A retryable failure is pending after backoff, with the max age for the record SQL."""
    p = policy(backoff_base_s=1, backoff_max_s=100, retry_max_age_s=3600)
    out = p.outcome(row(3), Attempt("retry", "HTTP 503", status_code=503))
    assert out.status == "pending" and 2 <= out.retry_in_s <= 4
    assert out.max_age_s == 3600 and not out.refund


def test_max_attempts_against_a_healthy_endpoint_fail_the_row() -> None:
    """The attempt that reaches SIM_MAX_ATTEMPTS fails the row with the reason kept."""
    out = policy(max_attempts=4).outcome(row(4), Attempt("retry", "HTTP 500", status_code=500))
    assert out.status == "failed" and out.error == "gave up after 4 attempts: HTTP 500"


def test_refunded_attempt_is_due_at_once_and_never_fails() -> None:
    """With the circuit open the attempt is given back: pending now, no age check, even at max."""
    out = policy(max_attempts=4).outcome(row(4), Attempt("retry", "ConnectError"), refund=True)
    assert out.status == "pending" and out.refund and out.retry_in_s == 0
    assert out.max_age_s == 0


def test_permanent_4xx_and_success() -> None:
    """A 400 fails for good; a 2xx is sent."""
    p = policy()
    assert p.outcome(row(1), Attempt("failed", "HTTP 400", status_code=400)).status == "failed"
    assert p.outcome(row(1), Attempt("ok", status_code=200)).status == "sent"


def test_down_is_connection_timeout_or_5xx() -> None:
    """What the breaker counts: no answer or a 5xx, not a 429 nor a 4xx."""
    assert Attempt("retry", "ConnectError").down
    assert Attempt("retry", "HTTP 502", status_code=502).down
    assert not Attempt("retry", "HTTP 429", status_code=429).down
    assert not Attempt("failed", "HTTP 400", status_code=400).down
