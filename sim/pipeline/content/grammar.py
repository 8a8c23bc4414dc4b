"""A small template grammar: alternatives, optional parts and named slots, compiled once.

Syntax: ``{a|b|c}`` picks one alternative, ``[text]`` is kept half of the time, ``{name}``
expands the grammar's rule of that name, or else is a slot filled from the call's context
(a string, or a sequence to pick from). Alternatives and optional parts nest. Choices
come from the ``Random`` passed in, so a seeded generator makes the same text every time.

Compiling flattens every part that needs no context (up to ``FLAT_MAX`` texts) into one
table of its possible texts with their probabilities, so that expanding it is a single
draw: ``{a|{b|c}}`` is the table a ½, b ¼, c ¼, and runs of such parts and literals merge
into one table. Only slots, and the choices and rules around them, are walked at
expansion time.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from itertools import accumulate
from random import Random
from typing import Any, TypeAlias

__all__ = ["FLAT_MAX", "Context", "Grammar", "tidy"]

FLAT_MAX = 4_096  # most texts a context-free part is flattened into

Context: TypeAlias = Mapping[str, str | Sequence[str]]
# a parsed template: literals, names and choices (tuple of templates)
_Part: TypeAlias = "str | _Name | _Alts"
_Template: TypeAlias = "tuple[_Part, ...]"
# a compiled node: a literal, a table, a slot, a sequence or a choice of nodes
_Node: TypeAlias = "str | _Table | _Weighted | _Slot | _Seq | _Choice"
_Dist: TypeAlias = dict[str, float]  # the texts a part can give, with their probabilities
_SPACED_PUNCT = (" ,", " .", " !", " ?", " ;", " :")
_SENTENCE_ENDS = (". ", "! ", "? ")
_NAME = re.compile(r"[a-z_][a-z0-9_]*|T")


class _Name(str):
    """A rule's name, or a slot's."""


class _Alts(tuple["_Template | str", ...]):
    """Parsed alternatives; an optional part is a choice between its text and nothing."""


class _Table(tuple[str, ...]):
    """Equally likely texts: one draw picks one."""


class _Weighted:
    """Texts with their cumulative probabilities: one draw picks one."""

    __slots__ = ("cum", "texts", "total")

    def __init__(self, dist: _Dist) -> None:
        self.texts = tuple(dist)
        self.cum = tuple(accumulate(dist.values()))
        self.total = self.cum[-1]


class _Slot(str):
    """A name filled from the call's context."""


class _Seq(tuple["_Node", ...]):
    """Nodes expanded one after the other."""


class _Choice(tuple["_Node", ...]):
    """Equally likely nodes that need the context: one draw picks one, then it expands."""


def _parse(text: str) -> _Template:
    parts: list[_Part] = []
    i, literal = 0, list[str]()
    while i < len(text):
        ch = text[i]
        if ch in "{[":
            close = _matching(text, i)
            inner = text[i + 1 : close]
            if literal:
                parts.append("".join(literal))
                literal = []
            if ch == "[":
                parts.append(_Alts((*(_flat(alt) for alt in _split(inner)), "")))
            elif _NAME.fullmatch(inner):
                parts.append(_Name(inner))
            else:
                parts.append(_Alts(_flat(alt) for alt in _split(inner)))
            i = close + 1
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _as_template(alt: _Template | str) -> _Template:
    return alt if isinstance(alt, tuple) else (alt,)


def _flat(text: str) -> _Template | str:
    """A parsed alternative; plain text stays a string."""
    template = _parse(text)
    if not template:
        return ""
    if len(template) == 1 and type(template[0]) is str:  # text, not a name
        return template[0]
    return template


def _matching(text: str, start: int) -> int:
    depth = 0
    for j in range(start, len(text)):
        if text[j] in "{[":
            depth += 1
        elif text[j] in "}]":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unbalanced template: {text!r}")


def _split(inner: str) -> list[str]:
    """``inner`` cut at its top-level ``|``."""
    out, depth, start = [], 0, 0
    for j, ch in enumerate(inner):
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(inner[start:j])
            start = j + 1
    out.append(inner[start:])
    return out


def tidy(text: str) -> str:
    """Single spaces, no space before punctuation, sentences start upper-case.

    Plain string operations rather than regular expressions: this runs for every text.
    """
    text = " ".join(text.split())
    for spaced in _SPACED_PUNCT:
        if spaced in text:
            text = text.replace(spaced, spaced[1])
    for end in _SENTENCE_ENDS:
        if end in text:
            parts = text.split(end)
            text = end.join([parts[0], *[_capital(p) for p in parts[1:]]])
    return text[:1].upper() + text[1:]


def _capital(part: str) -> str:
    return part[0].upper() + part[1:] if part and "a" <= part[0] <= "z" else part


def _product(a: _Dist | None, b: _Dist | None) -> _Dist | None:
    """The texts of a then b, or None when either needs context or there are too many."""
    if a is None or b is None or len(a) * len(b) > FLAT_MAX:
        return None
    out: _Dist = {}
    for x, px in a.items():
        for y, py in b.items():
            out[x + y] = out.get(x + y, 0.0) + px * py
    return out


def _mixture(dists: list[_Dist | None]) -> _Dist | None:
    """One of dists, equally likely, or None when one needs context or there are too many."""
    out: _Dist = {}
    for dist in dists:
        if dist is None:
            return None
        for x, p in dist.items():
            out[x] = out.get(x, 0.0) + p / len(dists)
    return out if len(out) <= FLAT_MAX else None


def _table(dist: _Dist) -> _Node:
    if len(dist) == 1:
        return next(iter(dist))
    first = next(iter(dist.values()))
    if all(abs(p - first) <= 1e-12 * first for p in dist.values()):
        return _Table(dist)
    return _Weighted(dist)


class _Compiler:
    """Parsed rules to nodes: context-free parts become tables, the rest stays a tree."""

    def __init__(self, rules: Mapping[str, Sequence[str]]) -> None:
        self.parsed = {name: [_parse(t) for t in ts] for name, ts in rules.items()}
        self._dists: dict[str, _Dist | None] = {}
        self._nodes: dict[str, _Node] = {}

    def rule_dist(self, name: str) -> _Dist | None:
        if name not in self._dists:
            self._dists[name] = None  # a rule that refers to itself is not flattened
            self._dists[name] = _mixture([self.dist(t) for t in self.parsed[name]])
        return self._dists[name]

    def dist(self, part: _Part | _Template) -> _Dist | None:
        if type(part) is _Name:  # a rule's texts, or None for a slot
            return self.rule_dist(part) if part in self.parsed else None
        if isinstance(part, str):
            return {part: 1.0}
        if isinstance(part, _Alts):
            return _mixture([self.dist(alt) for alt in part])
        out: _Dist | None = {"": 1.0}
        for p in part:
            out = _product(out, self.dist(p))
        return out

    def rule(self, name: str) -> _Node:
        node = self._nodes.get(name)
        if node is None:
            dist = self.rule_dist(name)
            if dist is not None:
                node = _table(dist)
            else:
                alts = [self.template(t) for t in self.parsed[name]]
                node = alts[0] if len(alts) == 1 else _Choice(alts)
            self._nodes[name] = node
        return node

    def template(self, template: _Template) -> _Node:
        """A template's node: runs of context-free parts merged into tables."""
        nodes: list[_Node] = []
        run: _Dist | None = None
        for part in template:
            dist = self.dist(part)
            merged = _product(run, dist) if run is not None else dist
            if dist is not None and merged is not None:
                run = merged
                continue
            if run is not None:
                nodes.append(_table(run))
            run = dist
            if dist is None:
                nodes.append(self.part(part))
        if run is not None:
            nodes.append(_table(run))
        if not nodes:
            return ""
        return nodes[0] if len(nodes) == 1 else _Seq(nodes)

    def part(self, part: _Part) -> _Node:
        """A part that needs the context."""
        if isinstance(part, _Alts):
            # a lone name is a str subclass: a template of its own, like any other
            return _Choice(
                alt if type(alt) is str else self.template(_as_template(alt)) for alt in part
            )
        return self.rule(part) if part in self.parsed else _Slot(part)


def _expand(node: _Node, rng: Random, ctx: Context, out: list[str]) -> None:
    # the generator's hot path: class checks rather than isinstance, a choice followed in
    # the loop rather than by a call, a sequence's leaves handled in its own loop, no casts
    # (``Any`` keeps mypy quiet without a call); a missing slot is ctx's KeyError
    n: Any = node
    t = type(n)
    while t is _Choice:
        n = n[int(rng.random() * len(n))]
        t = type(n)
    if t is _Seq:
        for part in n:
            tp = type(part)
            if tp is str:
                out.append(part)
            elif tp is _Table:
                out.append(part[int(rng.random() * len(part))])
            elif tp is _Slot:
                value = ctx[part]
                out.append(value if type(value) is str else value[int(rng.random() * len(value))])
            elif tp is _Weighted:
                out.append(part.texts[bisect_right(part.cum, rng.random() * part.total)])
            else:
                _expand(part, rng, ctx, out)
    elif t is str:
        out.append(n)
    elif t is _Table:
        out.append(n[int(rng.random() * len(n))])
    elif t is _Weighted:
        out.append(n.texts[bisect_right(n.cum, rng.random() * n.total)])
    else:  # a slot
        value = ctx[n]
        out.append(value if type(value) is str else value[int(rng.random() * len(value))])


class Grammar:
    """Named rules, each a list of templates; ``say`` expands one rule."""

    def __init__(self, rules: Mapping[str, Sequence[str]]) -> None:
        self._compiler = _Compiler(rules)
        self._nodes = {name: self._compiler.rule(name) for name in rules}
        self._once: dict[str, _Node] = {}  # expand_one's templates, compiled on first use
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
            node = self._once[template] = self._compiler.template(_parse(template))
        out: list[str] = []
        _expand(node, rng, ctx, out)
        return tidy("".join(out))
