"""Realism checks of generated drafts: repetition, vocabulary, topic, mix and order.

The tests assert these and the content report prints them, so both apply one rule.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from sim.pipeline.content.model import Draft
from sim.pipeline.content.niches import NICHES

__all__ = ["Realism", "measure", "on_topic"]

_WORD = re.compile(r"[a-z0-9']+")


def on_topic(text: str, niche: str, topic: str) -> bool:
    """True when ``text`` names ``topic`` of ``niche`` (its name or one of its aliases)."""
    lowered = text.lower()
    for t in NICHES[niche].topics:
        if t.name == topic:
            return any(m.lower() in lowered for m in t.mentions)
    raise ValueError(f"no topic {topic!r} in niche {niche!r}")


@dataclass
class Realism:
    """Figures over one run's drafts; shares are fractions of the comments."""

    comments: int = 0
    repeated_share: float = 0.0  # comments whose exact text an earlier comment had
    distinct_bigrams_ratio: float = 0.0  # distinct word bigrams / all word bigrams
    on_topic_share: float = 0.0
    intents: dict[str, float] = field(default_factory=dict)
    sentiments: dict[str, float] = field(default_factory=dict)
    order_violations: list[str] = field(default_factory=list)


def measure(drafts: Sequence[Draft]) -> Realism:
    """The realism figures of one run's drafts (in seq order, initial and live together)."""
    by_seq = {d.seq: d for d in drafts}
    comments = [d for d in drafts if d.kind == "comment"]
    r = Realism(comments=len(comments))
    if comments:
        texts = Counter(c.text for c in comments)
        r.repeated_share = sum(n - 1 for n in texts.values()) / len(comments)
        bigrams: list[tuple[str, str]] = []
        for c in comments:
            words = _WORD.findall(c.text.lower())
            bigrams.extend(pairwise(words))
        r.distinct_bigrams_ratio = len(set(bigrams)) / max(1, len(bigrams))
        hits = sum(on_topic(c.text, c.extra["niche"], c.extra["topic"]) for c in comments)
        r.on_topic_share = hits / len(comments)
        r.intents = _shares(c.extra["intent"] for c in comments)
        r.sentiments = _shares(c.extra["sentiment"] for c in comments)
    r.order_violations = _order(drafts, by_seq)
    return r


def _shares(values: object) -> dict[str, float]:
    counts = Counter(values)  # type: ignore[call-overload]
    total = sum(counts.values())
    return {k: n / total for k, n in sorted(counts.items())}


def _order(drafts: Sequence[Draft], by_seq: dict[int, Draft]) -> list[str]:
    """What comes out of order: comments before their video, replies before their parent,
    DM thread messages out of sequence."""
    bad: list[str] = []
    threads: dict[int, list[Draft]] = defaultdict(list)
    for d in drafts:
        if d.kind == "comment":
            assert d.video_index is not None
            video = by_seq.get(d.video_index)
            if video is None or not (video.age_s > d.age_s or d.age_s == 0.0):
                bad.append(f"comment {d.seq} is not after video {d.video_index}")
            if d.parent_seq is not None:
                parent = by_seq.get(d.parent_seq)
                if (
                    parent is None
                    or parent.seq >= d.seq
                    or parent.video_index != d.video_index
                    or parent.age_s < d.age_s
                ):
                    bad.append(f"reply {d.seq} is not after its parent {d.parent_seq}")
        elif d.kind == "dm":
            threads[d.extra["thread"]].append(d)
    for t, messages in threads.items():
        for k, m in enumerate(messages):
            expected_parent = messages[k - 1].seq if k else None
            if m.extra["thread_index"] != k or m.parent_seq != expected_parent:
                bad.append(f"thread {t}: message {m.seq} is out of sequence")
            if k and messages[k - 1].age_s < m.age_s:
                bad.append(f"thread {t}: message {m.seq} is older than the one before")
    return bad
