"""The LLM content provider: the offline generator's structure, the LLM's words.

Every item's shape (kind, seq, author, age, video, parent, thread, labels) comes from
``OfflineProvider``, so order, ids, checkpoints and labels are as offline. The LLM writes
the text in calls like the original service made them (``plan.py``): one call returns a
group of videos each with its comments ("Batch 1: 8 videos, 24 comments in 1 API call"),
DM threads get their own calls. The drafts are read ahead in seq order and placed into
calls; each round sends up to ``llm_concurrency`` calls at once (always the one the next
item to yield waits for, then calls that are full) and yields, in seq order, every item
whose call is done, so the first items are stored after one round of calls. A call that
fails or answers something unusable leaves its items with the offline text (logged and
counted): the run never stalls and nothing is lost.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import replace
from importlib.resources import files
from string import Template
from typing import Any

import trio

from sim.errors import ContentError
from sim.metrics import Metrics
from sim.pipeline.content.checks import on_topic
from sim.pipeline.content.llm.client import ChatClient
from sim.pipeline.content.llm.plan import Call, Planner
from sim.pipeline.content.llm.schemas import DmThreads, LiveText, VideosWithComments
from sim.pipeline.content.model import DemoSpec, Draft
from sim.pipeline.content.offline import OfflineProvider, niche_of
from sim.settings import Settings

__all__ = ["LLMProvider", "prompt"]

log = logging.getLogger(__name__)

MAX_TEXT = 1_000  # characters kept of one LLM text
THREAD_MEMORY = 2_048  # threads whose last messages are remembered (for follow-ups)
READ_CHUNK = 256  # drafts made per step in a worker thread
READ_AHEAD_ROUNDS = 4  # drafts read ahead: about this many rounds of calls' items,
READ_AHEAD_MAX = 4_096  # but never more than this many


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
        s = self._s
        planner = Planner(s.llm_videos_per_call, s.llm_comments_per_call, s.llm_threads_per_call)
        per_call = s.llm_videos_per_call + s.llm_comments_per_call + 5 * s.llm_threads_per_call
        read_ahead = min(READ_AHEAD_MAX, READ_AHEAD_ROUNDS * s.llm_concurrency * per_call)
        source = self._offline.initial(spec, READ_CHUNK)
        pending: deque[tuple[Draft, Call]] = deque()  # read, not yielded yet, in seq order
        unsent: list[Call] = []  # in the order of their first item
        exhausted, number = False, 0
        while pending or not exhausted:
            while not exhausted and len(pending) < read_ahead:
                if sum(c.full for c in unsent) >= s.llm_concurrency:
                    break
                chunk = await trio.to_thread.run_sync(next, source, None)
                if chunk is None:
                    exhausted = True
                    break
                for d in chunk:
                    if d.seq >= skip:
                        call = planner.add(d)
                        if len(call.drafts) == 1:
                            unsent.append(call)
                        pending.append((d, call))
            if not pending:
                continue
            front = pending[0][1]
            calls = [front, *(c for c in unsent if c is not front and (c.full or exhausted))]
            calls = calls[: s.llm_concurrency]
            for call in calls:
                call.sent = True
            unsent = [c for c in unsent if not c.sent]
            async with trio.open_nursery() as nursery:
                for call in calls:
                    number += 1
                    nursery.start_soon(self._write, spec, number, call)
            ready: list[Draft] = []
            while pending and pending[0][1].done:
                d, call = pending.popleft()
                ready.append(self._apply(spec, d, call.texts.get(d.seq)) or d)
            for start in range(0, len(ready), batch_size):
                yield ready[start : start + batch_size]

    async def live_item(self, spec: DemoSpec, n: int) -> Draft:
        draft = self._offline.live(spec, n)
        niche = niche_of(spec)
        item = self._describe_live(spec, draft)
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

    # --- calls --------------------------------------------------------------------------
    async def _write(self, spec: DemoSpec, number: int, call: Call) -> None:
        """Ask for call's texts; on success they are in ``call.texts``; done either way."""
        try:
            if call.kind == "posts":
                await self._write_posts(spec, number, call)
            else:
                await self._write_dms(spec, number, call)
        finally:
            call.done = True

    async def _write_posts(self, spec: DemoSpec, number: int, call: Call) -> None:
        videos = [self._video_item(spec, v, call) for v in call.on]
        answer = await self._ask("videos_comments", spec, videos, VideosWithComments, number)
        if answer is None:
            return self._fell_back(number, call, "the LLM call failed")
        got = {v.id: sorted(c.id for c in v.comments) for v in answer.videos}
        wanted = {v: sorted(c.seq for c in cs) for v, cs in call.on.items()}
        if len(answer.videos) != len(got) or got != wanted:
            return self._fell_back(number, call, "the LLM answered other ids")
        for v in answer.videos:
            if v.id in call.videos:
                call.texts[v.id] = (v.title, v.description)
            call.texts.update((c.id, c.text) for c in v.comments)
        log.info(
            "Batch %d: %d videos, %d comments in 1 API call",
            number, len(call.videos), call.comments,
        )  # fmt: skip

    async def _write_dms(self, spec: DemoSpec, number: int, call: Call) -> None:
        threads = [self._thread_item(spec, t, ms) for t, ms in call.threads.items()]
        answer = await self._ask("dm_threads", spec, threads, DmThreads, number)
        if answer is None:
            return self._fell_back(number, call, "the LLM call failed")
        got = {t.thread: [m.id for m in t.messages] for t in answer.threads}
        wanted = {t: [m.seq for m in ms] for t, ms in call.threads.items()}
        if len(answer.threads) != len(got) or got != wanted:
            return self._fell_back(number, call, "the LLM answered other ids")
        for t in answer.threads:
            call.texts.update((m.id, m.text) for m in t.messages)
        log.info(
            "Batch %d: %d DM threads, %d messages in 1 API call",
            number, len(call.threads), len(call.drafts),
        )  # fmt: skip

    async def _ask(
        self, name: str, spec: DemoSpec, items: list[dict[str, Any]], model: Any, number: int
    ) -> Any:
        niche = niche_of(spec)
        user = self._templates[name].substitute(
            niche=niche.label,
            product=niche.product,
            items=json.dumps(items, ensure_ascii=False, indent=1),
        )
        try:
            async with self._limiter:
                return await self._chat.complete(self._system, user, name, model)
        except ContentError as exc:
            log.warning("Batch %d: %s", number, exc)
            return None

    def _fell_back(self, number: int, call: Call, why: str) -> None:
        log.warning("Batch %d: %d items written offline: %s", number, len(call.drafts), why)
        self._metrics.llm_fallbacks.labels(call.kind).inc()

    # --- prompts and answers --------------------------------------------------------------
    def _video_item(self, spec: DemoSpec, v: int, call: Call) -> dict[str, Any]:
        """What the LLM is told about video v and the comments the call wants under it."""
        plan = self._offline.plans(spec)[v]
        item: dict[str, Any] = {"id": v, "topic": plan.topic.name}
        new = call.videos.get(v)
        if new is not None:
            x = new.extra
            item |= {"posted": False, "format": x["intent"], "example_title": x["title"]}
        else:
            item |= {"posted": True, "title": self._titles.get((spec.seed, v), plan.title)}
        item["comments"] = [self._comment_item(c) for c in call.on[v]]
        return item

    @staticmethod
    def _comment_item(c: Draft) -> dict[str, Any]:
        x = c.extra
        item = {"id": c.seq, "intent": x["intent"], "sentiment": x["sentiment"]}
        item["author"] = c.author["name"]
        if "reply_to" in x:
            item["reply_to"] = x["reply_to"]
        return item

    def _thread_item(self, spec: DemoSpec, t: int, messages: list[Draft]) -> dict[str, Any]:
        """What the LLM is told about DM thread t and the messages the call wants."""
        x = messages[0].extra
        fans = [m.author["name"] for m in messages if m.extra["direction"] == "inbound"]
        return {
            "thread": t,
            "purpose": x["intent"],
            "topic": x["topic"],
            "fan": fans[0] if fans else "a fan",
            "earlier_messages": self._threads.get((spec.seed, t), []),
            "messages": [
                {
                    "id": m.seq,
                    "from": "account" if m.extra["direction"] == "outbound" else "fan",
                    "step": m.extra["thread_index"],
                    "sentiment": m.extra["sentiment"],
                }
                for m in messages
            ],
        }

    def _describe_live(self, spec: DemoSpec, d: Draft) -> dict[str, Any]:
        """What the LLM is told about one live item."""
        x = d.extra
        item: dict[str, Any] = {"topic": x["topic"], "sentiment": x["sentiment"]}
        if d.kind == "comment":
            assert d.video_index is not None
            title = self._titles.get((spec.seed, d.video_index))
            if title is None:
                title = self._offline.plans(spec)[d.video_index].title
            item |= {"video_title": title, "intent": x["intent"], "author": d.author["name"]}
            if "reply_to" in x:
                item["reply_to"] = x["reply_to"]
        else:
            item |= {
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
