"""The sink's misbehaviour knobs, for rehearsing outages of the main app.

``Faults`` is one frozen, validated set of knobs; ``FaultsHolder`` keeps the
current one (changed at runtime through ``PUT /sink/admin/faults``) together
with the seedable ``random.Random`` that every fault decision draws from.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sim.errors import InvalidInput
from sim.settings import Settings

__all__ = ["MODES", "Decision", "Faults", "FaultsHolder", "format_retry_after"]

log = logging.getLogger(__name__)

Mode = Literal["garbage", "close"]
#: ``garbage``: answer 200 with a body that is not JSON (after storing);
#: ``close``: store, then drop the connection in the middle of the response.
MODES: tuple[str, ...] = ("garbage", "close")

# field → (lowest, highest) for the numeric knobs
_RANGES: dict[str, tuple[float, float]] = {
    "error_rate": (0.0, 1.0),
    "hang_rate": (0.0, 1.0),
    "latency_s": (0.0, 600.0),
    "retry_after_s": (0.0, 3600.0),
    "hang_s": (0.0, 86400.0),
    "status": (400, 599),
    "too_large_over": (0, 1_000_000),
}


@dataclass(frozen=True, slots=True)
class Decision:
    """What one request gets: a hang first, then possibly an injected error."""

    hang: bool = False
    error: bool = False


@dataclass(frozen=True, kw_only=True)
class Faults:
    """One validated set of knobs; the defaults mean "behave"."""

    error_rate: float = 0.0  # share of requests answered with ``status``
    hang_rate: float = 0.0  # share of requests that first sleep ``hang_s``
    latency_s: float = 0.0  # added to every request before answering
    retry_after_s: float = 1.0  # the Retry-After of injected errors
    hang_s: float = 3600.0
    status: int = 503  # the status of injected errors
    mode: Mode | None = None
    too_large_over: int | None = None  # 413 for requests with more items than this

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "mode":
                if value is not None and value not in MODES:
                    raise InvalidInput(
                        f"mode: expected one of {', '.join(MODES)} or null, got {value!r}",
                        field="mode",
                    )
                continue
            if value is None and f.name == "too_large_over":
                continue
            integral = f.name in ("status", "too_large_over")
            if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
                kind = "an integer" if integral else "a number"
                raise InvalidInput(f"{f.name}: expected {kind}, got {value!r}", field=f.name)
            lo, hi = _RANGES[f.name]
            if not math.isfinite(value) or not lo <= value <= hi:
                raise InvalidInput(
                    f"{f.name}: must be between {lo:g} and {hi:g}, got {value!r}", field=f.name
                )

    @classmethod
    def from_settings(cls, settings: Settings) -> Faults:
        """The knobs ``SIM_SINK_*`` set at start-up."""
        return cls(
            error_rate=settings.sink_error_rate,
            hang_rate=settings.sink_hang_rate,
            latency_s=settings.sink_latency_s,
            retry_after_s=settings.sink_retry_after_s,
            hang_s=settings.sink_hang_s,
        )

    def replace(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with ``changes`` applied and validated; unknown names are an error."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InvalidInput(
                f"unknown fault setting {unknown[0]!r}; known: {', '.join(sorted(known))}",
                field=unknown[0],
            )
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def draw(self, rng: random.Random) -> Decision:
        """Decide one request's fate; always two draws, so a seed replays exactly."""
        hang, error = rng.random(), rng.random()
        return Decision(hang=hang < self.hang_rate, error=error < self.error_rate)


class FaultsHolder:
    """The current knobs (replaced whole on every change) and the random source."""

    def __init__(self, initial: Faults, *, seed: int | None = None) -> None:
        self.initial = initial
        self.current = initial
        self.rng = random.Random(seed)

    def update(self, changes: Mapping[str, Any]) -> Faults:
        """Apply a partial change (validated as a whole) and return the new knobs."""
        self.current = self.current.replace(changes)
        log.info("Sink faults now %s", self.current.as_dict())
        return self.current

    def restore(self) -> Faults:
        """Back to the knobs of start-up."""
        self.current = self.initial
        log.info("Sink faults restored to %s", self.current.as_dict())
        return self.current

    def seed(self, seed: int) -> None:
        self.rng.seed(seed)

    def draw(self) -> Decision:
        return self.current.draw(self.rng)


def format_retry_after(seconds: float) -> str:
    """``Retry-After`` value: whole seconds as an integer, else a decimal (sim reads both)."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0")
