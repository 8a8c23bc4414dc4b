"""Fans: names and handles, unique per (seed, fan id), from Faker name pools."""

from __future__ import annotations

import re
import unicodedata

from faker import Faker

from sim.pipeline.content.model import mix

__all__ = ["ACCOUNT", "Fans"]

ACCOUNT = {"handle": "@you", "name": "You"}
FAN_CACHE_MAX = 4_096  # fan ids below this are cached: the skewed draw makes them the hot ones
_FAN = 8  # tag keeping the fan stream apart from the item streams


def _slug(name: str) -> str:
    """Lower-case ASCII letters of a name (accents folded), for handles."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", ascii_name.lower())


class Fans:
    """Fan ``fan_id`` of a seed: a name and a handle (its trailing digits encode the id)."""

    def __init__(self, locale: str = "en_US") -> None:
        fake = Faker(locale)
        fake.seed_instance(0)
        # name pools sampled once with a fixed seed: keeps Faker's name frequencies, and
        # picking from them is ~50x faster than first_name()/last_name() per fan
        self._firsts = [(n, _slug(n)) for n in (fake.first_name() for _ in range(512))]
        self._lasts = [(n, _slug(n)) for n in (fake.last_name() for _ in range(512))]
        self._cache: dict[tuple[int, int], dict[str, str]] = {}

    def get(self, seed: int, fan_id: int) -> dict[str, str]:
        key = (seed, fan_id)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        h = mix(seed, _FAN, fan_id)  # 64 bits: 9 for each name, 2 for the style, the digit
        first, a = self._firsts[h & 511]
        last, b = self._lasts[(h >> 9) & 511]
        style = (h >> 18) & 3
        base = (
            a + b
            if style == 0
            else f"{a}.{b}"
            if style == 1
            else f"{a}_"
            if style == 2
            else b + a[:1]
        ) or "fan"
        digit = (h >> 20) % 10
        fan = {"handle": f"@{base}{fan_id * 10 + digit}", "name": f"{first} {last}"}
        if fan_id < FAN_CACHE_MAX:
            if len(self._cache) >= 4 * FAN_CACHE_MAX:
                self._cache.clear()
            self._cache[key] = fan
        return fan
