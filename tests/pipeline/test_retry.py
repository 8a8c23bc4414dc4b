"""The one retry policy for database work: delays from Settings, bounded tries."""

from __future__ import annotations

import random

import pytest
import trio

from sim.errors import DatabaseUnavailable
from sim.pipeline.retry import RetryPolicy, retry_call
from sim.settings import Settings


def test_policy_comes_from_settings() -> None:
    """SIM_DB_RETRY_* set the first delay, the cap and the number of tries."""
    s = Settings(db_retry_base_s=0.2, db_retry_max_s=1.0, db_retry_attempts=3)
    policy = RetryPolicy.for_database(s)
    rng = random.Random(1)
    assert policy == RetryPolicy(0.2, 1.0, 3)
    assert 0.1 <= policy.delay_s(1, rng) <= 0.2
    assert all(0.5 <= policy.delay_s(n, rng) <= 1.0 for n in range(4, 70))
    assert not policy.exhausted(2) and policy.exhausted(3)
    assert RetryPolicy.for_database(s, attempts=6).attempts == 6


async def test_retry_call_retries_then_succeeds(autojump_clock: trio.abc.Clock) -> None:
    """Failures of the retried kind are retried after the policy's delays."""
    calls: list[float] = []

    async def flaky() -> str:
        calls.append(trio.current_time())
        if len(calls) < 3:
            raise DatabaseUnavailable("down")
        return "ok"

    policy = RetryPolicy(1.0, 4.0, 5)
    got = await retry_call(
        policy, flaky, retry_on=DatabaseUnavailable, rng=random.Random(0), what="x"
    )
    assert got == "ok" and len(calls) == 3
    assert 0.5 <= calls[1] - calls[0] <= 1.0 and 1.0 <= calls[2] - calls[1] <= 2.0


async def test_retry_call_gives_up_with_the_last_error(autojump_clock: trio.abc.Clock) -> None:
    """After ``attempts`` tries the last error is raised; other errors are not retried."""
    tries = 0

    async def down() -> None:
        nonlocal tries
        tries += 1
        raise DatabaseUnavailable(f"down {tries}")

    with pytest.raises(DatabaseUnavailable, match="down 3"):
        await retry_call(
            RetryPolicy(0.1, 1.0, 3),
            down,
            retry_on=DatabaseUnavailable,
            rng=random.Random(0),
            what="x",
        )

    async def broken() -> None:
        nonlocal tries
        tries += 1
        raise ValueError("not retried")

    tries = 0
    with pytest.raises(ValueError):
        await retry_call(
            RetryPolicy(0.1, 1.0, 3),
            broken,
            retry_on=DatabaseUnavailable,
            rng=random.Random(0),
            what="x",
        )
    assert tries == 1
