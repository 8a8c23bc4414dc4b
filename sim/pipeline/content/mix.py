"""The configured mix of comment intents and DM purposes, and the sentiment of each.

One place for these shares: the generators draw from them and the content report
checks the generated shares against them.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate
from typing import Literal

__all__ = [
    "COMMENT_INTENTS",
    "DM_PURPOSES",
    "LANGUAGE",
    "REPLY_STANCES",
    "SENTIMENT_OF",
    "Sentiment",
    "expected_sentiments",
    "pick",
]

Sentiment = Literal["positive", "neutral", "negative"]
LANGUAGE = "en"

#: share of each comment intent (sums to 1)
COMMENT_INTENTS: dict[str, float] = {
    "praise": 0.33,
    "question": 0.16,
    "suggestion": 0.10,
    "criticism": 0.08,
    "joke": 0.12,
    "reply": 0.15,
    "spam": 0.06,
}
#: a reply agrees, answers or disagrees with the comment it answers
REPLY_STANCES: dict[str, float] = {"agree": 0.5, "answer": 0.3, "disagree": 0.2}
#: the sentiment that goes with each intent and reply stance
SENTIMENT_OF: dict[str, Sentiment] = {
    "praise": "positive",
    "question": "neutral",
    "suggestion": "neutral",
    "criticism": "negative",
    "joke": "positive",
    "spam": "neutral",
    "agree": "positive",
    "answer": "neutral",
    "disagree": "negative",
}
#: share of each DM thread purpose (sums to 1)
DM_PURPOSES: dict[str, float] = {
    "collaboration": 0.22,
    "question": 0.28,
    "fan_mail": 0.22,
    "support": 0.13,
    "spam": 0.15,
}


def pick(shares: dict[str, float], u: float) -> str:
    """The key whose cumulative share interval holds u (in [0, 1))."""
    table = _TABLES.get(id(shares))
    if table is None or table[0] is not shares or table[3] != len(shares):
        keys = tuple(shares)
        table = (shares, keys, tuple(accumulate(shares.values())), len(keys))
        if len(_TABLES) >= 64:
            _TABLES.clear()
        _TABLES[id(shares)] = table
    _, keys, bounds, n = table
    return keys[min(n - 1, bisect_right(bounds, u * bounds[-1]))]


#: pick's cumulative bounds per shares dict (the mixes are constants, looked up per item)
_TABLES: dict[int, tuple[dict[str, float], tuple[str, ...], tuple[float, ...], int]] = {}


def expected_sentiments() -> dict[str, float]:
    """The comment sentiment shares the intent mix implies."""
    out: dict[str, float] = {"positive": 0.0, "neutral": 0.0, "negative": 0.0}
    for intent, share in COMMENT_INTENTS.items():
        if intent == "reply":
            for stance, s in REPLY_STANCES.items():
                out[SENTIMENT_OF[stance]] += share * s
        else:
            out[SENTIMENT_OF[intent]] += share
    return out
