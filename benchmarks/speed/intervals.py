"""Speedups with their noise: a ratio of medians and its bootstrap interval over the interleaved rounds.

Every implementation of one measurement steps once (or `per_round` times) in each round, in turn,
so round r of one implementation and round r of another ran under the same machine conditions.
The bootstrap resamples whole rounds, the same rounds for both sides, and recomputes both
medians and their ratio; the interval is the central 95% of those ratios. A ratio whose interval
holds 1.0 is reported as parity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0  # fixed: the same samples give the same interval in the run and in every report


@dataclass(frozen=True)
class Ratio:
    """value = median(peer's samples) / median(ours): above 1, ours is faster. lo, hi: the bounds of
    its interval; NaN when there is none (a table whose rows kept no samples)."""

    value: float
    lo: float
    hi: float

    @classmethod
    def without_interval(cls, value: float) -> Ratio:
        return cls(value, math.nan, math.nan)

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.lo) or math.isnan(self.hi))

    @property
    def parity(self) -> bool:
        return self.has_interval and self.lo <= 1.0 <= self.hi

    def __str__(self) -> str:
        return format_ratio(self)


def rounds_of(samples: np.ndarray, per_round: int) -> np.ndarray:
    """(rounds, per_round) view of the samples in the order they were taken."""
    samples = np.asarray(samples, dtype=float)
    if per_round < 1 or samples.size % per_round:
        raise ValueError(f"{samples.size} samples do not split into rounds of {per_round}")
    return samples.reshape(-1, per_round)


def speedup(
    ours: np.ndarray,
    peer: np.ndarray,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Ratio:
    """median(peer) / median(ours), with the bootstrap interval over rounds.

    `ours` and `peer` are (rounds, per_round) arrays of times taken in the same interleaved
    rounds (a 1-D array is one sample a round)."""
    ours, peer = _as_rounds(ours), _as_rounds(peer)
    if ours.shape[0] != peer.shape[0]:
        raise ValueError(f"paired rounds needed: {ours.shape[0]} rounds of ours, {peer.shape[0]} of the peer")
    value = float(np.median(peer) / np.median(ours))
    rounds = ours.shape[0]
    picks = np.random.default_rng(seed).integers(0, rounds, size=(resamples, rounds))
    ratios = np.median(peer[picks].reshape(resamples, -1), axis=1) / np.median(
        ours[picks].reshape(resamples, -1), axis=1
    )
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(ratios, [tail, 100 - tail])
    # The interval of a ratio of medians holds the ratio itself (the percentiles of a resampled
    # median can miss it by interpolation when there are very few rounds).
    return Ratio(value, float(min(lo, value)), float(max(hi, value)))


def _as_rounds(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=float)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or samples.size == 0:
        raise ValueError(f"expected (rounds, per_round) samples, got shape {samples.shape}")
    return samples


def format_ratio(ratio: Ratio) -> str:
    """'3.06× (2.95–3.12)', or '1.02× (0.97–1.08), parity' when the interval holds 1, or
    '1.02× (no samples)' when there is no interval: a ratio alone is never shown as certain."""
    if not ratio.has_interval:
        return f"{ratio.value:.2f}× (no samples)"
    text = f"{ratio.value:.2f}× ({ratio.lo:.2f}–{ratio.hi:.2f})"
    return f"{text}, parity" if ratio.parity else text


def encode_samples(seconds: np.ndarray) -> str:
    """Milliseconds, space-separated in the order taken: a CSV cell that keeps every sample."""
    return " ".join(f"{x * 1e3:.6g}" for x in np.asarray(seconds, dtype=float))


def decode_samples(cell: str) -> np.ndarray:
    """The milliseconds of encode_samples."""
    return np.array([float(x) for x in str(cell).split()], dtype=float)
