"""Process-wide settings of the interpreter and the C allocator, made when sim starts.

Both are measured choices (BENCHMARKS.md): sim runs thousands of users' tasks in one
Python thread, so a full garbage collection stops everything at once, and the bodies it
sends are big buffers allocated and freed many times a second.
"""

from __future__ import annotations

import ctypes
import gc
import logging

from sim.settings import Settings

__all__ = ["M_MMAP_THRESHOLD", "set_mmap_threshold", "tune_process"]

log = logging.getLogger(__name__)

#: glibc's ``mallopt`` parameter for the size from which allocations are mmapped
M_MMAP_THRESHOLD = -3


def set_mmap_threshold(nbytes: int) -> bool:
    """Fix glibc's mmap threshold at ``nbytes``; False where there is no ``mallopt``.

    By default glibc raises the threshold to the size of each big block freed (up to
    32 MB), after which request bodies and result buffers of hundreds of KB come from
    the heap, whose freed space it keeps: at 1,000,000 interactions that held ~5 MB more
    at the peak. A fixed threshold maps every block from ``nbytes`` up and unmaps it
    when freed.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): its own allocator policy
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, nbytes))


def tune_process(settings: Settings) -> None:
    """The garbage collector's young threshold and the allocator's mmap threshold.

    A full collection walks every tracked object: with 2,000 live users (~300,000
    objects) it stopped sim for 0.2-0.4 s on a 2-core machine, and with Python's default
    young threshold (700) one came every ~7 s. Young collections further apart promote
    fewer short-lived objects, so full ones come seldom; most garbage is freed by
    reference counting before any collection runs.
    """
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(settings.gc_gen0_threshold, gen1, gen2)
    if settings.malloc_mmap_threshold_bytes and not set_mmap_threshold(
        settings.malloc_mmap_threshold_bytes
    ):
        log.debug("no mallopt here: the allocator's mmap threshold is left as it is")
