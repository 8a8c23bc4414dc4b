"""One structured Chat Completions call to an OpenAI-compatible endpoint, from Trio.

The answer must be JSON matching a strict JSON schema (``response_format: json_schema``),
validated with pydantic. Retries follow openai-python: 408, 409, 429, 5xx, timeouts and
connection errors, waiting ``retry-after-ms`` / ``Retry-After`` (up to 60 s) when given,
else 0.5 s · 2^n capped at 8 s with jitter. A truncated answer (``finish_reason ==
"length"``), a refusal or invalid JSON is a ``ContentError`` at once (not retried).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, TypeVar

import httpx
import trio
from pydantic import BaseModel, ValidationError

from sim.errors import ContentError
from sim.metrics import Metrics
from sim.pipeline.timing import backoff_s, parse_retry_after
from sim.settings import Settings

__all__ = ["RETRY_STATUSES", "ChatClient", "strict_schema"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
MAX_RETRY_AFTER_S = 60.0
BACKOFF_BASE_S, BACKOFF_MAX_S = 0.5, 8.0


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema as strict mode wants it: every property required, no extras."""

    def tighten(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("title", None)  # pydantic's annotation, not a property
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
                node["additionalProperties"] = False
                for prop in node["properties"].values():
                    tighten(prop)
            for key, value in node.items():
                if key != "properties":
                    tighten(value)
        elif isinstance(node, list):
            for value in node:
                tighten(value)

    schema = model.model_json_schema()
    tighten(schema)
    return schema


def _retry_after_s(response: httpx.Response) -> float | None:
    ms = response.headers.get("retry-after-ms")
    if ms:
        try:
            return min(MAX_RETRY_AFTER_S, max(0.0, float(ms) / 1000))
        except ValueError:
            pass
    seconds = parse_retry_after(response.headers.get("retry-after"))
    return None if seconds is None or seconds > MAX_RETRY_AFTER_S else seconds


class ChatClient:
    """Structured calls with retries, a deadline per attempt, and metrics."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: Settings,
        metrics: Metrics,
        *,
        rng: random.Random | None = None,
    ) -> None:
        if not settings.llm_base_url:
            raise ValueError("SIM_LLM_BASE_URL is not set")
        self._http = http
        self._s = settings
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._url = settings.llm_base_url.rstrip("/") + "/chat/completions"
        self._headers = {"content-type": "application/json"}
        if settings.llm_api_key:
            self._headers["authorization"] = f"Bearer {settings.llm_api_key}"

    async def complete(self, system: str, user: str, name: str, model: type[M]) -> M:
        """The endpoint's answer to (system, user) as a ``model``; ``ContentError`` if none."""
        body = {
            "model": self._s.llm_model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": True, "schema": strict_schema(model)},
            },
        }
        retries = self._s.llm_max_retries
        for attempt in range(retries + 1):
            wait = await self._attempt(body, model, attempt + 1, final=attempt == retries)
            if isinstance(wait, BaseModel):
                return wait
            log.warning("LLM call failed (%s); retry %d in %.1fs", wait[1], attempt + 1, wait[0])
            await trio.sleep(wait[0])
        raise AssertionError("unreachable")  # the final attempt returns or raises

    async def _attempt(
        self, body: dict[str, Any], model: type[M], attempt: int, *, final: bool
    ) -> M | tuple[float, str]:
        """One try: the answer, or (delay, reason) before the next; raises when it is over."""
        started = time.perf_counter()
        retry_after: float | None = None
        try:
            with trio.fail_after(self._s.llm_timeout_s):
                response = await self._http.post(self._url, json=body, headers=self._headers)
        except trio.TooSlowError:
            reason = f"no answer within {self._s.llm_timeout_s:g}s"
        except httpx.HTTPError as exc:  # connection errors, httpx's own timeouts
            reason = f"{type(exc).__name__}: {exc}"
        else:
            code = response.status_code
            if 200 <= code < 300:
                return self._parse(response, model, started)
            reason = f"HTTP {code}"
            if code not in RETRY_STATUSES and code < 500:
                self._observe("failed", started)
                raise ContentError(f"LLM endpoint answered {reason}: {response.text[:200]}")
            retry_after = _retry_after_s(response)
        if final:
            self._observe("failed", started)
            raise ContentError(f"LLM call failed: {reason}")
        self._observe("retry", started)
        delay = retry_after
        if delay is None:
            delay = backoff_s(attempt, BACKOFF_BASE_S, BACKOFF_MAX_S, self._rng)
        return delay, reason

    def _parse(self, response: httpx.Response, model: type[M], started: float) -> M:
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice["message"]
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            self._observe("failed", started)
            raise ContentError(f"LLM answer is not a chat completion: {exc!r}") from exc
        for kind in ("prompt", "completion"):
            tokens = usage.get(f"{kind}_tokens")
            if isinstance(tokens, int) and tokens >= 0:
                self._metrics.llm_tokens.labels(kind).inc(tokens)
        if choice.get("finish_reason") == "length":
            self._observe("failed", started)
            raise ContentError("LLM answer was cut off (finish_reason length)")
        if message.get("refusal"):
            self._observe("failed", started)
            raise ContentError(f"LLM refused: {str(message['refusal'])[:200]}")
        try:
            parsed = model.model_validate_json(message.get("content") or "")
        except ValidationError as exc:
            self._observe("failed", started)
            raise ContentError(f"LLM answer does not match the schema: {exc.errors()[:1]}") from exc
        self._observe("ok", started)
        return parsed

    def _observe(self, outcome: str, started: float) -> None:
        self._metrics.llm_calls.labels(outcome).inc()
        self._metrics.llm_seconds.labels(outcome).observe(time.perf_counter() - started)
