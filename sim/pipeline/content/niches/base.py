"""What makes a niche: its topics, title patterns, hashtags and the words its fans use."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Niche", "Topic"]


@dataclass(frozen=True)
class Topic:
    """A video subject; comments name it or one of its aliases (the on-topic rule)."""

    name: str
    aliases: tuple[str, ...] = ()

    @property
    def mentions(self) -> tuple[str, ...]:
        """Every way a comment may name the topic."""
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Niche:
    """One account niche. Templates may use {t} (the topic), {detail}, {tool}, {part}."""

    key: str
    label: str
    creator: str  # what fans call the account holder: "chef", "coach"
    field: str  # "cooking": used in "more {field} content"
    topics: tuple[Topic, ...]
    details: tuple[str, ...]  # title details: "in 20 minutes", "for beginners"
    titles: tuple[tuple[str, str], ...]  # (video format, title template)
    parts: tuple[str, ...]  # moments of a video fans mention: "the plating"
    tools: tuple[str, ...]  # gear, ingredients, apps
    hashtags: tuple[str, ...]
    asks: tuple[str, ...]  # niche questions, without the question mark
    tips: tuple[str, ...]  # niche suggestions
    gripes: tuple[str, ...]  # niche criticism
    jokes: tuple[str, ...]
    brands: tuple[str, ...]  # invented brands that pitch collaborations
    product: str  # what the account sells (support requests are about it)
    lines: tuple[str, ...]  # description sentences
