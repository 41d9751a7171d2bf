"""The optimizer configurations every benchmark compares, in one place: name -> class, default
hyperparameters, and the search space the convergence sweep tunes over (benchmarks/search_space.py):
every optimizer gets the same number of trials over its own hyperparameters."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

import optimizers
from benchmarks.search_space import ALPHA, BETA1, BETA2, LR, MOMENTUM, WEIGHT_DECAY, Dimension, to_hyper


@dataclass(frozen=True)
class OptimizerSpec:
    """One row of a comparison: `cls(params, lr=..., **hyper)`."""

    name: str
    cls: type[torch.optim.Optimizer]
    default_lr: float
    hyper: dict = field(default_factory=dict)
    description: str = ""
    ours: bool = True  # False for torch.optim counterparts
    search: tuple[Dimension, ...] = (LR,)  # what tuning varies; the rest of `hyper` stays fixed
    cnn_lr: float = 0.00316  # centre of the CNN benchmark's lr grid: where the rule usually works there

    def build(self, params: Iterable, lr: float | None = None) -> torch.optim.Optimizer:
        """The optimizer over `params` (tensors or param-group dicts, which may carry their own lr and
        hyperparameters)."""
        return self.cls(params, lr=self.default_lr if lr is None else lr, **self.hyper)

    def hyper_json(self) -> str:
        return json.dumps(self.hyper, sort_keys=True)

    def trial_hyper(self, trial: dict) -> dict:
        """The constructor arguments of one trial (a point of `search`): `hyper` with the trial's values."""
        return {**self.hyper, **to_hyper(trial)}


ADAM_SEARCH = (LR, BETA1, BETA2)
ADAMW_SEARCH = (LR, BETA1, BETA2, WEIGHT_DECAY)  # decoupled decay, 0 included
SGD_CNN_LR, MOMENTUM_CNN_LR = 0.1, 0.0316  # the CNN grid centres of plain and momentum SGD
ADAGRAD_CNN_LR = 0.0316  # its steps shrink as the sum of squares grows: larger lrs than Adam's

SPECS: dict[str, OptimizerSpec] = {
    s.name: s
    for s in [
        OptimizerSpec(
            "SGD",
            optimizers.Momentum,
            1e-3,
            {"momentum": 0.0},
            "plain gradient descent (baseline)",
            cnn_lr=SGD_CNN_LR,
        ),
        OptimizerSpec(
            "Momentum",
            optimizers.Momentum,
            1e-3,
            {"momentum": 0.9},
            "heavy-ball momentum 0.9",
            search=(LR, MOMENTUM),
            cnn_lr=MOMENTUM_CNN_LR,
        ),
        OptimizerSpec(
            "Nesterov",
            optimizers.Momentum,
            1e-3,
            {"momentum": 0.9, "nesterov": True},
            "Nesterov momentum 0.9",
            search=(LR, MOMENTUM),
            cnn_lr=MOMENTUM_CNN_LR,
        ),
        OptimizerSpec("RMSProp", optimizers.RMSProp, 1e-2, {}, "alpha 0.99", search=(LR, ALPHA)),
        OptimizerSpec("Adam", optimizers.Adam, 1e-3, {}, "betas (0.9, 0.999)", search=ADAM_SEARCH),
        OptimizerSpec(
            "Adam (no bias corr.)",
            optimizers.Adam,
            1e-3,
            {"bias_correction": False},
            "Adam without bias correction",
            search=ADAM_SEARCH,
        ),
        OptimizerSpec(
            "AdamW", optimizers.AdamW, 1e-3, {}, "decoupled weight decay 1e-2", search=ADAMW_SEARCH
        ),
        OptimizerSpec(
            "DiffGrad", optimizers.DiffGrad, 1e-3, {}, "Adam with diffGrad friction", search=ADAM_SEARCH
        ),
        OptimizerSpec("AdaGrad", optimizers.Adagrad, 1e-2, {}, "sum of squared grads", cnn_lr=ADAGRAD_CNN_LR),
        OptimizerSpec("RAdam", optimizers.RAdam, 1e-3, {}, "rectified Adam", search=ADAM_SEARCH),
        OptimizerSpec(
            "AdaBelief", optimizers.AdaBelief, 1e-3, {}, "Adam with belief in the grad", search=ADAM_SEARCH
        ),
        # torch.optim counterparts (same rules; for cross-checking, not in the default set)
        OptimizerSpec("torch SGD", torch.optim.SGD, 1e-3, {"momentum": 0.0}, ours=False, cnn_lr=SGD_CNN_LR),
        OptimizerSpec(
            "torch Momentum",
            torch.optim.SGD,
            1e-3,
            {"momentum": 0.9},
            ours=False,
            search=(LR, MOMENTUM),
            cnn_lr=MOMENTUM_CNN_LR,
        ),
        OptimizerSpec(
            "torch Nesterov",
            torch.optim.SGD,
            1e-3,
            {"momentum": 0.9, "nesterov": True},
            ours=False,
            search=(LR, MOMENTUM),
            cnn_lr=MOMENTUM_CNN_LR,
        ),
        OptimizerSpec("torch RMSprop", torch.optim.RMSprop, 1e-2, {}, ours=False, search=(LR, ALPHA)),
        OptimizerSpec("torch Adam", torch.optim.Adam, 1e-3, {}, ours=False, search=ADAM_SEARCH),
        OptimizerSpec("torch AdamW", torch.optim.AdamW, 1e-3, {}, ours=False, search=ADAMW_SEARCH),
        OptimizerSpec("torch Adagrad", torch.optim.Adagrad, 1e-2, {}, ours=False, cnn_lr=ADAGRAD_CNN_LR),
        OptimizerSpec("torch RAdam", torch.optim.RAdam, 1e-3, {}, ours=False, search=ADAM_SEARCH),
    ]
}

DEFAULT: tuple[str, ...] = tuple(name for name, spec in SPECS.items() if spec.ours)
"""The rows of the default comparison, in SPECS' order: the package's optimizers (plain SGD, with
momentum 0, the baseline); a new spec of ours joins it."""

TORCH: tuple[str, ...] = tuple(name for name, spec in SPECS.items() if not spec.ours)


def get(names: Sequence[str] | None = None) -> list[OptimizerSpec]:
    """Specs by name (DEFAULT when None), each once, in the order first named; 'torch' expands to every
    torch.optim counterpart (so `["torch Adam", "torch"]` is each counterpart once)."""
    names = list(DEFAULT) if names is None else list(names)
    expanded = list(dict.fromkeys(n for name in names for n in (TORCH if name == "torch" else (name,))))
    unknown = [n for n in expanded if n not in SPECS]
    if unknown:
        raise ValueError(f"unknown optimizers {unknown}; known: {list(SPECS)}")
    return [SPECS[n] for n in expanded]
