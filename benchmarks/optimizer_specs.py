"""The optimizer configurations every benchmark compares, in one place: name -> class and default
hyperparameters. The convergence sweep tunes only `lr`; everything else stays at these defaults."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

import optimizers


@dataclass(frozen=True)
class OptimizerSpec:
    """One row of a comparison: `cls(params, lr=..., **hyper)`."""

    name: str
    cls: type[torch.optim.Optimizer]
    default_lr: float
    hyper: dict = field(default_factory=dict)
    description: str = ""
    ours: bool = True  # False for torch.optim counterparts

    def build(self, params: Iterable, lr: float | None = None) -> torch.optim.Optimizer:
        """The optimizer over `params` (tensors or param-group dicts, which may carry their own lr)."""
        return self.cls(params, lr=self.default_lr if lr is None else lr, **self.hyper)

    def hyper_json(self) -> str:
        return json.dumps(self.hyper, sort_keys=True)


SPECS: dict[str, OptimizerSpec] = {
    s.name: s
    for s in [
        OptimizerSpec(
            "SGD", optimizers.Momentum, 1e-3, {"momentum": 0.0}, "plain gradient descent (baseline)"
        ),
        OptimizerSpec("Momentum", optimizers.Momentum, 1e-3, {"momentum": 0.9}, "heavy-ball momentum 0.9"),
        OptimizerSpec(
            "Nesterov",
            optimizers.Momentum,
            1e-3,
            {"momentum": 0.9, "nesterov": True},
            "Nesterov momentum 0.9",
        ),
        OptimizerSpec("RMSProp", optimizers.RMSProp, 1e-2, {}, "alpha 0.99"),
        OptimizerSpec("Adam", optimizers.Adam, 1e-3, {}, "betas (0.9, 0.999)"),
        OptimizerSpec(
            "Adam (no bias corr.)",
            optimizers.Adam,
            1e-3,
            {"bias_correction": False},
            "Adam without bias correction",
        ),
        OptimizerSpec("AdamW", optimizers.AdamW, 1e-3, {}, "decoupled weight decay 1e-2"),
        OptimizerSpec("DiffGrad", optimizers.DiffGrad, 1e-3, {}, "Adam with diffGrad friction"),
        # torch.optim counterparts (same rules; for cross-checking, not in the default set)
        OptimizerSpec("torch SGD", torch.optim.SGD, 1e-3, {"momentum": 0.0}, ours=False),
        OptimizerSpec("torch Momentum", torch.optim.SGD, 1e-3, {"momentum": 0.9}, ours=False),
        OptimizerSpec(
            "torch Nesterov", torch.optim.SGD, 1e-3, {"momentum": 0.9, "nesterov": True}, ours=False
        ),
        OptimizerSpec("torch RMSprop", torch.optim.RMSprop, 1e-2, {}, ours=False),
        OptimizerSpec("torch Adam", torch.optim.Adam, 1e-3, {}, ours=False),
        OptimizerSpec("torch AdamW", torch.optim.AdamW, 1e-3, {}, ours=False),
    ]
}

DEFAULT: tuple[str, ...] = (
    "SGD",
    "Momentum",
    "Nesterov",
    "RMSProp",
    "Adam",
    "Adam (no bias corr.)",
    "AdamW",
    "DiffGrad",
)
"""The rows of the default comparison: the package's optimizers, plain SGD as the baseline."""

TORCH: tuple[str, ...] = tuple(name for name, spec in SPECS.items() if not spec.ours)


def get(names: Sequence[str] | None = None) -> list[OptimizerSpec]:
    """Specs by name (DEFAULT when None); 'torch' expands to every torch.optim counterpart."""
    names = list(DEFAULT) if names is None else list(names)
    expanded = [n for name in names for n in (TORCH if name == "torch" else (name,))]
    unknown = [n for n in expanded if n not in SPECS]
    if unknown:
        raise ValueError(f"unknown optimizers {unknown}; known: {list(SPECS)}")
    return [SPECS[n] for n in expanded]
