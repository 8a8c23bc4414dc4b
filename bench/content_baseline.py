"""The previous content generator (Faker sentences), kept only as the speed baseline.

``python -m bench.content`` times it side by side with ``OfflineProvider`` in one run.
Unchanged from the version sim shipped before niches, except ``Draft.parent_seq``
(always None) so that today's ``to_rows`` takes its drafts.

Every item is a pure function of the ``DemoSpec`` (live items: of the seed and the item
number). Each item reseeds one shared Faker instance from a 64-bit seed derived with a
splitmix64 mix (never ``hash()`` or global random state), so output does not depend on the
batch size, the process or the call order. Cross-item structure (video ages and popularity,
comment "replies", DM threads) is derived from cheap per-index values, not from a global shuffle.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate, islice
from random import Random
from typing import Any, Literal, Protocol

from faker import Faker

log = logging.getLogger(__name__)

__all__ = ["ContentProvider", "DemoSpec", "Draft", "FakerProvider", "Kind"]

Kind = Literal["video", "comment", "dm"]

DAY = 86_400.0
VIDEO_SPAN_S = 28 * DAY  # videos were published over the past ~4 weeks
DM_SPAN_S = 14 * DAY  # DM threads started over the past ~2 weeks
MIN_VIDEO_AGE_S = 3_600.0
MIN_THREAD_AGE_S = 600.0
FAN_POOL_MAX = 50_000
FAN_CACHE_MAX = 4_096  # fan ids below this are cached: the skewed draw makes them the hot ones
RECENT_PER_VIDEO = 3  # earlier commenters remembered per video, for replies
LIVE_DM_SHARE = 0.3
LIVE_THREAD_BLOCK = 6  # live DMs among this many consecutive live items share a thread
ACCOUNT = {"handle": "@you", "name": "You"}
EMOJI = ("🔥", "😂", "❤️", "😍", "👏", "🙌", "💯", "😭", "🤯", "✨", "👀", "🥹")
OPENERS = ("Love this!", "Haha.", "Okay wow.", "Honestly?", "Wait what.", "Not me rewatching this.")
GREETINGS = ("Hey!", "Hi!", "Hello 👋", "Hey there!", "Quick question:")
REPLIES = ("agreed!", "exactly this", "lol same", "right?!", "this 👆")
_MASK = (1 << 64) - 1
_TWO64 = float(1 << 64)
# tags keeping the derived seed streams apart
_VIDEO, _COMMENT, _THREAD, _LIVE, _LIVE_KIND, _VIDEO_AGE, _VIDEO_POP, _FAN = range(1, 9)


@dataclass(frozen=True)
class DemoSpec:
    """What one user's demo run contains; the seed makes it reproducible."""

    videos: int
    comments: int
    dms: int
    seed: int


@dataclass(frozen=True)
class Draft:
    """One invented item, before delivery. ``extra`` is JSON-serialisable."""

    kind: Kind
    seq: int  # 0-based position in the run: videos first, then comments and DMs interleaved
    author: dict[str, str]  # {"handle": "@...", "name": "..."}
    text: str  # video: the description; comment/dm: the message
    age_s: float  # seconds before the anchor time ("now" at enable), >= 0
    video_index: int | None  # comments only: the video commented on
    # video: title, duration_s, views; comment: likes, reply_to?; dm: thread, thread_index
    extra: dict[str, Any] = field(default_factory=dict)
    parent_seq: int | None = None


class ContentProvider(Protocol):
    """Something that invents demo content: the initial set in batches, then live items."""

    name: str

    def initial(self, spec: DemoSpec, batch_size: int) -> Iterator[list[Draft]]: ...

    def live(self, spec: DemoSpec, n: int) -> Draft: ...


def _mix(*parts: int) -> int:
    """A 64-bit value derived from integers (splitmix64 finaliser folded over the parts)."""
    h = 0x9E3779B97F4A7C15
    for part in parts:
        h = ((h ^ (part & _MASK)) * 0xBF58476D1CE4E5B9) & _MASK
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & _MASK
        h ^= h >> 29
    return h


def _unit(*parts: int) -> float:
    """A deterministic float in [0, 1) derived from integers."""
    return _mix(*parts) / _TWO64


def _slug(name: str) -> str:
    """Lower-case ASCII letters of a name (accents folded), for handles."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", ascii_name.lower())


def _live_is_dm(spec: DemoSpec, n: int) -> bool:
    return spec.videos == 0 or _unit(spec.seed, _LIVE_KIND, n) < LIVE_DM_SHARE


def _validate(spec: DemoSpec) -> None:
    if min(spec.videos, spec.comments, spec.dms) < 0:
        raise ValueError(f"negative counts in {spec}")
    if spec.videos == 0 and spec.comments > 0:
        raise ValueError("comments need at least one video")


def _pool_size(spec: DemoSpec) -> int:
    """How many distinct fans write comments: grows with the number of comments."""
    return max(8, min(FAN_POOL_MAX, spec.comments // 2 + 10))


def _video_age(seed: int, videos: int, i: int) -> float:
    """Age of video i: stratified over the span, video 0 the oldest, strictly decreasing."""
    u = _unit(seed, _VIDEO_AGE, i)
    return MIN_VIDEO_AGE_S + (VIDEO_SPAN_S - MIN_VIDEO_AGE_S) * (videos - i - u) / videos


def _popularity(seed: int, i: int) -> float:
    """Heavy-tailed (Pareto) popularity weight of video i: a few videos get most comments."""
    return float((1.0 - 0.999 * _unit(seed, _VIDEO_POP, i)) ** (-1 / 1.3))


class FakerProvider:
    """Deterministic, seeded demo content from one reseeded Faker instance (thread-safe)."""

    name = "faker"

    def __init__(self, locale: str = "en_US") -> None:
        self._fake = Faker(locale)
        self._fake.seed_instance(0)
        self._rng: Random = self._fake.random  # the instance the Faker providers draw from
        # name pools sampled once with a fixed seed: keeps Faker's name frequencies, and
        # picking from them is ~50x faster than first_name()/last_name() per fan
        firsts = [self._fake.first_name() for _ in range(512)]
        lasts = [self._fake.last_name() for _ in range(512)]
        self._firsts = [(n, _slug(n)) for n in firsts]
        self._lasts = [(n, _slug(n)) for n in lasts]
        self._fan_rng = Random(0)
        self._fans: dict[tuple[int, int], dict[str, str]] = {}
        self._lock = threading.Lock()
        log.debug("faker content provider ready", extra={"locale": locale})

    def initial(self, spec: DemoSpec, batch_size: int) -> Iterator[list[Draft]]:
        """All initial drafts of spec, in seq order, in lists of at most batch_size."""
        _validate(spec)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return self._batches(spec, batch_size)

    def live(self, spec: DemoSpec, n: int) -> Draft:
        """The n-th live draft: a fresh comment or DM (age 0, seq -1), from (seed, n) alone."""
        _validate(spec)
        if n < 0:
            raise ValueError(f"live item number must be >= 0, got {n}")
        seed, nv = spec.seed, spec.videos
        with self._lock:
            rng = self._reseed(seed, _LIVE, n)
            if not _live_is_dm(spec, n):
                v = nv - 1 - min(nv - 1, int(nv * rng.random() ** 2))  # newer videos likelier
                fan = self._fan(seed, int(_pool_size(spec) * rng.random() ** 2))
                text = self._comment_text(rng)
                return Draft("comment", -1, dict(fan), text, 0.0, v, {"likes": 0})
            # live DMs in a block of live items share a thread; live threads are numbered
            # from spec.dms up, initial ones below it
            block = n // LIVE_THREAD_BLOCK
            t = spec.dms + block
            k = sum(1 for m in range(block * LIVE_THREAD_BLOCK, n) if _live_is_dm(spec, m))
            fan = self._fan(seed, 3 * t + 1)
            extra: dict[str, Any] = {"thread": t, "thread_index": k}
            return Draft("dm", -1, dict(fan), self._dm_text(rng, k), 0.0, None, extra)

    def _batches(self, spec: DemoSpec, batch_size: int) -> Iterator[list[Draft]]:
        drafts = self._drafts(spec)

        def take() -> list[Draft]:
            with self._lock:  # the shared Faker instance is only touched under the lock
                return list(islice(drafts, batch_size))

        # not a generator: a paused generator would keep its last batch alive
        return iter(take, [])

    def _drafts(self, spec: DemoSpec) -> Iterator[Draft]:
        seed, nv, nc, nd = spec.seed, spec.videos, spec.comments, spec.dms
        ages = [_video_age(seed, nv, i) for i in range(nv)]
        weights = [_popularity(seed, i) for i in range(nv)]
        for i in range(nv):
            yield self._video(seed, i, ages[i], weights[i])
        cum = list(accumulate(weights))
        pool = _pool_size(spec)
        recent: dict[int, list[tuple[str, float]]] = {}
        thread: list[tuple[str, float]] = []
        fan = ACCOUNT
        c = d = k = 0
        t = -1
        rest = nc + nd
        for j in range(rest):
            if (j + 1) * nc // rest > j * nc // rest:  # spreads comments evenly among DMs
                yield self._comment(spec, nv + j, c, ages, cum, pool, recent)
                c += 1
                continue
            if k == len(thread):
                t, k = t + 1, 0
                thread = self._thread(seed, t, nd - d)
                fan = self._fan(seed, 3 * t + 1)  # injective: one distinct fan per thread
            text, age = thread[k]
            extra: dict[str, Any] = {"thread": t, "thread_index": k}
            yield Draft("dm", nv + j, dict(fan), text, age, None, extra)
            d += 1
            k += 1

    def _video(self, seed: int, i: int, age: float, weight: float) -> Draft:
        rng, fake = self._reseed(seed, _VIDEO, i), self._fake
        r = rng.random()
        if r < 0.35:
            title = fake.catch_phrase()
        elif r < 0.7:
            title = fake.sentence(nb_words=rng.randint(2, 7)).rstrip(".")
        elif r < 0.85:
            title = f"How I {fake.bs()}"
        else:
            title = f"{fake.word().capitalize()} vlog #{i + 1}"
        text = fake.paragraph(nb_sentences=rng.randint(1, 5))
        if rng.random() < 0.3:
            text += " " + rng.choice(EMOJI)
        if rng.random() < 0.6:
            text += "\n\n" + " ".join("#" + w for w in fake.words(rng.randint(1, 5)))
        extra: dict[str, Any] = {
            "title": title,
            "duration_s": int(min(3_600.0, 8.0 + rng.lognormvariate(4.0, 1.0))),
            "views": int(weight * (1.0 + age / DAY) ** 0.5 * rng.uniform(150.0, 1_200.0)),
        }
        return Draft("video", i, dict(ACCOUNT), text, round(age, 3), None, extra)

    def _comment(
        self,
        spec: DemoSpec,
        seq: int,
        c: int,
        ages: list[float],
        cum: list[float],
        pool: int,
        recent: dict[int, list[tuple[str, float]]],
    ) -> Draft:
        rng = self._reseed(spec.seed, _COMMENT, c)
        v = min(len(cum) - 1, bisect_right(cum, rng.random() * cum[-1]))
        fan = self._fan(spec.seed, int(pool * rng.random() ** 2))
        upper = ages[v]
        reply_to = None
        earlier = recent.setdefault(v, [])
        if earlier and rng.random() < 0.25:
            handle, parent_age = rng.choice(earlier)
            if handle != fan["handle"] and parent_age > 2.0:
                reply_to, upper = handle, parent_age
        # most come within hours of the video (or of the comment answered), the rest any time
        delay = 1.0 + rng.expovariate(1 / 10_800.0) if rng.random() < 0.7 else upper
        if delay >= upper:  # later: anywhere between publication and now
            delay = upper * rng.uniform(0.05, 1.0)
        age = round(upper - delay, 3)
        if reply_to is None:
            text = self._comment_text(rng)
        elif rng.random() < 0.4:
            text = f"{reply_to} {rng.choice(REPLIES)} {rng.choice(EMOJI)}"
        else:
            text = f"{reply_to} {self._fake.sentence(nb_words=rng.randint(3, 12))}"
        earlier.append((fan["handle"], age))
        if len(earlier) > RECENT_PER_VIDEO:
            del earlier[0]
        likes = int((rng.paretovariate(1.2) - 1.0) * 3.0)
        extra: dict[str, Any] = {"likes": likes}
        if reply_to is not None:
            extra["reply_to"] = reply_to
        return Draft("comment", seq, dict(fan), text, age, v, extra)

    def _thread(self, seed: int, t: int, remaining: int) -> list[tuple[str, float]]:
        """Messages (text, age) of DM thread t, oldest first."""
        rng = self._reseed(seed, _THREAD, t)
        length = min(remaining, rng.choices((1, 2, 3, 4, 5), (30, 28, 20, 13, 9))[0])
        age = rng.uniform(MIN_THREAD_AGE_S, DM_SPAN_S)
        messages = []
        for k in range(length):
            messages.append((self._dm_text(rng, k), round(age, 3)))
            age -= min(age / 2, max(5.0, rng.expovariate(1 / 1_200.0)))
        return messages

    def _reseed(self, *parts: int) -> Random:
        self._rng.seed(_mix(*parts))
        return self._rng

    def _fan(self, seed: int, fan_id: int) -> dict[str, str]:
        """Fan fan_id of seed: a name and a handle, unique per id (trailing digits encode it)."""
        key = (seed, fan_id)
        cached = self._fans.get(key)
        if cached is not None:
            return cached
        rng = self._fan_rng  # separate from the item stream: cache hits must not shift it
        rng.seed(_mix(seed, _FAN, fan_id))
        first, a = rng.choice(self._firsts)
        last, b = rng.choice(self._lasts)
        style = rng.randrange(4)
        base = (a + b, f"{a}.{b}", f"{a}_", b + a[:1])[style] or "fan"
        fan = {"handle": f"@{base}{fan_id * 10 + rng.randrange(10)}", "name": f"{first} {last}"}
        if fan_id < FAN_CACHE_MAX:
            if len(self._fans) >= 4 * FAN_CACHE_MAX:
                self._fans.clear()
            self._fans[key] = fan
        return fan

    def _comment_text(self, rng: Random) -> str:
        fake = self._fake
        r = rng.random()
        if r < 0.12:
            return "".join(rng.choices(EMOJI, k=rng.randint(1, 4)))
        if r < 0.5:
            text = fake.sentence(nb_words=rng.randint(2, 10))
        elif r < 0.8:
            text = f"{rng.choice(OPENERS)} {fake.sentence(nb_words=rng.randint(3, 10))}"
        else:
            text = fake.paragraph(nb_sentences=rng.randint(2, 4))
        if rng.random() < 0.4:
            text += " " + rng.choice(EMOJI) * rng.randint(1, 3)
        return text

    def _dm_text(self, rng: Random, k: int) -> str:
        body = self._fake.sentence(nb_words=rng.randint(3, 12))
        r = rng.random()
        if k == 0 and r < 0.5:
            return f"{rng.choice(GREETINGS)} {body}"
        if r < 0.25:
            return body.rstrip(".") + "?"
        if r < 0.4:
            return f"{body} {rng.choice(EMOJI)}"
        return body
