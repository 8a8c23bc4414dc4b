"""Delivery to the main app: one signed POST per batch, classified into outcomes.

2xx = delivered. 408/409/425/429, 5xx, timeouts and connection errors = retry
with exponential backoff and jitter (``Retry-After`` honoured). 413 = split the
batch. Any other 4xx = permanent failure with the reason kept. httpx errors
never leave this module: they become outcomes.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import trio
from standardwebhooks.webhooks import Webhook

from sim.db.outbox import Claimed, Outcome
from sim.metrics import Metrics
from sim.pipeline.timing import backoff_s, parse_retry_after
from sim.settings import Settings

__all__ = ["Attempt", "Deliverer", "request_body", "webhook_id"]

log = logging.getLogger(__name__)

_RETRYABLE_4XX = frozenset({408, 409, 425, 429})
_WEBHOOK_NS = uuid.UUID("6f1d7c1e-5a3b-4c1e-9a57-2f0e5b7d9c11")


@dataclass(frozen=True, slots=True)
class Attempt:
    """The classified result of one HTTP request."""

    verdict: str  # "ok" | "retry" | "failed" | "split"
    reason: str | None = None
    retry_after_s: float | None = None
    status_code: int | None = None


def request_body(rows: Sequence[Claimed]) -> str:
    """``{"interactions": [...]}`` from the stored JSON documents, without re-parsing them."""
    return '{"interactions": [' + ", ".join(r.payload_json for r in rows) + "]}"


def webhook_id(rows: Sequence[Claimed]) -> str:
    """A message id that is the same for every retry of the same request."""
    key = ",".join(str(r.id) for r in sorted(rows, key=lambda r: r.id))
    return "msg_" + uuid.uuid5(_WEBHOOK_NS, key).hex


def classify(response: httpx.Response) -> Attempt:
    code = response.status_code
    if 200 <= code < 300:
        return Attempt("ok", status_code=code)
    text = response.text[:200].strip().replace("\n", " ")
    reason = f"HTTP {code}" + (f": {text}" if text else "")
    if code == 413:
        return Attempt("split", reason, status_code=code)
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
    ) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.url = settings.delivery_url
        secrets = settings.webhook_secrets
        self._signer = Webhook(secrets[0]) if secrets else None
        self._rng = rng or random.Random()

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
        body = request_body(rows)
        headers = self.headers(rows, body)
        timeout = self.settings.request_timeout_s
        start = trio.current_time()
        attempt = Attempt("retry", f"timed out after {timeout:g}s")
        with trio.move_on_after(timeout):
            try:
                response = await self.client.post(self.url, content=body.encode(), headers=headers)
                attempt = classify(response)
            except httpx.TimeoutException:
                pass  # the default above
            except (httpx.TransportError, httpx.DecodingError) as exc:
                attempt = Attempt("retry", f"{type(exc).__name__}: {exc}"[:300])
        outcome = {"ok": "ok", "retry": "retry"}.get(attempt.verdict, "failed")
        self.metrics.deliveries.labels(outcome).inc()
        self.metrics.delivered_items.labels(outcome).inc(len(rows))
        self.metrics.delivery_seconds.labels(outcome).observe(trio.current_time() - start)
        return attempt

    async def deliver(self, rows: Sequence[Claimed]) -> list[Outcome]:
        """Deliver ``rows`` (splitting on 413) and return one outcome per row."""
        attempt = await self.post(rows)
        if attempt.verdict == "split":
            if len(rows) > 1:
                half = len(rows) // 2
                log.info("Receiver said 413 for %d interactions; splitting the batch", len(rows))
                return [*await self.deliver(rows[:half]), *await self.deliver(rows[half:])]
            attempt = Attempt("failed", attempt.reason, status_code=attempt.status_code)
        return [self._outcome(r, attempt) for r in rows]

    def _outcome(self, row: Claimed, attempt: Attempt) -> Outcome:
        s = self.settings

        def outcome(status: str, retry_in_s: float = 0.0, error: str | None = None) -> Outcome:
            return Outcome(
                row.id, row.user_id, row.seq, row.kind, status, row.run_id, retry_in_s, error
            )

        if attempt.verdict == "ok":
            return outcome("sent")
        if attempt.verdict == "retry":
            if row.attempts >= s.max_attempts:
                return outcome(
                    "failed", error=f"gave up after {row.attempts} attempts: {attempt.reason}"
                )
            if attempt.retry_after_s is not None:
                delay = attempt.retry_after_s * (1 + self._rng.uniform(0, 0.1))
            else:
                delay = backoff_s(row.attempts, s.backoff_base_s, s.backoff_max_s, self._rng)
            return outcome("pending", delay, attempt.reason)
        return outcome("failed", error=attempt.reason)
