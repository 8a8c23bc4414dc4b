"""Templates parsed and compiled into nodes, for ``Grammar`` to expand.

Compiling flattens every part that needs no context (up to ``FLAT_MAX`` texts) into one
table of its possible texts with their probabilities, so that expanding it is a single
draw: ``{a|{b|c}}`` is the table a ½, b ¼, c ¼, and runs of such parts and literals merge
into one table. Only slots, and the choices and rules around them, stay a tree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import accumulate
from typing import TypeAlias

__all__ = ["FLAT_MAX", "Choice", "Compiler", "Node", "Seq", "Slot", "Table", "Weighted", "parse"]

FLAT_MAX = 4_096  # most texts a context-free part is flattened into

# a parsed template: literals, names and choices (tuple of templates)
_Part: TypeAlias = "str | _Name | _Alts"
_Template: TypeAlias = "tuple[_Part, ...]"
# a compiled node: a literal, a table, a slot, a sequence or a choice of nodes
Node: TypeAlias = "str | Table | Weighted | Slot | Seq | Choice"
_Dist: TypeAlias = dict[str, float]  # the texts a part can give, with their probabilities
_NAME = re.compile(r"[a-z_][a-z0-9_]*|T")


class _Name(str):
    """A rule's name, or a slot's."""


class _Alts(tuple["_Template | str", ...]):
    """Parsed alternatives; an optional part is a choice between its text and nothing."""


class Table(tuple[str, ...]):
    """Equally likely texts: one draw picks one."""


class Weighted:
    """Texts with their cumulative probabilities: one draw picks one."""

    __slots__ = ("cum", "texts", "total")

    def __init__(self, dist: _Dist) -> None:
        self.texts = tuple(dist)
        self.cum = tuple(accumulate(dist.values()))
        self.total = self.cum[-1]


class Slot(str):
    """A name filled from the call's context."""


class Seq(tuple["Node", ...]):
    """Nodes expanded one after the other."""


class Choice(tuple["Node", ...]):
    """Equally likely nodes that need the context: one draw picks one, then it expands."""


def parse(text: str) -> _Template:
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
    template = parse(text)
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


def _table(dist: _Dist) -> Node:
    if len(dist) == 1:
        return next(iter(dist))
    first = next(iter(dist.values()))
    if all(abs(p - first) <= 1e-12 * first for p in dist.values()):
        return Table(dist)
    return Weighted(dist)


class Compiler:
    """Parsed rules to nodes: context-free parts become tables, the rest stays a tree."""

    def __init__(self, rules: Mapping[str, Sequence[str]]) -> None:
        self.parsed = {name: [parse(t) for t in ts] for name, ts in rules.items()}
        self._dists: dict[str, _Dist | None] = {}
        self._nodes: dict[str, Node] = {}

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

    def rule(self, name: str) -> Node:
        node = self._nodes.get(name)
        if node is None:
            dist = self.rule_dist(name)
            if dist is not None:
                node = _table(dist)
            else:
                alts = [self.template(t) for t in self.parsed[name]]
                node = alts[0] if len(alts) == 1 else Choice(alts)
            self._nodes[name] = node
        return node

    def template(self, template: _Template) -> Node:
        """A template's node: runs of context-free parts merged into tables."""
        nodes: list[Node] = []
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
        return nodes[0] if len(nodes) == 1 else Seq(nodes)

    def part(self, part: _Part) -> Node:
        """A part that needs the context."""
        if isinstance(part, _Alts):
            # a lone name is a str subclass: a template of its own, like any other
            return Choice(
                alt if type(alt) is str else self.template(_as_template(alt)) for alt in part
            )
        return self.rule(part) if part in self.parsed else Slot(part)
