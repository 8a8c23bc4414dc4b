"""Describing and unwrapping exceptions: one helper each, groups included."""

from __future__ import annotations

import pytest
import trio

from sim.errors import DatabaseUnavailable, QueryTimeout, describe, first_error, is_only


def test_describe_never_logs_an_empty_message() -> None:
    """An exception without a message is named by its type (not ``()`` or ``''``)."""
    assert describe(trio.TooSlowError()) == "TooSlowError"
    assert describe(QueryTimeout("statement timed out")) == "QueryTimeout: statement timed out"
    assert describe(ExceptionGroup("g", [KeyError("k")])) == "KeyError: 'k'"
    assert len(describe(ValueError("x" * 2000))) == 500


def test_first_error_finds_sim_errors_in_nested_groups() -> None:
    """The first SimError wins over other errors; without one, the first leaf."""
    inner = DatabaseUnavailable("no pool")
    group = ExceptionGroup("outer", [ValueError("v"), ExceptionGroup("inner", [inner])])
    assert first_error(group) is inner
    plain = ValueError("v")
    assert first_error(ExceptionGroup("g", [plain, KeyError("k")])) is plain
    assert first_error(plain) is plain


def test_is_only_checks_every_leaf() -> None:
    """A group is 'only cancelled' when nothing else is inside, however nested."""
    assert is_only(KeyError("k"), KeyError)
    assert is_only(
        ExceptionGroup("g", [KeyError("a"), ExceptionGroup("h", [KeyError("b")])]), KeyError
    )
    assert not is_only(ExceptionGroup("g", [KeyError("a"), ValueError("v")]), KeyError)
    with pytest.raises(KeyError):
        raise first_error(ExceptionGroup("g", [KeyError("x")]))
