"""The process-wide set-up sim makes when it starts."""

from __future__ import annotations

import gc
import sys

import pytest

from sim.process import set_mmap_threshold, tune_process
from sim.settings import Settings


def test_tune_process_sets_the_young_gc_threshold_only() -> None:
    """The young generation's threshold is the setting's; the older two stay Python's."""
    before = gc.get_threshold()
    try:
        tune_process(Settings(gc_gen0_threshold=12_345))
        assert gc.get_threshold() == (12_345, before[1], before[2])
    finally:
        gc.set_threshold(*before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_mmap_threshold_is_set_with_glibc() -> None:
    """On glibc (this project's Linux builds) ``mallopt`` accepts the threshold."""
    assert set_mmap_threshold(Settings().malloc_mmap_threshold_bytes)
