"""Hyperparameter search spaces, one per optimizer spec, and the quasi-random trials drawn from them.

Every optimizer gets the same number of trials over its own hyperparameters (lr, and momentum, β1, β2,
α or weight decay where the rule has them), drawn from a scrambled Sobol sequence: an equal tuning
budget for all, spread evenly over each space. A dimension is sampled in a transformed coordinate u in
[0, 1): log-uniform for lr, log-uniform in 1 − value for averaging constants (so 0.9, 0.99 and 0.999
are equally likely), a choice among a few values for weight decay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

LR_RANGE = (1e-5, 1e2)
"""The lr range every search covers (DeepOBS's), extended by the local refinement where the best
value sits at an edge."""


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter: `kind` "log" (log-uniform in [low, high]), "one_minus_log" (1 − value
    log-uniform in [low, high]) or "choice" (one of `values`, equally likely)."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    values: tuple = ()

    def value(self, u: float):
        """The hyperparameter at coordinate u in [0, 1) (u outside it extends log dimensions)."""
        if self.kind == "choice":
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        exponent = math.log10(self.low) + u * (math.log10(self.high) - math.log10(self.low))
        return 10**exponent if self.kind == "log" else 1.0 - 10**exponent

    def coordinate(self, value) -> float:
        """The inverse of `value`: where a value lies in [0, 1) (the middle of its cell for choices)."""
        if self.kind == "choice":
            return (self.values.index(value) + 0.5) / len(self.values)
        x = value if self.kind == "log" else 1.0 - value
        return (math.log10(x) - math.log10(self.low)) / (math.log10(self.high) - math.log10(self.low))

    @property
    def extends(self) -> bool:
        """lr may leave its range in the refinement (the range extends where the best value is at an
        edge); averaging constants and choices stay within theirs."""
        return self.name == "lr"


LR = Dimension("lr", "log", *LR_RANGE)
MOMENTUM = Dimension("momentum", "one_minus_log", 1e-3, 1.0)  # 0 ... 0.999
BETA1 = Dimension("beta1", "one_minus_log", 1e-3, 1.0)
BETA2 = Dimension("beta2", "one_minus_log", 1e-4, 1e-1)  # 0.9 ... 0.9999
ALPHA = Dimension("alpha", "one_minus_log", 1e-4, 1e-1)
WEIGHT_DECAY = Dimension("weight_decay", "choice", values=(0.0, 1e-4, 1e-3, 1e-2))


def to_hyper(values: dict) -> dict:
    """Sampled values as constructor arguments: beta1 and beta2 become `betas`."""
    hyper = {k: v for k, v in values.items() if k not in ("lr", "beta1", "beta2")}
    if "beta1" in values:
        hyper["betas"] = (values["beta1"], values["beta2"])
    return hyper


def point_of(space: Sequence[Dimension], lr: float, hyper: dict) -> dict:
    """The inverse of `to_hyper`: a trial {name: value} from an lr and constructor arguments."""
    values = {"lr": lr, **hyper}
    if "betas" in hyper:
        values["beta1"], values["beta2"] = hyper["betas"]
    return {d.name: values[d.name] for d in space}


def sobol_trials(space: Sequence[Dimension], n: int, seed: int) -> list[dict]:
    """n points of a scrambled Sobol sequence in the space, as {name: value} (lr included)."""
    points = torch.quasirandom.SobolEngine(len(space), scramble=True, seed=seed).draw(n, dtype=torch.float64)
    return [{d.name: d.value(float(u)) for d, u in zip(space, row)} for row in points]


def local_trials(space: Sequence[Dimension], center: dict, n: int, seed: int, radius: float) -> list[dict]:
    """n points around `center` (a trial): each coordinate moved uniformly within ±radius of the
    space's unit range (lr by ±radius × its 7 decades), clipped to the range except for lr, which
    may go past it."""
    gen = torch.Generator().manual_seed(seed)
    offsets = (torch.rand(n, len(space), generator=gen, dtype=torch.float64) * 2 - 1) * radius
    trials = []
    for row in offsets:
        trial = {}
        for d, du in zip(space, row):
            u = d.coordinate(center[d.name]) + float(du)
            if not d.extends:
                u = min(max(u, 0.0), 1.0 - 1e-12)
            trial[d.name] = d.value(u)
        trials.append(trial)
    return trials


def lr_at_edge(lr: float, margin: float = 0.05) -> bool:
    """True when lr lies within `margin` of LR_RANGE's ends (in its log coordinate), or beyond them."""
    u = LR.coordinate(lr)
    return u < margin or u > 1.0 - margin
