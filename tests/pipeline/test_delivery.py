"""Delivery classifies answers: 2xx sent, retryable codes retried, 413 split, 4xx failed."""

from __future__ import annotations

import gc
import json
import random
import uuid

import httpx
import pytest
import trio

from sim.db.outbox import Claimed
from sim.metrics import Metrics
from sim.pipeline.delivery import Deliverer, DeliveryHalted, request_body, webhook_id
from sim.settings import Settings

RUN = uuid.UUID(int=1)  # a run id for rows that never touch the database


def rows(n: int, attempts: int = 1) -> list[Claimed]:
    return [
        Claimed(uuid.uuid4(), "u", i, "dm", attempts, json.dumps({"n": i}), RUN) for i in range(n)
    ]


def deliverer(handler: httpx.MockTransport, **changes: object) -> Deliverer:
    settings = Settings(main_app_url="http://receiver.test/in", **changes)  # type: ignore[arg-type]
    client = httpx.AsyncClient(transport=handler)
    return Deliverer(client, settings, Metrics(), rng=random.Random(0))


def answering(*statuses: int, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    seen: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["interactions"]
        seen.append(len(items))
        status = statuses[min(len(seen) - 1, len(statuses) - 1)]
        return httpx.Response(status, headers=headers, text="nope" if status >= 400 else "ok")

    transport = httpx.MockTransport(handle)
    transport.seen = seen  # type: ignore[attr-defined]
    return transport


async def test_2xx_means_sent() -> None:
    """Any 2xx marks every row sent, whatever the body says."""
    out = await deliverer(answering(204)).deliver(rows(3))
    assert {o.status for o in out} == {"sent"}


async def test_retryable_statuses_are_retried_with_retry_after() -> None:
    """408/409/425/429/5xx → pending, due after Retry-After."""
    for status in (408, 409, 425, 429, 500, 503):
        out = await deliverer(answering(status, headers={"Retry-After": "7"})).deliver(rows(2))
        assert {o.status for o in out} == {"pending"}
        assert all(7 <= o.retry_in_s <= 7.7 for o in out)


async def test_other_4xx_fail_for_good_with_reason() -> None:
    """400/401/404/422 → failed with the status and body kept."""
    for status in (400, 401, 404, 422):
        out = await deliverer(answering(status)).deliver(rows(2))
        assert {o.status for o in out} == {"failed"}
        assert all(o.error and f"HTTP {status}" in o.error for o in out)


async def test_413_splits_until_the_receiver_accepts() -> None:
    """413 halves the batch; halves that fit are sent."""

    def handle(request: httpx.Request) -> httpx.Response:
        n = len(json.loads(request.content)["interactions"])
        return httpx.Response(413 if n > 2 else 200)

    out = await deliverer(httpx.MockTransport(handle)).deliver(rows(8))
    assert [o.status for o in out] == ["sent"] * 8


async def test_single_item_413_fails() -> None:
    """A single interaction that is still too large fails with the reason."""
    out = await deliverer(answering(413)).deliver(rows(1))
    assert out[0].status == "failed" and "413" in (out[0].error or "")


async def test_last_attempt_fails_with_reason() -> None:
    """After max_attempts, a retryable answer fails the rows and says why."""
    out = await deliverer(answering(503), max_attempts=3).deliver(rows(2, attempts=3))
    assert {o.status for o in out} == {"failed"}
    assert all("gave up after 3 attempts" in (o.error or "") for o in out)


async def test_connection_errors_and_timeouts_are_retried() -> None:
    """A refused connection and a hang past request_timeout_s both retry."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    out = await deliverer(httpx.MockTransport(refuse)).deliver(rows(1))
    assert out[0].status == "pending" and "ConnectError" in (out[0].error or "")

    async def hang(request: httpx.Request) -> httpx.Response:
        await trio.sleep(10)
        return httpx.Response(200)

    with trio.fail_after(5):
        out = await deliverer(httpx.MockTransport(hang), request_timeout_s=0.2).deliver(rows(1))
    assert out[0].status == "pending" and "timed out" in (out[0].error or "")


def test_body_and_webhook_id() -> None:
    """The body wraps stored documents; the webhook id is stable for the same rows."""
    batch = rows(3)
    assert json.loads(request_body(batch)) == {"interactions": [{"n": 0}, {"n": 1}, {"n": 2}]}
    assert webhook_id(batch) == webhook_id(list(reversed(batch)))
    assert webhook_id(batch) != webhook_id(batch[:2])


async def test_failures_that_open_the_circuit_give_their_attempts_back() -> None:
    """Below the threshold an attempt counts; once the circuit is open it is refunded."""
    d = deliverer(answering(503), circuit_failure_threshold=2)
    first = await d.deliver(rows(2, attempts=3))
    assert {(o.status, o.refund) for o in first} == {("pending", False)}
    second = await d.deliver(rows(2, attempts=3))  # the second failure opens the circuit
    assert d.breaker.is_open
    assert {(o.status, o.refund, o.retry_in_s) for o in second} == {("pending", True, 0.0)}


async def test_410_gone_reports_the_user_and_refunds() -> None:
    """410 Gone tells on_gone about the user; rows stay pending with the attempt given back."""
    d = deliverer(answering(410))
    gone: list[tuple[str, str]] = []
    d.on_gone = lambda user, reason: gone.append((user, reason))
    out = await d.deliver(rows(2))
    assert {(o.status, o.refund) for o in out} == {("pending", True)}
    assert gone == [("u", "HTTP 410: nope")]
    assert not d.breaker.is_open


async def test_after_the_halt_no_request_starts() -> None:
    """Halted (sim stops): ``deliver`` raises ``DeliveryHalted`` and sends nothing."""
    transport = answering(200)
    halted = deliverer(transport)
    halted.halt()
    with pytest.raises(DeliveryHalted):
        await halted.deliver(rows(2))
    assert transport.seen == []  # type: ignore[attr-defined]


def halted_midway(status: int) -> Deliverer:
    """A deliverer halted (as by a signal) while its request is out, then answered ``status``."""
    made: list[Deliverer] = []

    def handle(request: httpx.Request) -> httpx.Response:
        made[0].halt()
        return httpx.Response(status)

    made.append(deliverer(httpx.MockTransport(handle)))
    return made[0]


async def test_a_failure_ending_after_the_halt_is_no_attempt() -> None:
    """A request the halt overtook that ends without a 2xx: no outcome, no failure counted."""
    overtaken = halted_midway(503)
    with pytest.raises(DeliveryHalted):
        await overtaken.deliver(rows(2))
    assert overtaken.breaker.failures == 0
    registry = overtaken.metrics.registry
    assert not registry.get_sample_value("sim_deliveries_total", {"outcome": "retry"})


async def test_a_2xx_ending_after_the_halt_is_delivered() -> None:
    """A request the halt overtook that the receiver accepted is recorded as sent."""
    out = await halted_midway(200).deliver(rows(2))
    assert {o.status for o in out} == {"sent"}


@pytest.mark.parametrize("status", [200, 503])
async def test_a_finished_request_leaves_no_reference_cycle(status: int) -> None:
    """The response, its request and the body sent are freed when dropped, not by the GC."""
    d = deliverer(answering(status))
    gc.collect()
    gc.disable()
    try:
        await d.post(rows(3))
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        cyclic = [o for o in gc.garbage if isinstance(o, httpx.Response | httpx.Request)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cyclic == []
