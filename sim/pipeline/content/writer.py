"""Texts from the grammar: video titles, descriptions and hashtags, comments, DM messages.

One ``Grammar`` per niche (the shared comment and DM rules plus the niche's own lines).
Every function takes a seeded ``Random``: the same draws give the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random
from typing import Any, NamedTuple

from sim.pipeline.content.comments import COMMENT_RULES
from sim.pipeline.content.dms import DM_RULES
from sim.pipeline.content.grammar import Grammar
from sim.pipeline.content.mix import REPLY_STANCES, SENTIMENT_OF, Sentiment, pick
from sim.pipeline.content.niches import NICHES, Niche, Topic

__all__ = ["CommentText", "VideoPlan", "Writer"]

CASUAL_SHARE = 0.15  # comments typed all in lower case
EMOJI = ("🔥", "😂", "❤️", "😍", "👏", "🙌", "💯", "✨", "👀", "🥹")


@dataclass(frozen=True)
class VideoPlan:
    """What a video is about: comments on it are written from this."""

    niche: Niche
    topic: Topic
    format: str  # tutorial, review, challenge, ...
    detail: str
    title: str
    ctx: dict[str, Any]  # the comment grammar's slots for this video


class CommentText(NamedTuple):
    """A comment's text and the sentiment its intent (or reply stance) carries."""

    text: str
    sentiment: Sentiment


def _niche_rules(n: Niche) -> dict[str, list[str]]:
    rules = {
        "n_ask": list(n.asks),
        "n_tip": list(n.tips),
        "n_gripe": list(n.gripes),
        "n_joke": list(n.jokes),
        "n_line": list(n.lines),
    }
    for i, (_, template) in enumerate(n.titles):
        rules[f"title{i}"] = [template]
    return rules


class Writer:
    """Writes the text of every item; holds one compiled grammar per niche."""

    def __init__(self) -> None:
        # comments and DMs apart: their small rules ("thanks", "link") share names
        self.grammars = {
            k: Grammar({**COMMENT_RULES, **_niche_rules(n)}) for k, n in NICHES.items()
        }
        self.dm_grammars = {k: Grammar({**DM_RULES, **_niche_rules(n)}) for k, n in NICHES.items()}

    def plan_video(self, niche: Niche, rng: Random) -> VideoPlan:
        topic = niche.topics[int(rng.random() * len(niche.topics))]
        k = int(rng.random() * len(niche.titles))
        detail = niche.details[int(rng.random() * len(niche.details))]
        ctx = {"t": topic.name, "T": topic.name[:1].upper() + topic.name[1:], "detail": detail}
        title = self.grammars[niche.key].say(f"title{k}", rng, ctx)
        slots: dict[str, Any] = {
            "t": topic.mentions,
            "detail": detail,
            "part": niche.parts,
            "tool": niche.tools,
            "creator": niche.creator,
            "field": niche.field,
        }
        return VideoPlan(niche, topic, niche.titles[k][0], detail, title, slots)

    def video_text(self, plan: VideoPlan, rng: Random) -> tuple[str, list[str]]:
        """The description (1-3 lines, maybe an emoji, hashtags) and the hashtags."""
        niche, grammar = plan.niche, self.grammars[plan.niche.key]
        ctx = {"t": plan.topic.name, "detail": plan.detail}
        lines = niche.lines
        picked = rng.sample(range(len(lines)), k=1 + int(rng.random() * min(3, len(lines))))
        text = " ".join(grammar.expand_one(lines[i], rng, ctx) for i in sorted(picked))
        if rng.random() < 0.3:
            text += " " + EMOJI[int(rng.random() * len(EMOJI))]
        own = "".join(ch for ch in plan.topic.name.lower() if ch.isalnum())
        tags = [own, *rng.sample(niche.hashtags, k=2 + int(rng.random() * 3))]
        return text + "\n\n" + " ".join("#" + tag for tag in tags), tags

    def comment(
        self, plan: VideoPlan, intent: str, rng: Random, parent: str | None = None
    ) -> CommentText:
        """A comment with ``intent`` on the video of ``plan``; replies name ``parent``."""
        niche = plan.niche
        rule = intent
        if intent == "reply":
            if parent is None:
                raise ValueError("a reply needs the handle it answers")
            rule = pick(REPLY_STANCES, rng.random())
        ctx = plan.ctx if parent is None else {**plan.ctx, "handle": parent}
        text = self.grammars[niche.key].say(rule, rng, ctx)
        if intent != "reply" and rng.random() < CASUAL_SHARE:
            text = text.lower()
        return CommentText(text, SENTIMENT_OF[rule])

    def dm(self, niche: Niche, rule: str, rng: Random, ctx: dict[str, Any]) -> str:
        return self.dm_grammars[niche.key].say(rule, rng, ctx)
