"""The runtime's process-wide set-up."""

from __future__ import annotations

import gc

from sim.runtime import tune_gc
from sim.settings import Settings


def test_tune_gc_sets_the_young_threshold_only() -> None:
    """The young generation's threshold is the setting's; the older two stay Python's."""
    before = gc.get_threshold()
    try:
        tune_gc(Settings().gc_gen0_threshold)
        assert gc.get_threshold() == (10_000, before[1], before[2])
    finally:
        gc.set_threshold(*before)
