"""How request handlers reach sim's runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import current_app

from sim.web.lifecycle import EXTENSION

if TYPE_CHECKING:
    from sim.runtime import Runtime

__all__ = ["runtime"]


def runtime() -> Runtime:
    """The running ``Runtime`` of the current app."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]
