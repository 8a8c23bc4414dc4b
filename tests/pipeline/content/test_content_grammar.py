"""Tests of the template grammar: alternatives, optional parts, slots, rules and tidying."""

from __future__ import annotations

from collections import Counter
from random import Random

import pytest

from sim.pipeline.content.grammar import Grammar, tidy


def outputs(grammar: Grammar, rule: str, ctx: dict[str, object], n: int = 400) -> set[str]:
    """Every distinct expansion of rule seen in n seeded draws."""
    return {grammar.say(rule, Random(i), ctx) for i in range(n)}  # type: ignore[arg-type]


def test_alternatives_optional_parts_and_nesting() -> None:
    """{a|b} picks one, [x] is kept or dropped, and both nest."""
    g = Grammar({"r": ["{red|blue} car[ {very [really ]|}fast]"]})
    assert outputs(g, "r", {}) == {
        "Red car", "Blue car", "Red car very fast", "Blue car very fast",
        "Red car very really fast", "Blue car very really fast", "Red car fast", "Blue car fast",
    }  # fmt: skip


def test_names_are_rules_else_slots_from_the_context() -> None:
    """A name expands the grammar's rule; others take the context's string or pick from it."""
    g = Grammar({"r": ["{greet} {who}"], "greet": ["hi", "hey"]})
    assert outputs(g, "r", {"who": "Ann"}) == {"Hi Ann", "Hey Ann"}
    assert outputs(g, "r", {"who": ("Ann", "Bo")}) == {"Hi Ann", "Hey Ann", "Hi Bo", "Hey Bo"}
    with pytest.raises(KeyError):
        Grammar({"r": ["{missing}"]}).say("r", Random(0), {})


def test_a_choice_of_rules_that_need_the_context() -> None:
    """{|{greet}} with greet naming a slot gives nothing or the whole greeting."""
    g = Grammar({"r": ["{|{greet}} {who}"], "greet": ["hi {who},", "hey {who},"]})
    assert outputs(g, "r", {"who": "Ann"}) == {"Ann", "Hi Ann, Ann", "Hey Ann, Ann"}


def test_flattened_parts_keep_their_probabilities() -> None:
    """{a|{b|c}} gives a half of the time, b and c a quarter each, as a nested choice would."""
    g = Grammar({"r": ["{a|{b|c}}[,] {who}"]})
    rng = Random(3)
    counts = Counter(g.say("r", rng, {"who": "x"}) for _ in range(40_000))
    shares = {k: n / 40_000 for k, n in counts.items()}
    assert set(shares) == {f"{w}{e} x" for w in "ABC" for e in ("", ",")}
    for text, share in shares.items():
        expected = (0.5 if text[0] == "A" else 0.25) * 0.5
        assert abs(share - expected) < 0.015, (text, share)


def test_same_random_same_text() -> None:
    """The text depends only on the Random's draws."""
    g = Grammar({"r": ["{a|b|c}{d|e|f}{g|h|i} [j]"]})
    assert [g.say("r", Random(7), {}) for _ in range(3)] == [g.say("r", Random(7), {})] * 3


def test_unbalanced_templates_are_rejected() -> None:
    """A template with an unclosed brace does not compile."""
    with pytest.raises(ValueError):
        Grammar({"r": ["{a|b"]})


def test_tidy() -> None:
    """Spaces collapse, none stays before punctuation, and sentences start upper-case."""
    assert (
        tidy("  okay ,  this is  good !  more? yes. fine ") == "Okay, this is good! More? Yes. Fine"
    )
