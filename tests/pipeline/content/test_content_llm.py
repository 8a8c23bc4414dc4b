"""Tests of the LLM provider against a local fake endpoint: batching, fallbacks, retries."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
from fakellm import FakeLLM, fake_llm_app

from sim.metrics import Metrics
from sim.pipeline.content import DemoSpec, Draft, OfflineProvider
from sim.pipeline.content.checks import measure
from sim.pipeline.content.factory import content_provider, llm_http_client
from sim.pipeline.content.llm import LLMProvider, strict_schema
from sim.pipeline.content.llm.schemas import DmThreads, VideosWithComments
from sim.settings import Settings

SPEC = DemoSpec(videos=8, comments=40, dms=20, seed=4, niche="cooking")
KEY = "sk-test-secret-key"


@asynccontextmanager
async def llm(fake: FakeLLM, **knobs: object) -> AsyncIterator[tuple[LLMProvider, Metrics]]:
    """An LLMProvider talking to a fake endpoint served on 127.0.0.1."""
    from conftest import served

    async with served(fake_llm_app(fake)) as url:
        values: dict[str, object] = {"llm_timeout_s": 5.0, **knobs}
        settings = Settings(llm_base_url=f"{url}/v1", llm_api_key=KEY, **values)  # type: ignore[arg-type]
        metrics = Metrics()
        async with llm_http_client(settings) as http:
            provider = content_provider(settings, metrics, http)
            assert isinstance(provider, LLMProvider)
            yield provider, metrics


async def everything(provider: LLMProvider, spec: DemoSpec = SPEC, skip: int = 0) -> list[Draft]:
    """Every initial draft the provider yields, flattened."""
    return [d async for batch in provider.initial_batches(spec, 500, skip) for d in batch]


def count(metrics: Metrics, name: str, **labels: str) -> float:
    """A counter's value from the metrics registry."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


def same_shape(a: list[Draft], b: list[Draft]) -> bool:
    """Same items in the same order with the same structure and labels (texts aside)."""

    def shape(d: Draft) -> tuple[object, ...]:
        extra = {k: v for k, v in d.extra.items() if k != "title"}
        return d.kind, d.seq, d.author["handle"], d.age_s, d.video_index, d.parent_seq, extra

    return [shape(d) for d in a] == [shape(d) for d in b]


def test_schemas_are_strict() -> None:
    """Every object in the answer schemas requires all its properties and allows no others."""
    for model in (VideosWithComments, DmThreads):
        stack = [strict_schema(model)]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if node.get("type") == "object" and "properties" in node:
                    assert node["required"] == list(node["properties"])
                    assert node["additionalProperties"] is False
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)


def test_without_an_endpoint_content_is_offline() -> None:
    """No SIM_LLM_BASE_URL: the offline provider; the key never shows in the settings."""
    settings = Settings(llm_api_key=KEY)
    assert isinstance(content_provider(settings, Metrics(), httpx.AsyncClient()), OfflineProvider)
    assert KEY not in repr(settings) and KEY not in str(settings.describe())


def asked(fake: FakeLLM, name: str) -> list[list[dict[str, Any]]]:
    """The items of every request for schema ``name``, as its prompt listed them."""
    out = []
    for _, body, _ in fake.requests:
        if body["response_format"]["json_schema"]["name"] == name:
            content = body["messages"][-1]["content"]
            out.append(json.loads(content.rsplit(":\n", 1)[1]))
    return out


async def test_valid_answers_are_used_in_batches(caplog: pytest.LogCaptureFixture) -> None:
    """A call returns videos each with its comments, DM threads have their own calls."""
    fake = FakeLLM()
    caplog.set_level(logging.INFO)
    async with llm(fake) as (provider, metrics):
        drafts = await everything(provider)
        live = [await provider.live_item(SPEC, n) for n in range(6)]
    offline = [d for b in OfflineProvider().initial(SPEC, 500) for d in b]
    assert same_shape(drafts, offline)
    assert all("Fake" in d.text for d in drafts) and all("Fake" in d.text for d in live)
    assert all(d.extra["title"].startswith("Fake") for d in drafts if d.kind == "video")
    assert measure(drafts).on_topic_share == 1.0 and measure(drafts + live).order_violations == []
    # 8 videos with their first 24 comments, then the other 16 under the videos posted
    assert "Batch 1: 8 videos, 24 comments in 1 API call" in caplog.text
    assert re.search(r"Batch \d+: 0 videos, 16 comments in 1 API call", caplog.text)
    assert re.search(r"Batch \d+: \d+ DM threads, \d+ messages in 1 API call", caplog.text)
    first, second = sorted(asked(fake, "videos_comments"), key=lambda call: call[0]["posted"])
    assert [v["posted"] for v in first] == [False] * 8 and all(v["posted"] for v in second)
    by_seq = {d.seq: d for d in offline}
    for video in first + second:
        assert all(by_seq[c["id"]].video_index == video["id"] for c in video["comments"])
    dm_calls = asked(fake, "dm_threads")
    assert all(len(call) <= 6 for call in dm_calls)
    messages = [m["id"] for call in dm_calls for t in call for m in t["messages"]]
    assert sorted(messages) == [d.seq for d in offline if d.kind == "dm"]
    assert all(h["authorization"] == f"Bearer {KEY}" for _, _, h in fake.requests)
    assert all(b["response_format"]["json_schema"]["strict"] is True for _, b, _ in fake.requests)
    assert count(metrics, "sim_llm_calls_total", outcome="ok") == len(fake.requests)
    assert count(metrics, "sim_llm_tokens_total", kind="completion") == 50 * len(fake.requests)
    assert count(metrics, "sim_llm_fallbacks_total", kind="posts") == 0


async def test_batch_sizes_are_settings() -> None:
    """Each posts call holds one group of videos and at most the configured comments."""
    fake = FakeLLM()
    spec = DemoSpec(videos=7, comments=60, dms=30, seed=9, niche="music")
    knobs = {"llm_videos_per_call": 3, "llm_comments_per_call": 5, "llm_threads_per_call": 2}
    async with llm(fake, **knobs) as (provider, _):
        drafts = await everything(provider, spec)
    assert same_shape(drafts, [d for b in OfflineProvider().initial(spec, 500) for d in b])
    assert all("Fake" in d.text for d in drafts)
    posts = asked(fake, "videos_comments")
    for call in posts:
        assert len({v["id"] // 3 for v in call}) == 1  # one group of 3 videos
        assert sum(len(v["comments"]) for v in call) <= 5
    assert sum(not v["posted"] for call in posts for v in call) == 7  # each video written once
    assert all(len(call) <= 2 for call in asked(fake, "dm_threads"))


async def test_first_items_come_before_the_last_call() -> None:
    """The first batch is yielded after one round of calls, long before the run's last call."""
    fake = FakeLLM()
    spec = DemoSpec(videos=20, comments=400, dms=200, seed=3, niche="tech")
    async with llm(fake, llm_concurrency=2) as (provider, _):
        batches = provider.initial_batches(spec, 50)
        first = await anext(batches)
        calls_then = len(fake.requests)
        rest = [d async for batch in batches for d in batch]
    assert first[0].seq == 0 and calls_then <= 2
    assert len(first) + len(rest) == spec.total and len(fake.requests) > 10 * calls_then


async def test_resuming_skips_what_was_stored() -> None:
    """With skip, only later items are written (and asked for); stored videos are repeated."""
    fake = FakeLLM()
    async with llm(fake) as (provider, _):
        drafts = await everything(provider, skip=30)
    assert [d.seq for d in drafts] == list(range(30, SPEC.total))
    assert all(v["posted"] for call in asked(fake, "videos_comments") for v in call)


@pytest.mark.parametrize("mode", ["invalid", "length", "refusal"])
async def test_unusable_answers_fall_back_to_offline_text(mode: str) -> None:
    """Invalid JSON, a truncated answer or a refusal: offline text, counted, not retried."""
    fake = FakeLLM(default=mode)
    async with llm(fake) as (provider, metrics):
        drafts = await everything(provider)
        live = await provider.live_item(SPEC, 0)
    offline = OfflineProvider()
    assert [vars(d) for d in drafts] == [vars(d) for b in offline.initial(SPEC, 500) for d in b]
    assert vars(live) == vars(offline.live(SPEC, 0))
    calls = len(fake.requests)
    assert count(metrics, "sim_llm_calls_total", outcome="failed") == calls
    fallbacks = sum(
        count(metrics, "sim_llm_fallbacks_total", kind=k) for k in ("posts", "dms", "live")
    )
    assert fallbacks == calls


async def test_429_retry_after_is_honoured() -> None:
    """A 429 with Retry-After: 1 is retried no sooner than a second later, then succeeds."""
    fake = FakeLLM(script=["429"])
    async with llm(fake, llm_concurrency=1) as (provider, metrics):
        draft = await provider.live_item(SPEC, 0)
    assert "Fake" in draft.text
    (first, _, _), (second, _, _) = fake.requests[:2]
    assert second - first >= 0.95
    assert count(metrics, "sim_llm_calls_total", outcome="retry") == 1


async def test_500_is_retried_then_falls_back() -> None:
    """5xx answers are retried with backoff; when retries run out the text is offline."""
    fake = FakeLLM(script=["500"])
    async with llm(fake) as (provider, metrics):
        assert "Fake" in (await provider.live_item(SPEC, 0)).text
        fake.default = "500"
        draft = await provider.live_item(SPEC, 1)
    assert draft == OfflineProvider().live(SPEC, 1)
    assert len(fake.requests) == 2 + 4  # one retry, then 1 + llm_max_retries (3)
    assert count(metrics, "sim_llm_fallbacks_total", kind="live") == 1


async def test_a_hanging_endpoint_meets_the_deadline() -> None:
    """A call that never answers ends at llm_timeout_s; the batch falls back, nothing stalls."""
    fake = FakeLLM(default="hang")
    async with llm(fake, llm_timeout_s=0.3, llm_max_retries=1) as (provider, metrics):
        drafts = await everything(provider, DemoSpec(2, 5, 3, seed=1, niche="pets"))
    assert len(drafts) == 10
    assert count(metrics, "sim_llm_calls_total", outcome="failed") == 2  # posts and DMs
    assert count(metrics, "sim_llm_calls_total", outcome="retry") == 2


async def test_llm_text_is_stored_and_delivered(settings: Settings) -> None:
    """Through the whole pipeline: what the LLM wrote is in the outbox and reaches the sink."""
    from conftest import served
    from pipekit import stack

    fake = FakeLLM()
    async with served(fake_llm_app(fake)) as llm_url:
        s = settings.replace(llm_base_url=f"{llm_url}/v1")
        async with llm_http_client(s) as http:
            factory = partial(content_provider, s, Metrics(), http)
            async with stack(s, provider_factory=factory) as st:
                plan = {"videos": 2, "comments": 12, "dms": 6, "live_per_minute": 0, "seed": 1}
                assert (await st.enable("llm-user", **plan)).status_code == 202
                doc = await st.wait_settled("llm-user", timeout_s=60)
                page = await st.sim.get("/v1/users/llm-user/interactions", params={"limit": 50})
    assert doc["counts"]["sent"] == 20
    items = page.json()["items"]
    assert len(items) == 20 and all("Fake" in i["payload"]["text"] for i in items)
    assert all(i["payload"]["niche"] and i["payload"]["intent"] for i in items)
