"""Demo content: what the accounts post and what their fans write.

``OfflineProvider`` (the default) writes niche-specific content from a template grammar,
deterministic per seed; ``LLMProvider`` asks an OpenAI-compatible endpoint for the text,
batch by batch, and falls back to the offline text when a batch fails.
"""

from sim.pipeline.content.mix import COMMENT_INTENTS, DM_PURPOSES, expected_sentiments
from sim.pipeline.content.model import ContentProvider, DemoSpec, Draft, Kind
from sim.pipeline.content.niches import NICHE_KEYS, NICHES, Niche, Topic
from sim.pipeline.content.offline import OfflineProvider, niche_of

__all__ = [
    "COMMENT_INTENTS",
    "DM_PURPOSES",
    "NICHES",
    "NICHE_KEYS",
    "ContentProvider",
    "DemoSpec",
    "Draft",
    "Kind",
    "Niche",
    "OfflineProvider",
    "Topic",
    "expected_sentiments",
    "niche_of",
]
