"""Learning-rate schedules, as a factor of the chosen lr at each optimizer step (0-based, out of
`total`): the lr of step t is lr * factor(t, total). The lecture material's two: step decay and cosine
with linear warmup; constant is the default, so that the table compares the rules alone."""

from __future__ import annotations

import math

SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine")

STEP_MILESTONES = (0.5, 0.75)
"""step: the lr is divided by STEP_GAMMA**-1 = 10 at half and at three quarters of the steps."""
STEP_GAMMA = 0.1
WARMUP_FRACTION = 0.05
"""cosine: the first 5% of the steps ramp linearly up to the lr, the rest follow a half cosine to 0."""

DESCRIPTIONS = {
    "constant": "constant lr",
    "step": "step decay: lr × 0.1 at 50% and 75% of the steps",
    "cosine": "cosine to 0 after a linear warmup over the first 5% of the steps",
}


def lr_factor(schedule: str, step: int, total: int) -> float:
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        passed = sum(step >= math.ceil(m * total) for m in STEP_MILESTONES)
        return STEP_GAMMA**passed
    if schedule == "cosine":
        warmup = max(1, math.ceil(WARMUP_FRACTION * total))
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
