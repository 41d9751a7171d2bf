"""Test problems with known answers: each a small object (objective, minimum, starts, box, threshold).

`default_problems()` is the set the convergence sweep runs; `get(names)` picks some by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .base import DEFAULT_START, Problem, Success, rowwise_matmul
from .noisy import NoisyGradient, standard_normals
from .saddles import MonkeySaddle, QuadraticSaddle, QuarticSaddle
from .test_functions import (
    Beale,
    Branin,
    Ravine,
    Rosenbrock,
    RotatedQuadratic,
    deepobs_deep_spectrum,
    deepobs_like_spectrum,
)

DEEPOBS_QUADRATIC_NOISE = 0.6 / math.sqrt(128)
"""DeepOBS quadratic_deep's minibatch noise: its data are N(0, 0.6^2) per coordinate and its batch 128, so
the minibatch minimum moves by s z (z standard normal, s = 0.6 / sqrt(128)) and the gradient by s A z.
Its start signal-to-noise ratio, median |grad f(x0)| / rms |noise| over the start box, is 20."""

NOISE_SNR = 20.0
"""The noisy 2-D problems get the same start signal-to-noise ratio: per-coordinate sigma = median
|grad f(x0)| over the start box / (20 sqrt(2)): Rosenbrock 485 -> 17, Beale 23.3 -> 0.8, Branin 16.9 ->
0.6. Each criterion (quadratic: of 1, 0.3, 0.1; 2-D: of 1e-2, 1e-3) is the tightest that the best of
SGD, Momentum, Adam and RMSProp, each at its best of 13 lrs in 1e-4 ... 1, reaches on at least 14 of 16
seeds within 1000 steps."""


def _noisy_quadratic() -> Problem:
    q = RotatedQuadratic(
        spectrum=deepobs_deep_spectrum(100),
        criterion="gap",
        tol=0.3,
        name="quadratic-deep-100d",
        description="rotated quadratic with DeepOBS's quadratic_deep spectrum",
    )
    return NoisyGradient(
        q, DEEPOBS_QUADRATIC_NOISE * q.matrix, Success("gap", 0.3), name="noisy-quadratic-100d"
    )


FACTORIES: dict[str, Callable[[], Problem]] = {
    "rosenbrock-2d": lambda: Rosenbrock(2),
    "rosenbrock-10d": lambda: Rosenbrock(10),
    "beale": Beale,
    "quadratic-k1e2": lambda: RotatedQuadratic(kappa=1e2),
    "quadratic-k1e3": lambda: RotatedQuadratic(kappa=1e3),
    "quadratic-k1e4": lambda: RotatedQuadratic(kappa=1e4),
    "ravine": Ravine,
    "noisy-rosenbrock-2d": lambda: NoisyGradient(Rosenbrock(2), 17.0, Success("gap", 1e-2)),
    "noisy-beale": lambda: NoisyGradient(Beale(), 0.8, Success("gap", 1e-3)),
    "noisy-branin": lambda: NoisyGradient(Branin(), 0.6, Success("gap", 1e-3)),
    "noisy-quadratic-100d": _noisy_quadratic,
    "quartic-saddle-10d": QuarticSaddle,  # bounded below, with known minima: the saddles' headline
    "saddle-5x2-y2": QuadraticSaddle,
    "monkey-saddle": MonkeySaddle,
}
"""Every named problem of the sweep, in table order."""

SADDLES: tuple[str, ...] = ("quartic-saddle-10d", "saddle-5x2-y2", "monkey-saddle")
"""The problems that start next to a saddle (escape is tracked): `optbench saddles`."""

FUNCTIONS: tuple[str, ...] = tuple(name for name in FACTORIES if name not in SADDLES)
"""The test functions proper, deterministic and noisy: `optbench functions`."""

NOISY: tuple[str, ...] = ("noisy-rosenbrock-2d", "noisy-beale", "noisy-branin", "noisy-quadratic-100d")
"""The test functions whose gradients carry noise (benchmarks.problems.noisy)."""


def get(names: Sequence[str] | None = None) -> list[Problem]:
    """Problems by name (all of FACTORIES when names is None)."""
    names = list(FACTORIES) if names is None else list(names)
    unknown = [n for n in names if n not in FACTORIES]
    if unknown:
        raise ValueError(f"unknown problems {unknown}; known: {list(FACTORIES)}")
    problems = [FACTORIES[n]() for n in names]
    for name, problem in zip(names, problems, strict=True):
        assert problem.name == name, (name, problem.name)
    return problems


def default_problems() -> list[Problem]:
    return get(None)


__all__ = [
    "DEEPOBS_QUADRATIC_NOISE",
    "DEFAULT_START",
    "FACTORIES",
    "FUNCTIONS",
    "NOISE_SNR",
    "NOISY",
    "SADDLES",
    "Beale",
    "Branin",
    "MonkeySaddle",
    "NoisyGradient",
    "Problem",
    "QuadraticSaddle",
    "QuarticSaddle",
    "Ravine",
    "Rosenbrock",
    "RotatedQuadratic",
    "Success",
    "default_problems",
    "deepobs_deep_spectrum",
    "deepobs_like_spectrum",
    "get",
    "rowwise_matmul",
    "standard_normals",
]
