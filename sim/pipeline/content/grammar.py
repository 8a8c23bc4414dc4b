"""A small template grammar: alternatives, optional parts and named slots, compiled once.

Syntax: ``{a|b|c}`` picks one alternative, ``[text]`` is kept half of the time, ``{name}``
is a slot filled from the call's context (a string, or a sequence to pick from) or else
from the grammar's own rule of that name. Alternatives and optional parts nest. Choices
come from the ``Random`` passed in, so a seeded generator makes the same text every time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from random import Random
from typing import TypeAlias, cast

__all__ = ["Context", "Grammar", "tidy"]

Context: TypeAlias = Mapping[str, str | Sequence[str]]
# a compiled template: literals, slots ("name" in a 1-tuple) and choices (tuple of templates)
_Part: TypeAlias = "str | tuple[str] | _Choice"
_Template: TypeAlias = "tuple[_Part, ...]"
_BEFORE_PUNCT = re.compile(r" +([,.!?;:])")
_NAME = re.compile(r"[a-z_][a-z0-9_]*|T")
_SENTENCE = re.compile(r"([.!?] )([a-z])")


class _Choice(tuple["_Template | str", ...]):
    """Alternatives; an optional part is a choice between its text and nothing."""


def _compile(text: str) -> _Template:
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
                parts.append(_Choice((*(_flat(alt) for alt in _split(inner)), "")))
            elif _NAME.fullmatch(inner):
                parts.append((inner,))
            else:
                parts.append(_Choice(_flat(alt) for alt in _split(inner)))
            i = close + 1
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _flat(text: str) -> _Template | str:
    """A compiled alternative; plain text stays a string (expanded without recursion)."""
    template = _compile(text)
    if not template:
        return ""
    if len(template) == 1 and isinstance(template[0], str):
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
    """Single spaces, no space before punctuation, sentences start upper-case."""
    text = " ".join(text.split())
    if " ," in text or " ." in text or " !" in text or " ?" in text or " :" in text:
        text = _BEFORE_PUNCT.sub(r"\1", text)
    if ". " in text or "! " in text or "? " in text:
        text = _SENTENCE.sub(_upper, text)
    return text[:1].upper() + text[1:]


def _upper(m: re.Match[str]) -> str:
    return m[1] + m[2].upper()


class Grammar:
    """Named rules, each a list of templates; ``say`` expands one rule."""

    def __init__(self, rules: Mapping[str, Sequence[str]]) -> None:
        self._rules = {name: [_compile(t) for t in ts] for name, ts in rules.items()}
        self.sources = {name: tuple(ts) for name, ts in rules.items()}

    def __contains__(self, name: str) -> bool:
        return name in self._rules

    def say(self, rule: str, rng: Random, ctx: Context) -> str:
        """One expansion of ``rule``, tidied."""
        out: list[str] = []
        options = self._rules[rule]
        self._expand(options[int(rng.random() * len(options))], rng, ctx, out)
        return tidy("".join(out))

    def expand_one(self, template: str, rng: Random, ctx: Context) -> str:
        """One expansion of a template given as text (compiled on each call), tidied."""
        out: list[str] = []
        self._expand(_compile(template), rng, ctx, out)
        return tidy("".join(out))

    def _expand(self, template: _Template, rng: Random, ctx: Context, out: list[str]) -> None:
        # class checks rather than isinstance: this loop is the generator's hot path
        for part in template:
            if type(part) is str:
                out.append(part)
            elif type(part) is _Choice:
                alt = part[int(rng.random() * len(part))]
                if type(alt) is str:
                    out.append(alt)
                else:
                    self._expand(cast(_Template, alt), rng, ctx, out)
            else:
                name = cast(tuple[str], part)[0]
                value = ctx.get(name)
                if value is None:
                    options = self._rules.get(name)
                    if options is None:
                        raise KeyError(f"no slot or rule named {name!r}")
                    self._expand(options[int(rng.random() * len(options))], rng, ctx, out)
                elif type(value) is str:
                    out.append(value)
                else:
                    out.append(value[int(rng.random() * len(value))])
