"""Medians and spreads of repeated measurements, and the machine they were made on."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Series", "machine_line", "percentile", "ratio_series"]


@dataclass(frozen=True)
class Series:
    """Repeated values of one measurement."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Series:
        return cls(tuple(values))

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def lo(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def hi(self) -> float:
        return max(self.values) if self.values else float("nan")

    def fmt(self, spec: str = ",.0f", unit: str = "") -> str:
        """``median (min-max)``, or the one value when there is one."""
        if not self.values:
            return "—"
        if len(self.values) == 1:
            return f"{self.median:{spec}}{unit}"
        return f"{self.median:{spec}}{unit} ({self.lo:{spec}}-{self.hi:{spec}})"


def ratio_series(num: Series, den: Series) -> Series:
    """Per-round ratios of runs made side by side (round i of num over round i of den)."""
    return Series.of([a / b for a, b in zip(num.values, den.values, strict=False) if b])


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) with linear interpolation."""
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(data) - 1)
    return data[f] + (data[c] - data[f]) * (k - f)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def machine_line(pg_version: str) -> str:
    """Cores, CPU, memory, OS, Python and PostgreSQL versions, on one line."""
    return (
        f"{os.cpu_count()} cores ({_cpu_model()}), {_memory_gib():.0f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}, "
        f"PostgreSQL {pg_version} (embedded, pgserver)"
    )
