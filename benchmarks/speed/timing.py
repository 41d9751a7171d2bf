"""Step timing: wall clock on CPU, CUDA events on GPU; interleaved rounds so that drift in the
machine's speed hits every implementation alike."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch


def _time_once(fn: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    begin = time.perf_counter()
    fn()
    return time.perf_counter() - begin


def interleaved_samples(
    fns: Sequence[Callable[[], None]],
    device: torch.device,
    rounds: int,
    per_round: int,
    warmup: int = 2,
    before_each: Callable[[], None] | None = None,
) -> list[np.ndarray]:
    """Seconds per call of each fn: `rounds` rounds, each timing `per_round` calls of every fn in turn;
    `before_each` (untimed, e.g. a cache flush) runs before every timed call."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, samples):
            for _ in range(per_round):
                if before_each is not None:
                    before_each()
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                out.append(_time_once(fn, device))
    return [np.asarray(s) for s in samples]


def summarize(seconds: np.ndarray) -> dict[str, float]:
    """Median with 20th and 80th percentiles, in milliseconds."""
    p20, median, p80 = np.percentile(seconds * 1e3, [20, 50, 80])
    return {"ms_median": float(median), "ms_p20": float(p20), "ms_p80": float(p80), "samples": len(seconds)}
