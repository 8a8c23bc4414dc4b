"""Which content provider runs: the LLM one when an endpoint is configured, else offline."""

from __future__ import annotations

import logging

import httpx

from sim.metrics import Metrics
from sim.pipeline.content.llm import ChatClient, LLMProvider
from sim.pipeline.content.model import ContentProvider
from sim.pipeline.content.offline import OfflineProvider
from sim.settings import Settings, mask_url

__all__ = ["content_provider", "llm_http_client"]

log = logging.getLogger(__name__)


def llm_http_client(settings: Settings) -> httpx.AsyncClient:
    """The HTTP client for LLM calls (deadlines are per call, with ``trio.fail_after``)."""
    n = settings.llm_concurrency
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    return httpx.AsyncClient(timeout=httpx.Timeout(settings.llm_timeout_s), limits=limits)


def content_provider(
    settings: Settings, metrics: Metrics, http: httpx.AsyncClient
) -> ContentProvider:
    """An ``LLMProvider`` when ``SIM_LLM_BASE_URL`` is set, else an ``OfflineProvider``."""
    if not settings.llm_base_url:
        return OfflineProvider()
    log.info(
        "Content written by %s at %s (offline text where a call fails)",
        settings.llm_model,
        mask_url(settings.llm_base_url),
    )
    return LLMProvider(ChatClient(http, settings, metrics), settings, metrics)
