"""What content providers make and how they are called: specs, drafts, the provider protocol."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["ContentProvider", "DemoSpec", "Draft", "Kind", "fold", "mix", "unit"]

Kind = Literal["video", "comment", "dm"]

_MASK = (1 << 64) - 1
_TWO64 = float(1 << 64)


@dataclass(frozen=True)
class DemoSpec:
    """What one user's demo run contains; the seed makes it reproducible.

    ``niche`` is the account's niche (``None``: derived from the seed).
    """

    videos: int
    comments: int
    dms: int
    seed: int
    niche: str | None = None

    @property
    def total(self) -> int:
        return self.videos + self.comments + self.dms


@dataclass(frozen=True)
class Draft:
    """One invented item, before delivery. ``extra`` is JSON-serialisable.

    ``extra`` holds the kind's fields (video: title, duration_s, views, hashtags; comment:
    likes, reply_to?; dm: thread, thread_index, direction) and the labels every item
    carries (niche, topic, intent, sentiment, language). ``parent_seq`` is the seq of
    the comment a reply answers, or of the previous message of a DM thread.
    """

    kind: Kind
    seq: int  # 0-based position in the run: videos first, then comments and DMs interleaved
    author: dict[str, str]  # {"handle": "@...", "name": "..."}
    text: str  # video: the description; comment/dm: the message
    age_s: float  # seconds before the anchor time ("now" at enable), >= 0
    video_index: int | None  # comments only: the video commented on
    extra: dict[str, Any] = field(default_factory=dict)
    parent_seq: int | None = None


class ContentProvider(Protocol):
    """Something that invents demo content: the initial set in batches, then live items.

    ``initial_batches`` yields the drafts with ``seq >= skip`` in seq order, in lists of
    at most ``batch_size``, as they become ready (a slow writer does not hold back the
    first ones); ``live_item`` makes the n-th live item (a comment or a DM).
    """

    name: str

    def initial_batches(
        self, spec: DemoSpec, batch_size: int, skip: int = 0
    ) -> AsyncGenerator[list[Draft], None]: ...

    async def live_item(self, spec: DemoSpec, n: int) -> Draft: ...


def mix(*parts: int) -> int:
    """A 64-bit value derived from integers (splitmix64 finaliser folded over the parts)."""
    h = 0x9E3779B97F4A7C15
    for part in parts:  # fold, inlined: this runs several times per item
        h = ((h ^ (part & _MASK)) * 0xBF58476D1CE4E5B9) & _MASK
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & _MASK
        h ^= h >> 29
    return h


def fold(h: int, part: int) -> int:
    """One more part folded into a ``mix`` value: ``mix(a, b) == fold(mix(a), b)``."""
    h = ((h ^ (part & _MASK)) * 0xBF58476D1CE4E5B9) & _MASK
    h ^= h >> 31
    h = (h * 0x94D049BB133111EB) & _MASK
    return h ^ (h >> 29)


def unit(*parts: int) -> float:
    """A deterministic float in [0, 1) derived from integers."""
    return mix(*parts) / _TWO64
