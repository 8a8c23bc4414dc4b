"""Delivery to the main app: one signed POST per batch, classified into outcomes.

2xx = delivered. 408/409/425/429, 5xx, timeouts and connection errors = retry
(``sim.pipeline.policy`` holds the policy). 413 = split the batch. 410 Gone = stop
sending: the user's demo mode is turned off. Any other 4xx = permanent failure
with the reason kept. Each request is reported to the circuit breaker and to the
attempt log. httpx errors never leave this module: they become outcomes.

Once ``halt()`` was called (sim stops, see ``sim.pipeline.sender``) no request
starts, and a request that ends without a 2xx raises ``DeliveryHalted`` instead of
becoming an outcome: it counts neither as an attempt nor for the circuit breaker.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import trio
from standardwebhooks.webhooks import Webhook

from sim.db.outbox import Claimed, Outcome
from sim.errors import SimError
from sim.metrics import Metrics
from sim.pipeline.attempt_log import AttemptLog
from sim.pipeline.breaker import FREE, Breaker, Pass
from sim.pipeline.policy import Attempt, DeliveryPolicy
from sim.pipeline.timing import parse_retry_after
from sim.settings import Settings

__all__ = ["Attempt", "Deliverer", "DeliveryHalted", "GoneFn", "request_body", "webhook_id"]

#: told when the main app answered 410 Gone for a user's batch: (user_id, reason)
GoneFn = Callable[[str, str], None]

log = logging.getLogger(__name__)

_RETRYABLE_4XX = frozenset({408, 409, 425, 429})
_WEBHOOK_NS = uuid.UUID("6f1d7c1e-5a3b-4c1e-9a57-2f0e5b7d9c11")


class DeliveryHalted(SimError):
    """sim stopped delivering while these rows were being sent: give them back."""

    code = "delivery_halted"


def request_body(rows: Sequence[Claimed]) -> str:
    """``{"interactions": [...]}`` from the stored JSON documents, without re-parsing them."""
    return '{"interactions": [' + ", ".join(r.payload_json for r in rows) + "]}"


def webhook_id(rows: Sequence[Claimed]) -> str:
    """A message id that is the same for every retry of the same request."""
    # sorted as text: a UUID's text sorts as its number does, without comparing UUID objects
    key = ",".join(sorted([str(r.id) for r in rows]))
    return "msg_" + uuid.uuid5(_WEBHOOK_NS, key).hex


def unlink(response: httpx.Response) -> None:
    """Break httpx's reference cycle around a finished ``response``.

    The response and the stream bound to it refer to each other, and through the
    request to the body sent: without this, each request's body (up to a whole batch)
    stayed alive until the garbage collector's next pass found the cycle, which with
    young collections far apart added ~20 MB to the peak at 1,000,000 interactions. Once
    unlinked, dropping the response frees it and the body at once.
    """
    response.stream = httpx.ByteStream(b"")


def classify(response: httpx.Response) -> Attempt:
    code = response.status_code
    if 200 <= code < 300:
        return Attempt("ok", status_code=code)
    text = response.text[:200].strip().replace("\n", " ")
    reason = f"HTTP {code}" + (f": {text}" if text else "")
    if code == 413:
        return Attempt("split", reason, status_code=code)
    if code == 410:
        return Attempt("gone", reason, status_code=code)
    if code in _RETRYABLE_4XX or code >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Attempt("retry", reason, retry_after, code)
    return Attempt("failed", reason, status_code=code)


class Deliverer:
    """Sends batches through one shared ``httpx.AsyncClient``.

    How many requests run at once is the sender's to bound (``http_concurrency``).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        metrics: Metrics,
        *,
        rng: random.Random | None = None,
        breaker: Breaker | None = None,
        attempt_log: AttemptLog | None = None,
        on_gone: GoneFn | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.url = settings.delivery_url
        secrets = settings.webhook_secrets
        self._signer = Webhook(secrets[0]) if secrets else None
        self.policy = DeliveryPolicy(settings, rng)
        self.breaker = breaker or Breaker(settings, metrics)
        self.attempt_log = attempt_log
        self.on_gone = on_gone
        #: sim stops delivering (set once, by ``halt``)
        self.halted = False

    def halt(self) -> None:
        """From now on start no request, and count none that ends without a 2xx.

        A plain assignment: safe to call from a signal handler, before the in-flight
        requests are cancelled (the bundled sink already answers them 503 by then).
        """
        self.halted = True

    def headers(self, rows: Sequence[Claimed], body: str) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._signer is not None:
            msg_id = webhook_id(rows)
            now = datetime.now(UTC)
            headers["webhook-id"] = msg_id
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = self._signer.sign(msg_id, now, body)
        return headers

    async def post(self, rows: Sequence[Claimed]) -> Attempt:
        """One request, bounded by ``request_timeout_s`` in total."""
        if self.halted:
            raise DeliveryHalted("sim stopped delivering")
        body = request_body(rows)
        headers = self.headers(rows, body)
        timeout = self.settings.request_timeout_s
        start = trio.current_time()
        attempt = Attempt("retry", f"timed out after {timeout:g}s")
        with trio.move_on_after(timeout):
            try:
                response = await self.client.post(self.url, content=body.encode(), headers=headers)
                attempt = classify(response)
                unlink(response)
            except httpx.TimeoutException:
                pass  # the default above
            except (httpx.TransportError, httpx.DecodingError) as exc:
                attempt = Attempt("retry", f"{type(exc).__name__}: {exc}"[:300])
        if self.halted and attempt.verdict != "ok":
            # ended after sim stopped delivering: not an answer about the rows
            raise DeliveryHalted(f"sim stopped delivering ({attempt.reason})")
        latency_s = trio.current_time() - start
        outcome = {"ok": "ok", "retry": "retry"}.get(attempt.verdict, "failed")
        self.metrics.deliveries.labels(outcome).inc()
        self.metrics.delivered_items.labels(outcome).inc(len(rows))
        self.metrics.delivery_seconds.labels(outcome).observe(latency_s)
        return Attempt(
            attempt.verdict,
            attempt.reason,
            attempt.retry_after_s,
            attempt.status_code,
            latency_s,
            headers.get("webhook-id"),
        )

    async def deliver(self, rows: Sequence[Claimed], ticket: Pass = FREE) -> list[Outcome]:
        """Deliver ``rows`` (splitting on 413) and return one outcome per row.

        ``ticket`` is the circuit breaker's pass the rows were claimed with.
        """
        sent_at = datetime.now(UTC)
        attempt = await self.post(rows)
        if attempt.verdict == "split":
            if len(rows) > 1:
                self.breaker.report(ticket, down=False)
                if self.attempt_log is not None:  # its halves are sent at once
                    self.attempt_log.add(rows, attempt, [], sent_at)
                half = len(rows) // 2
                log.info("Receiver said 413 for %d interactions; splitting the batch", len(rows))
                return [
                    *await self.deliver(rows[:half], ticket),
                    *await self.deliver(rows[half:], ticket),
                ]
            attempt = replace(attempt, verdict="failed")
        self.breaker.report(ticket, down=attempt.down, reason=attempt.reason)
        # a failure with the circuit open (this one opened it, or it was a probe) does not
        # count against the rows; nor does a 410, which turns demo mode off instead
        refund = (attempt.down and self.breaker.is_open) or attempt.verdict == "gone"
        outcomes = [self.policy.outcome(r, attempt, refund=refund) for r in rows]
        if self.attempt_log is not None:
            self.attempt_log.add(rows, attempt, outcomes, sent_at)
        if attempt.verdict == "gone" and self.on_gone is not None:
            for user_id in sorted({r.user_id for r in rows}):
                self.on_gone(user_id, attempt.reason or "HTTP 410")
        return outcomes
