"""The offline content provider: coherent, niche-specific demo content from a template grammar.

Every item is a pure function of the ``DemoSpec`` (live items: of the spec and the item
number). The initial comments draw from one ``Random`` stream, the DM threads from another,
each video and each live item from its own, all seeded with 64-bit values derived with a
splitmix64 mix (never ``hash()`` or global random state), so output does not depend on the
batch size, the process or the call order. Cross-item structure (video ages and popularity,
replies, DM threads) is derived from cheap per-index values, not from a global shuffle.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_right
from collections.abc import AsyncGenerator, Iterator
from itertools import accumulate, islice
from math import log as ln
from random import Random
from typing import Any

import trio

from sim.pipeline.content.dms import SCRIPTS
from sim.pipeline.content.fans import ACCOUNT, Fans
from sim.pipeline.content.mix import COMMENT_INTENTS, DM_PURPOSES, LANGUAGE, pick
from sim.pipeline.content.model import DemoSpec, Draft, mix, unit
from sim.pipeline.content.niches import NICHE_KEYS, NICHES, Niche
from sim.pipeline.content.writer import VideoPlan, Writer

__all__ = ["OfflineProvider", "niche_of"]

log = logging.getLogger(__name__)

DAY = 86_400.0
VIDEO_SPAN_S = 28 * DAY  # videos were published over the past ~4 weeks
DM_SPAN_S = 14 * DAY  # DM threads started over the past ~2 weeks
MIN_VIDEO_AGE_S = 3_600.0
MIN_THREAD_AGE_S = 600.0
FAN_POOL_MAX = 50_000
RECENT_PER_VIDEO = 3  # earlier commenters remembered per video, for replies
LIVE_DM_SHARE = 0.3
LIVE_THREAD_BLOCK = 6  # live DMs among this many consecutive live items may share a thread
LIVE_REPLY_WINDOW = 8  # a live reply answers one of this many previous live items
_NON_REPLY = {k: v for k, v in COMMENT_INTENTS.items() if k != "reply"}
_LIKES_FACTOR = {"spam": 0.0, "criticism": 0.5, "joke": 2.0, "praise": 1.2}
# tags keeping the derived seed streams apart
(_VIDEO, _COMMENT, _THREAD, _LIVE, _LIVE_KIND, _VIDEO_AGE, _VIDEO_POP) = range(1, 8)
(_NICHE, _VIDEO_TEXT, _LIVE_REPLY, _LIVE_VIDEO, _LIVE_FAN, _PURPOSE) = range(9, 15)


#: a DM message before it has a seq: author, text, extra, age
_Message = tuple[dict[str, str], str, dict[str, Any], float]
#: what a DM thread is about: its purpose, its fan and the grammar's slots
_About = tuple[str, dict[str, str], dict[str, Any]]
_THREAD_LENGTHS = (1, 2, 3, 4, 5)
_THREAD_CUM = tuple(c / 100 for c in accumulate((30, 28, 20, 13)))  # the rest: 5 messages


class _Recent:
    """Each video's last ``RECENT_PER_VIDEO`` comments (handle, age, seq), oldest first.

    Flat arrays, a ring per video: a generator keeps this for its whole run, and every
    user starting at once pauses one generator (a dict of lists of tuples took ~190 KB
    per 10,000-item user, these ~28 KB).
    """

    __slots__ = ("_ages", "_counts", "_handles", "_seqs", "_starts")

    def __init__(self, videos: int) -> None:
        slots = videos * RECENT_PER_VIDEO
        self._handles: list[str] = [""] * slots
        self._ages = array("d", bytes(8 * slots))
        self._seqs = array("q", bytes(8 * slots))
        self._counts = bytearray(videos)
        self._starts = bytearray(videos)

    def count(self, v: int) -> int:
        return self._counts[v]

    def get(self, v: int, i: int) -> tuple[str, float, int]:
        """Video v's i-th remembered comment, oldest first (i < ``count(v)``)."""
        p = v * RECENT_PER_VIDEO + (self._starts[v] + i) % RECENT_PER_VIDEO
        return self._handles[p], self._ages[p], self._seqs[p]

    def add(self, v: int, handle: str, age: float, seq: int) -> None:
        """Remember a comment on video v, forgetting its oldest one when full."""
        n, start = self._counts[v], self._starts[v]
        if n < RECENT_PER_VIDEO:
            p = v * RECENT_PER_VIDEO + (start + n) % RECENT_PER_VIDEO
            self._counts[v] = n + 1
        else:
            p = v * RECENT_PER_VIDEO + start
            self._starts[v] = (start + 1) % RECENT_PER_VIDEO
        self._handles[p], self._ages[p], self._seqs[p] = handle, age, seq


def niche_of(spec: DemoSpec) -> Niche:
    """The account's niche: the spec's, or one derived from the seed."""
    if spec.niche is not None:
        if spec.niche not in NICHES:
            raise ValueError(f"unknown niche {spec.niche!r}")
        return NICHES[spec.niche]
    return NICHES[NICHE_KEYS[mix(spec.seed, _NICHE) % len(NICHE_KEYS)]]


def _validate(spec: DemoSpec) -> Niche:
    if min(spec.videos, spec.comments, spec.dms) < 0:
        raise ValueError(f"negative counts in {spec}")
    if spec.videos == 0 and spec.comments > 0:
        raise ValueError("comments need at least one video")
    return niche_of(spec)


def _pool_size(spec: DemoSpec) -> int:
    """How many distinct fans write comments: grows with the number of comments."""
    return max(8, min(FAN_POOL_MAX, spec.comments // 2 + 10))


def _video_age(seed: int, videos: int, i: int) -> float:
    """Age of video i: stratified over the span, video 0 the oldest, strictly decreasing."""
    u = unit(seed, _VIDEO_AGE, i)
    return MIN_VIDEO_AGE_S + (VIDEO_SPAN_S - MIN_VIDEO_AGE_S) * (videos - i - u) / videos


def _popularity(seed: int, i: int) -> float:
    """Heavy-tailed (Pareto) popularity weight of video i: a few videos get most comments."""
    return float((1.0 - 0.999 * unit(seed, _VIDEO_POP, i)) ** (-1 / 1.3))


def _purpose(seed: int, t: int) -> str:
    return pick(DM_PURPOSES, unit(seed, _PURPOSE, t))


def _ms(seconds: float) -> float:
    """A non-negative age rounded to the millisecond (``round(x, 3)`` is several times slower)."""
    return int(seconds * 1_000.0 + 0.5) / 1_000.0


def _labels(niche: Niche, topic: str, intent: str, sentiment: str) -> dict[str, Any]:
    return {
        "niche": niche.key,
        "topic": topic,
        "intent": intent,
        "sentiment": sentiment,
        "language": LANGUAGE,
    }


class OfflineProvider:
    """Deterministic, seeded demo content without network (thread-safe, no shared state)."""

    name = "offline"

    def __init__(self, locale: str = "en_US") -> None:
        self._fans = Fans(locale)
        self._writer = Writer()
        self._plans: dict[tuple[int, str], list[VideoPlan]] = {}  # live comments' videos
        self._threads: dict[tuple[int, str, int], _About] = {}
        log.debug("offline content provider ready", extra={"locale": locale})

    # --- the provider protocol (async) --------------------------------------------------
    async def initial_batches(
        self, spec: DemoSpec, batch_size: int, skip: int = 0
    ) -> AsyncGenerator[list[Draft], None]:
        batches = self.initial(spec, batch_size)
        while True:
            # a whole batch in a worker thread: on the event loop, a 500-item batch held up
            # every request for ~0.1 s (generation is a pure function of the spec, and what
            # the provider caches is safe to share between threads)
            batch = await trio.to_thread.run_sync(next, batches, None)
            if batch is None:
                return
            if batch[-1].seq < skip:
                continue
            if batch[0].seq < skip:
                batch = [d for d in batch if d.seq >= skip]
            # paused at the yield, this frame must not hold the batch: its consumer waits
            # there for the row budget, long after the batch was stored, and so does every
            # other user's generator (the batch goes out from the stack, not a variable)
            held, batch = [batch], None
            yield held.pop()

    async def live_item(self, spec: DemoSpec, n: int) -> Draft:
        return self.live(spec, n)

    # --- synchronous generation -----------------------------------------------------------
    def initial(self, spec: DemoSpec, batch_size: int) -> Iterator[list[Draft]]:
        """All initial drafts of spec, in seq order, in lists of at most batch_size."""
        _validate(spec)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        drafts = self._drafts(spec)
        # not a generator: a paused generator would keep its last batch alive
        return iter(lambda: list(islice(drafts, batch_size)), [])

    def plans(self, spec: DemoSpec) -> list[VideoPlan]:
        """What each video of spec is about (its topic, format, title detail and title)."""
        niche = niche_of(spec)
        key = (spec.seed, niche.key)
        cached = self._plans.get(key)
        if cached is None or len(cached) != spec.videos:
            plan = self._writer.plan_video
            cached = [plan(niche, Random(mix(spec.seed, _VIDEO, i))) for i in range(spec.videos)]
            if len(self._plans) >= 256:
                self._plans.clear()
            self._plans[key] = cached
        return cached

    def live(self, spec: DemoSpec, n: int) -> Draft:
        """The n-th live draft: a fresh comment or DM (age 0), from (spec, n) alone."""
        niche = _validate(spec)
        if n < 0:
            raise ValueError(f"live item number must be >= 0, got {n}")
        if self._live_is_dm(spec, n):
            return self._live_dm(spec, niche, n)
        return self._live_comment(spec, n)

    def _drafts(self, spec: DemoSpec) -> Iterator[Draft]:
        seed, nv, nc, nd = spec.seed, spec.videos, spec.comments, spec.dms
        niche = niche_of(spec)
        plans = self.plans(spec)
        ages = [_video_age(seed, nv, i) for i in range(nv)]
        weights = [_popularity(seed, i) for i in range(nv)]
        for i in range(nv):
            yield self._video(seed, i, plans[i], ages[i], weights[i])
        cum = list(accumulate(weights))
        pool = _pool_size(spec)
        recent = _Recent(nv)
        thread: list[_Message] = []
        k = 0
        t = -1
        rest = nc + nd
        prev_seq: int | None = None
        comments, threads = Random(mix(seed, _COMMENT)), Random(mix(seed, _THREAD))
        for j in range(rest):
            seq = nv + j
            if (j + 1) * nc // rest > j * nc // rest:  # spreads comments evenly among DMs
                yield self._comment(spec, seq, plans, ages, cum, pool, recent, comments)
                continue
            if k == len(thread):
                t, k, prev_seq = t + 1, 0, None
                thread = self._thread(seed, niche, t, rest - j, threads)
            author, text, extra, age = thread[k]
            yield Draft("dm", seq, dict(author), text, age, None, extra, prev_seq)
            prev_seq = seq
            k += 1

    def _video(self, seed: int, i: int, plan: VideoPlan, age: float, weight: float) -> Draft:
        rng = Random(mix(seed, _VIDEO_TEXT, i))
        text, tags = self._writer.video_text(plan, rng)
        extra: dict[str, Any] = {
            "title": plan.title,
            "duration_s": int(min(3_600.0, 8.0 + rng.lognormvariate(4.0, 1.0))),
            "views": int(weight * (1.0 + age / DAY) ** 0.5 * rng.uniform(150.0, 1_200.0)),
            "hashtags": tags,
            **_labels(plan.niche, plan.topic.name, plan.format, "positive"),
        }
        return Draft("video", i, dict(ACCOUNT), text, round(age, 3), None, extra)

    def _comment(
        self,
        spec: DemoSpec,
        seq: int,
        plans: list[VideoPlan],
        ages: list[float],
        cum: list[float],
        pool: int,
        recent: _Recent,
        stream: Random,
    ) -> Draft:
        rng = stream
        random = rng.random  # bound once: this runs for every comment
        v = min(len(cum) - 1, bisect_right(cum, random() * cum[-1]))
        fan = self._fans.get(spec.seed, int(pool * random() ** 2))
        upper = ages[v]
        intent = pick(COMMENT_INTENTS, random())
        parent: tuple[str, float, int] | None = None
        earlier = recent.count(v)
        if intent == "reply":
            candidate = recent.get(v, int(random() * earlier)) if earlier else None
            if candidate and candidate[0] != fan["handle"] and candidate[1] > 2.0:
                parent, upper = candidate, candidate[1]
            else:
                intent = pick(_NON_REPLY, random())
        # most come within hours of the video (or of the comment answered), the rest any
        # time (Random.expovariate and .uniform, inlined: the same draws and arithmetic)
        delay = 1.0 - ln(1.0 - random()) / (1 / 10_800.0) if random() < 0.7 else upper
        if delay >= upper:  # later: anywhere between publication and now
            delay = upper * (0.05 + (1.0 - 0.05) * random())
        age = _ms(upper - delay)
        draft = self._comment_draft(plans[v], v, intent, rng, fan, parent, seq, age)
        recent.add(v, fan["handle"], age, seq)
        return draft

    def _comment_draft(
        self,
        plan: VideoPlan,
        v: int,
        intent: str,
        rng: Random,
        fan: dict[str, str],
        parent: tuple[str, float, int] | None,
        seq: int,
        age: float,
    ) -> Draft:
        said = self._writer.comment(plan, intent, rng, parent[0] if parent else None)
        likes = 0
        if age > 0:
            likes = int((rng.paretovariate(1.2) - 1.0) * 3.0 * _LIKES_FACTOR.get(intent, 1.0))
        extra: dict[str, Any] = {"likes": likes}
        if parent is not None:
            extra["reply_to"] = parent[0]
        extra["niche"], extra["topic"] = plan.niche.key, plan.topic.name  # _labels, inlined
        extra["intent"], extra["sentiment"], extra["language"] = intent, said.sentiment, LANGUAGE
        parent_seq = parent[2] if parent else None
        return Draft("comment", seq, dict(fan), said.text, age, v, extra, parent_seq)

    def _thread(
        self, seed: int, niche: Niche, t: int, remaining: int, rng: Random
    ) -> list[_Message]:
        """Messages of initial DM thread t, oldest first (seq and parent set by the caller)."""
        length = min(remaining, _THREAD_LENGTHS[bisect_right(_THREAD_CUM, rng.random())])
        age = rng.uniform(MIN_THREAD_AGE_S, DM_SPAN_S)
        messages = []
        about = self._thread_context(seed, niche, t)
        for k in range(length):
            msg = self._message(niche, about, t, k, rng, _ms(age))
            if msg is None:
                break
            messages.append(msg)
            mean = 3_600.0 if msg[0] is ACCOUNT else 1_200.0  # the account answers slower
            age -= min(age / 2, max(5.0, rng.expovariate(1 / mean)))
        return messages

    def _message(
        self, niche: Niche, about: _About, t: int, k: int, rng: Random, age: float
    ) -> _Message | None:
        """Message k of thread t, which is ``about`` (None past the end of its script)."""
        purpose, fan, ctx = about
        script = SCRIPTS[purpose]
        if k >= len(script):
            return None
        direction, sentiment, rule = script[k]
        text = self._writer.dm(niche, rule, rng, ctx)
        extra: dict[str, Any] = {
            "thread": t,
            "thread_index": k,
            "direction": "outbound" if direction == "out" else "inbound",
            "niche": niche.key,  # _labels, inlined: this runs for every message
            "topic": ctx["t"],
            "intent": purpose,
            "sentiment": sentiment,
            "language": LANGUAGE,
        }
        return (ACCOUNT if direction == "out" else fan), text, extra, age

    def _thread_context(self, seed: int, niche: Niche, t: int) -> _About:
        """Thread t's purpose, fan and what it is about (the same for all its messages)."""
        key = (seed, niche.key, t)
        cached = self._threads.get(key)
        if cached is not None:
            return cached
        purpose = _purpose(seed, t)
        fan = self._fans.get(seed, 3 * t + 1)  # injective: one distinct fan per thread
        h = mix(seed, _PURPOSE, t, 1)  # four 16-bit draws (cheaper than seeding a Random)
        topic = niche.topics[(h & 0xFFFF) * len(niche.topics) >> 16]
        ctx: dict[str, Any] = {
            "t": topic.name,
            "first": fan["name"].split()[0],
            "brand": niche.brands[(h >> 16 & 0xFFFF) * len(niche.brands) >> 16],
            "product": niche.product,
            "detail": niche.details[(h >> 32 & 0xFFFF) * len(niche.details) >> 16],
            "tool": niche.tools[(h >> 48) * len(niche.tools) >> 16],
            "field": niche.field,
            "creator": niche.creator,
        }
        if len(self._threads) >= 1024:
            self._threads.clear()
        self._threads[key] = (purpose, fan, ctx)
        return purpose, fan, ctx

    # --- live -------------------------------------------------------------------------------
    def _live_is_dm(self, spec: DemoSpec, n: int) -> bool:
        return spec.videos == 0 or unit(spec.seed, _LIVE_KIND, n) < LIVE_DM_SHARE

    def _live_root(self, spec: DemoSpec, m: int) -> tuple[int, dict[str, str]]:
        """Video and author of live comment m as if it were not a reply."""
        nv = spec.videos
        v = nv - 1 - min(nv - 1, int(nv * unit(spec.seed, _LIVE_VIDEO, m) ** 2))  # newer likelier
        fan = self._fans.get(spec.seed, int(_pool_size(spec) * unit(spec.seed, _LIVE_FAN, m) ** 2))
        return v, fan

    def _wants_reply(self, spec: DemoSpec, m: int) -> bool:
        return unit(spec.seed, _LIVE_REPLY, m) < COMMENT_INTENTS["reply"]

    def _live_comment(self, spec: DemoSpec, n: int) -> Draft:
        rng = Random(mix(spec.seed, _LIVE, n))
        v, fan = self._live_root(spec, n)
        parent = None
        if self._wants_reply(spec, n):
            for m in range(n - 1, max(-1, n - 1 - LIVE_REPLY_WINDOW), -1):
                if self._live_is_dm(spec, m) or self._wants_reply(spec, m):
                    continue
                pv, pfan = self._live_root(spec, m)
                if pfan["handle"] != fan["handle"]:
                    v, parent = pv, (pfan["handle"], 0.0, spec.total + m)
                    break
        intent = "reply" if parent else pick(_NON_REPLY, rng.random())
        plan = self.plans(spec)[v]
        return self._comment_draft(plan, v, intent, rng, dict(fan), parent, spec.total + n, 0.0)

    def _live_dm(self, spec: DemoSpec, niche: Niche, n: int) -> Draft:
        """Live DMs of a block of items form threads; each starts where the last one ended."""
        start = n - n % LIVE_THREAD_BLOCK
        t, k, prev = -1, 0, None
        for m in range(start, n):
            if not self._live_is_dm(spec, m):
                continue
            if t < 0 or k >= len(SCRIPTS[_purpose(spec.seed, t)]):
                t, k = spec.dms + m, 0
            k, prev = k + 1, m
        if t < 0 or k >= len(SCRIPTS[_purpose(spec.seed, t)]):
            t, k, prev = spec.dms + n, 0, None
        about = self._thread_context(spec.seed, niche, t)
        msg = self._message(niche, about, t, k, Random(mix(spec.seed, _LIVE, n)), 0.0)
        assert msg is not None
        author, text, extra, _ = msg
        parent = spec.total + prev if prev is not None else None
        return Draft("dm", spec.total + n, dict(author), text, 0.0, None, extra, parent)
