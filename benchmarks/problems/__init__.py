"""Test problems with known answers: each a small object (objective, minimum, starts, box, threshold).

`default_problems()` is the set the convergence sweep runs; `get(names)` picks some by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .base import DEFAULT_START, Problem, Success
from .saddles import MonkeySaddle, QuadraticSaddle, QuarticSaddle
from .test_functions import Beale, Ravine, Rosenbrock, RotatedQuadratic, deepobs_like_spectrum

FACTORIES: dict[str, Callable[[], Problem]] = {
    "rosenbrock-2d": lambda: Rosenbrock(2),
    "rosenbrock-10d": lambda: Rosenbrock(10),
    "beale": Beale,
    "quadratic-k1e2": lambda: RotatedQuadratic(kappa=1e2),
    "quadratic-k1e3": lambda: RotatedQuadratic(kappa=1e3),
    "quadratic-k1e4": lambda: RotatedQuadratic(kappa=1e4),
    "ravine": Ravine,
    "saddle-5x2-y2": QuadraticSaddle,
    "monkey-saddle": MonkeySaddle,
    "quartic-saddle-10d": QuarticSaddle,
}
"""Every named problem of the sweep, in table order."""

SADDLES: tuple[str, ...] = ("saddle-5x2-y2", "monkey-saddle", "quartic-saddle-10d")
"""The problems that start next to a saddle (escape is tracked): `optbench saddles`."""

FUNCTIONS: tuple[str, ...] = tuple(name for name in FACTORIES if name not in SADDLES)
"""The test functions proper: `optbench functions`."""


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
    "DEFAULT_START",
    "FACTORIES",
    "FUNCTIONS",
    "SADDLES",
    "Beale",
    "MonkeySaddle",
    "Problem",
    "QuadraticSaddle",
    "QuarticSaddle",
    "Ravine",
    "Rosenbrock",
    "RotatedQuadratic",
    "Success",
    "default_problems",
    "deepobs_like_spectrum",
    "get",
]
