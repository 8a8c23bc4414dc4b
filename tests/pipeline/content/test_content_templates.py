"""Tests of template compiling: context-free parts become one-draw tables, slots stay."""

from __future__ import annotations

import pytest

from sim.pipeline.content.templates import FLAT_MAX, Compiler, Seq, Slot, Table, Weighted, parse


def test_a_context_free_rule_is_one_table() -> None:
    """{a|b}{c|d} compiles to the four texts, equally likely."""
    node = Compiler({"r": ["{a|b}{c|d}"]}).rule("r")
    assert type(node) is Table and sorted(node) == ["ac", "ad", "bc", "bd"]


def test_unequal_chances_make_a_weighted_table() -> None:
    """{a|{b|c}} keeps a at one half: a weighted table."""
    node = Compiler({"r": ["{a|{b|c}}"]}).rule("r")
    assert type(node) is Weighted
    assert dict(zip(node.texts, node.cum, strict=True)) == {"a": 0.5, "b": 0.75, "c": 1.0}


def test_slots_split_runs_of_tables() -> None:
    """Literals and choices around a slot merge into the tables before and after it."""
    node = Compiler({"r": ["{hi|hey} {who}[!]"]}).rule("r")
    assert type(node) is Seq and len(node) == 3
    before, slot, after = node
    assert type(before) is Table and sorted(before) == ["hey ", "hi "]
    assert slot == Slot("who") and type(after) is Table and sorted(after) == ["", "!"]


def test_huge_products_stay_a_sequence() -> None:
    """A product above FLAT_MAX texts is not flattened into one table."""
    digits = "{" + "|".join(str(i) for i in range(10)) + "}"
    width = len(str(FLAT_MAX)) + 1
    node = Compiler({"r": [digits * width]}).rule("r")
    assert type(node) is Seq and all(type(part) is Table for part in node)
    assert sum(len(part) for part in node if type(part) is Table) >= 10 * width


def test_unbalanced_templates_are_rejected() -> None:
    """A template with an unclosed brace does not parse."""
    with pytest.raises(ValueError):
        parse("{a|b")
