"""The niches an account can have; ``NICHES`` maps each key to its ``Niche``."""

from sim.pipeline.content.niches import (
    beauty,
    comedy,
    cooking,
    education,
    fitness,
    gaming,
    music,
    pets,
    tech,
    travel,
)
from sim.pipeline.content.niches.base import Niche, Topic

__all__ = ["NICHES", "NICHE_KEYS", "Niche", "Topic"]

NICHES: dict[str, Niche] = {
    m.NICHE.key: m.NICHE
    for m in (cooking, fitness, travel, tech, gaming, beauty, music, comedy, education, pets)
}
NICHE_KEYS: tuple[str, ...] = tuple(NICHES)
