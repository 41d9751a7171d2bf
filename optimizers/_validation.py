"""Hyperparameter checks shared by the optimizer classes: each raises ValueError showing the bad value."""

from __future__ import annotations

import math
from numbers import Real

import torch


def _as_float(name: str, value) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"Invalid {name}: expected a number or a 1-element tensor, got shape {tuple(value.shape)}"
            )
        return float(value.item())
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"Invalid {name}: expected a number, got {value!r}")
    return float(value)


def non_negative(name: str, value) -> None:
    """value is a finite-or-inf number >= 0 (NaN is rejected)."""
    v = _as_float(name, value)
    if math.isnan(v) or v < 0.0:
        raise ValueError(f"Invalid {name}: {value!r} (must be >= 0)")


def finite(name: str, value) -> None:
    v = _as_float(name, value)
    if not math.isfinite(v):
        raise ValueError(f"Invalid {name}: {value!r} (must be finite)")


def learning_rate(value) -> None:
    non_negative("learning rate", value)
    finite("learning rate", value)


def unit_interval(name: str, value) -> None:
    """value in [0, 1)."""
    v = _as_float(name, value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"Invalid {name}: {value!r} (must be in [0, 1))")


def betas(value) -> None:
    """A pair in [0, 1): both numbers, or both 1-element tensors (read as numbers at each step)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"Invalid betas: {value!r} (must be a pair (beta1, beta2))")
    if isinstance(value[0], torch.Tensor) != isinstance(value[1], torch.Tensor):
        raise ValueError(f"Invalid betas: {value!r} (must be both numbers or both 1-element tensors)")
    unit_interval("beta1 (betas[0])", value[0])
    unit_interval("beta2 (betas[1])", value[1])


def number(value):
    """A hyperparameter as the operators take it: a 1-element tensor's value, else the number itself."""
    return value.item() if isinstance(value, torch.Tensor) else value


def flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"Invalid {name}: {value!r} (must be True or False)")


def closed_unit_interval(name: str, value) -> None:
    """value in [0, 1]."""
    v = _as_float(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"Invalid {name}: {value!r} (must be in [0, 1])")
