"""A small template grammar: alternatives, optional parts and named slots, compiled once.

Syntax: ``{a|b|c}`` picks one alternative, ``[text]`` is kept half of the time, ``{name}``
expands the grammar's rule of that name, or else is a slot filled from the call's context
(a string, or a sequence to pick from). Alternatives and optional parts nest. Choices
come from the ``Random`` passed in, so a seeded generator makes the same text every time.

Templates are compiled once (``templates.py``): what needs no context becomes one table
per run of parts, so expanding walks only the slots and the choices around them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from random import Random
from typing import Any, TypeAlias

from sim.pipeline.content.templates import (
    Choice,
    Compiler,
    Node,
    Seq,
    Slot,
    Table,
    Weighted,
    parse,
)

__all__ = ["Context", "Grammar", "tidy"]

Context: TypeAlias = Mapping[str, str | Sequence[str]]
_SPACED_PUNCT = (" ,", " .", " !", " ?", " ;", " :")
_SENTENCE_ENDS = (". ", "! ", "? ")
_BEFORE_PUNCT = re.compile(r" [,.!?;:]")
_LOWER_START = re.compile(r"[.!?] [a-z]")  # a sentence to capitalise (spaces single by then)


def tidy(text: str) -> str:
    """Single spaces, no space before punctuation, sentences start upper-case.

    Each step first asks (in C: ``in``, a one-class regular expression) whether it has
    work to do: this runs for every text, and most need only one or two of the steps.
    """
    # whitespace other than single spaces (any other is not printable)
    if "  " in text or text[:1] == " " or text[-1:] == " " or not text.isprintable():
        text = " ".join(text.split())
    if _BEFORE_PUNCT.search(text):
        for spaced in _SPACED_PUNCT:
            if spaced in text:
                text = text.replace(spaced, spaced[1])
    if _LOWER_START.search(text):
        for end in _SENTENCE_ENDS:
            if end in text:
                parts = text.split(end)
                text = end.join([parts[0], *[_capital(p) for p in parts[1:]]])
    return text[:1].upper() + text[1:]


def _capital(part: str) -> str:
    return part[0].upper() + part[1:] if part and "a" <= part[0] <= "z" else part


def _expand(node: Node, rng: Random, ctx: Context, out: list[str]) -> None:
    # the generator's hot path: class checks rather than isinstance, a choice followed in
    # the loop rather than by a call, a sequence's leaves handled in its own loop, no casts
    # (``Any`` keeps mypy quiet without a call); a missing slot is ctx's KeyError
    n: Any = node
    t = type(n)
    while t is Choice:
        n = n[int(rng.random() * len(n))]
        t = type(n)
    if t is Seq:
        for part in n:
            tp = type(part)
            if tp is str:
                out.append(part)
            elif tp is Table:
                out.append(part[int(rng.random() * len(part))])
            elif tp is Slot:
                value = ctx[part]
                out.append(value if type(value) is str else value[int(rng.random() * len(value))])
            elif tp is Weighted:
                out.append(part.texts[bisect_right(part.cum, rng.random() * part.total)])
            else:
                _expand(part, rng, ctx, out)
    elif t is str:
        out.append(n)
    elif t is Table:
        out.append(n[int(rng.random() * len(n))])
    elif t is Weighted:
        out.append(n.texts[bisect_right(n.cum, rng.random() * n.total)])
    else:  # a slot
        value = ctx[n]
        out.append(value if type(value) is str else value[int(rng.random() * len(value))])


class Grammar:
    """Named rules, each a list of templates; ``say`` expands one rule."""

    def __init__(self, rules: Mapping[str, Sequence[str]]) -> None:
        self._compiler = Compiler(rules)
        self._nodes = {name: self._compiler.rule(name) for name in rules}
        self._once: dict[str, Node] = {}  # expand_one's templates, compiled on first use
        self.sources = {name: tuple(ts) for name, ts in rules.items()}

    def __contains__(self, name: str) -> bool:
        return name in self._nodes

    def say(self, rule: str, rng: Random, ctx: Context) -> str:
        """One expansion of ``rule``, tidied."""
        out: list[str] = []
        _expand(self._nodes[rule], rng, ctx, out)
        return tidy("".join(out))

    def expand_one(self, template: str, rng: Random, ctx: Context) -> str:
        """One expansion of a template given as text (compiled on first use), tidied."""
        node = self._once.get(template)
        if node is None:
            if len(self._once) >= 1_024:
                self._once.clear()
            node = self._once[template] = self._compiler.template(parse(template))
        out: list[str] = []
        _expand(node, rng, ctx, out)
        return tidy("".join(out))
