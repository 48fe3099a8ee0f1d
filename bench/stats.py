"""Latency and rate arithmetic shared by the benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in [0, 1]); NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class Latency:
    count: int
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(
            count=len(seconds),
            p50_ms=percentile(seconds, 0.50) * 1000,
            p99_ms=percentile(seconds, 0.99) * 1000,
        )


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else math.nan
