"""The LLM content provider: the offline generator's structure, the LLM's words.

Every item's shape (kind, seq, author, age, video, parent, thread, labels) comes from
``OfflineProvider``, so order, checkpoints and labels are as offline. The LLM rewrites the
text in calls like the original service made them: one call writes a window's videos and
their comments ("Batch 1: 8 videos, 24 comments in 1 API call"), DM threads get their own
calls. Windows are contiguous in seq; ``llm_concurrency`` of them are written at once and
yielded in order as soon as they are done, so the first items are stored after one round
of calls. A call that fails or answers something unusable leaves its items with the
offline text (logged and counted): the run never stalls and nothing is lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Iterator
from dataclasses import replace
from importlib.resources import files
from itertools import islice
from string import Template
from typing import Any

import trio

from sim.errors import ContentError
from sim.metrics import Metrics
from sim.pipeline.content.checks import on_topic
from sim.pipeline.content.llm.client import ChatClient
from sim.pipeline.content.llm.schemas import DmMessages, LiveText, VideosAndComments
from sim.pipeline.content.model import DemoSpec, Draft
from sim.pipeline.content.offline import OfflineProvider, niche_of
from sim.settings import Settings

__all__ = ["LLMProvider", "prompt"]

log = logging.getLogger(__name__)

MAX_TEXT = 1_000  # characters kept of one LLM text
THREAD_MEMORY = 2_048  # threads whose last messages are remembered (for follow-ups)


def prompt(name: str) -> str:
    """A prompt file shipped next to this module (``prompts/<name>.md``)."""
    return files("sim.pipeline.content.llm").joinpath(f"prompts/{name}.md").read_text("utf-8")


class LLMProvider:
    """Content written by an OpenAI-compatible endpoint, offline text where a call fails."""

    name = "llm"

    def __init__(
        self,
        chat: ChatClient,
        settings: Settings,
        metrics: Metrics,
        offline: OfflineProvider | None = None,
    ) -> None:
        self._chat = chat
        self._s = settings
        self._metrics = metrics
        self._offline = offline or OfflineProvider()
        self._limiter = trio.CapacityLimiter(settings.llm_concurrency)
        self._system = prompt("system")
        self._templates = {n: Template(prompt(n)) for n in ("videos_comments", "dm_threads")}
        self._live = Template(prompt("live_item"))
        self._titles: dict[tuple[int, int], str] = {}  # (seed, video) → the title written
        self._threads: dict[tuple[int, int], list[str]] = {}  # (seed, thread) → last texts

    # --- the provider protocol ---------------------------------------------------------
    async def initial_batches(
        self, spec: DemoSpec, batch_size: int, skip: int = 0
    ) -> AsyncGenerator[list[Draft], None]:
        windows = enumerate(self._windows(spec, skip), 1)  # numbered for the progress log
        while True:
            group = list(islice(windows, self._s.llm_concurrency))
            if not group:
                return
            written: list[list[Draft]] = [[] for _ in group]
            async with trio.open_nursery() as nursery:
                for i, (number, window) in enumerate(group):
                    nursery.start_soon(self._write_window, spec, number, window, written, i)
            for drafts in written:
                for start in range(0, len(drafts), batch_size):
                    yield drafts[start : start + batch_size]
            del group, written  # not kept alive while the consumer stores them

    async def live_item(self, spec: DemoSpec, n: int) -> Draft:
        draft = self._offline.live(spec, n)
        niche = niche_of(spec)
        item = self._describe(spec, draft)
        user = self._live.substitute(
            niche=niche.label, kind=draft.kind, item=json.dumps(item, ensure_ascii=False)
        )
        try:
            async with self._limiter:
                answer = await self._chat.complete(self._system, user, "live_item", LiveText)
        except ContentError as exc:
            log.warning("Live %s written offline (%s)", draft.kind, exc)
            self._metrics.llm_fallbacks.labels("live").inc()
            return draft
        return self._apply(spec, draft, answer.text) or draft

    # --- windows --------------------------------------------------------------------------
    def _windows(self, spec: DemoSpec, skip: int) -> Iterator[list[Draft]]:
        """Contiguous runs of drafts (seq >= skip) small enough for one call of each kind."""
        s = self._s
        window: list[Draft] = []
        videos = comments = 0
        threads: set[int] = set()
        for batch in self._offline.initial(spec, 1_000):
            for d in batch:
                if d.seq < skip:
                    continue
                full = (
                    (d.kind == "video" and videos == s.llm_videos_per_call)
                    or (d.kind == "comment" and comments == s.llm_comments_per_call)
                    or (
                        d.kind == "dm"
                        and d.extra["thread"] not in threads
                        and len(threads) == s.llm_threads_per_call
                    )
                )
                if full:
                    yield window
                    window, videos, comments, threads = [], 0, 0, set()
                window.append(d)
                videos += d.kind == "video"
                comments += d.kind == "comment"
                if d.kind == "dm":
                    threads.add(d.extra["thread"])
        if window:
            yield window

    async def _write_window(
        self, spec: DemoSpec, number: int, window: list[Draft], out: list[list[Draft]], i: int
    ) -> None:
        texts: dict[int, Any] = {}
        posts = [d for d in window if d.kind != "dm"]
        dms = [d for d in window if d.kind == "dm"]
        async with trio.open_nursery() as nursery:
            if posts:
                nursery.start_soon(self._write_posts, spec, number, posts, texts)
            if dms:
                nursery.start_soon(self._write_dms, spec, number, dms, texts)
        out[i] = [self._apply(spec, d, texts.get(d.seq)) or d for d in window]

    async def _write_posts(
        self, spec: DemoSpec, number: int, posts: list[Draft], texts: dict[int, Any]
    ) -> None:
        videos = sum(d.kind == "video" for d in posts)
        items = [self._describe(spec, d) for d in posts]
        answer = await self._call("videos_comments", spec, items, VideosAndComments, "posts")
        if answer is None:
            return
        for v in answer.videos:
            texts[v.id] = (v.title, v.description)
        for c in answer.comments:
            texts[c.id] = c.text
        log.info(
            "Batch %d: %d videos, %d comments in 1 API call",
            number, videos, len(posts) - videos,
        )  # fmt: skip

    async def _write_dms(
        self, spec: DemoSpec, number: int, dms: list[Draft], texts: dict[int, Any]
    ) -> None:
        items = [self._describe(spec, d) for d in dms]
        answer = await self._call("dm_threads", spec, items, DmMessages, "dms")
        if answer is None:
            return
        for m in answer.messages:
            texts[m.id] = m.text
        threads = len({d.extra["thread"] for d in dms})
        log.info("Batch %d: %d DMs (%d threads) in 1 API call", number, len(dms), threads)

    async def _call(
        self, name: str, spec: DemoSpec, items: list[dict[str, Any]], model: Any, kind: str
    ) -> Any:
        niche = niche_of(spec)
        user = self._templates[name].substitute(
            niche=niche.label,
            product=niche.product,
            items=json.dumps(items, ensure_ascii=False, indent=1),
        )
        try:
            async with self._limiter:
                answer = await self._chat.complete(self._system, user, name, model)
        except ContentError as exc:
            log.warning("%d items written offline: the LLM call failed (%s)", len(items), exc)
            self._metrics.llm_fallbacks.labels(kind).inc()
            return None
        wanted = {item["id"] for item in items}
        got = [x.id for x in (answer.messages if kind == "dms" else answer.comments)]
        if kind == "posts":
            got += [v.id for v in answer.videos]
        if sorted(got) != sorted(wanted):
            log.warning("%d items written offline: the LLM answered other ids", len(items))
            self._metrics.llm_fallbacks.labels(kind).inc()
            return None
        return answer

    # --- prompts and answers --------------------------------------------------------------
    def _describe(self, spec: DemoSpec, d: Draft) -> dict[str, Any]:
        """What the LLM is told about one item."""
        x = d.extra
        item: dict[str, Any] = {"id": d.seq, "topic": x["topic"], "sentiment": x["sentiment"]}
        if d.kind == "video":
            item |= {"format": x["intent"], "example_title": x["title"]}
        elif d.kind == "comment":
            assert d.video_index is not None
            title = self._titles.get((spec.seed, d.video_index))
            if title is None:
                title = self._offline.plans(spec)[d.video_index].title
            item |= {"video_title": title, "intent": x["intent"], "author": d.author["name"]}
            if "reply_to" in x:
                item["reply_to"] = x["reply_to"]
        else:
            item |= {
                "thread": x["thread"],
                "purpose": x["intent"],
                "from": "account" if x["direction"] == "outbound" else d.author["name"],
                "step": x["thread_index"],
                "earlier_messages": self._threads.get((spec.seed, x["thread"]), []),
            }
        return item

    def _apply(self, spec: DemoSpec, d: Draft, written: Any) -> Draft | None:
        """``d`` with the LLM's text, or None when there is none or it breaks a rule."""
        x = d.extra
        if d.kind == "video" and isinstance(written, tuple):
            title, description = (w.strip()[:MAX_TEXT] for w in written)
            if not (title and description and on_topic(title, x["niche"], x["topic"])):
                return None
            self._titles[(spec.seed, d.seq)] = title
            tags = " ".join("#" + tag for tag in x["hashtags"])
            return replace(d, text=f"{description}\n\n{tags}", extra={**x, "title": title})
        if not isinstance(written, str) or not written.strip():
            return None
        text = written.strip()[:MAX_TEXT]
        if d.kind == "comment":
            if not on_topic(text, x["niche"], x["topic"]):
                return None
            handle = x.get("reply_to")
            if handle and not text.startswith(handle):
                text = f"{handle} {text}"
        else:
            key = (spec.seed, x["thread"])
            if key not in self._threads and len(self._threads) >= THREAD_MEMORY:
                self._threads.clear()
            self._threads[key] = [*self._threads.get(key, [])[-1:], text]
        return replace(d, text=text)
