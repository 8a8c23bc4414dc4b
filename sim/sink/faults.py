"""The sink's misbehaviour knobs, for rehearsing outages of the main app.

``Faults`` is one frozen, validated set of knobs; ``FaultsHolder`` keeps the
current one (changed at runtime through ``PUT /sink/admin/faults``) together
with the seedable ``random.Random`` that every fault decision draws from.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from sim.settings import Settings
from sim.web.errors import invalid_input

__all__ = ["MODES", "Decision", "Faults", "FaultsHolder", "FaultsPatch", "format_retry_after"]

log = logging.getLogger(__name__)

Mode = Literal["garbage", "close"]
#: ``garbage``: answer 200 with a body that is not JSON (after storing);
#: ``close``: store, then drop the connection in the middle of the response.
MODES: tuple[str, ...] = ("garbage", "close")

_SETTINGS = {f.name: f for f in dataclasses.fields(Settings)}


def _knob(name: str, description: str) -> Any:
    """A knob that ``SIM_SINK_<NAME>`` also sets: its default and bounds come from there."""
    f = _SETTINGS[f"sink_{name}"]
    lo, hi = f.metadata["lo"], f.metadata["hi"]
    return Field(f.default, ge=lo, le=hi, allow_inf_nan=False, description=description)


@dataclass(frozen=True, slots=True)
class Decision:
    """What one request gets: a hang first, then possibly an injected error."""

    hang: bool = False
    error: bool = False


class Faults(BaseModel):
    """One validated set of knobs; the defaults mean "behave"."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    error_rate: float = _knob("error_rate", "share of requests answered with `status`")
    hang_rate: float = _knob("hang_rate", "share of requests that first sleep `hang_s`")
    latency_s: float = _knob("latency_s", "added to every request before answering")
    retry_after_s: float = _knob("retry_after_s", "the Retry-After of injected errors")
    hang_s: float = _knob("hang_s", "how long a hanging request sleeps")
    status: int = Field(default=503, ge=400, le=599, description="status of injected errors")
    mode: Mode | None = Field(
        default=None,
        description="garbage: 200 with a non-JSON body; close: drop the connection mid-response",
    )
    too_large_over: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="answer 413 to requests with more items than this",
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
        """A copy with ``changes`` applied and validated (``InvalidInput`` if they are bad)."""
        try:
            return Faults.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise invalid_input(exc) from None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def draw(self, rng: random.Random) -> Decision:
        """Decide one request's fate; always two draws, so a seed replays exactly."""
        hang, error = rng.random(), rng.random()
        return Decision(hang=hang < self.hang_rate, error=error < self.error_rate)


def _optional(info: FieldInfo) -> tuple[Any, FieldInfo]:
    # the same type and bounds; omitted means "keep the current value"
    return info.annotation, FieldInfo.merge_field_infos(info, default=None)


_PATCH_FIELDS: dict[str, Any] = {
    **{name: _optional(info) for name, info in Faults.model_fields.items()},
    "seed": (int | None, Field(default=None, description="reseed the sink's random source")),
}
#: ``PUT /sink/admin/faults``: some knobs (the others keep their value) and ``seed``
FaultsPatch: type[BaseModel] = create_model(
    "FaultsPatch",
    __config__=ConfigDict(extra="forbid", strict=True),
    __doc__="The knobs to change (the others keep their value); `seed` reseeds the sink.",
    **_PATCH_FIELDS,
)


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
