"""The one bearer-token rule: scheme in any case, exact token, never an empty one."""

from __future__ import annotations

import pytest

from sim.web.auth import bearer_matches


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
        ("BEARER  s3cret ", True),
        ("Bearer s3cre", False),
        ("Bearer s3cret2", False),
        ("Basic s3cret", False),
        ("Bearer", False),
        ("Bearer ", False),
        ("s3cret", False),
        ("", False),
        (None, False),
    ],
)
def test_bearer_matches(header: str | None, ok: bool) -> None:
    """Only ``Bearer <token>`` matches; the scheme's case does not matter."""
    assert bearer_matches(header, "s3cret") is ok


def test_an_empty_token_never_matches() -> None:
    """An empty expected token matches nothing (not even an empty header)."""
    assert not bearer_matches("Bearer ", "") and not bearer_matches("", "")
