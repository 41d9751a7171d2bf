"""Tables of optimizer configurations (each with a readable `desc`, like torch's optim_db) and of
invalid hyperparameters, expanded by the tests' parametrization."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import pytest
import torch

from optimizers import Adam, AdamW, DiffGrad, Momentum, RMSProp
from tests.helpers import split_groups
from tests.oracles import AdamOracle, AdamWOracle, DiffGradOracle

TORCH_EQUIVALENT = {
    Momentum: torch.optim.SGD,
    RMSProp: torch.optim.RMSprop,
    Adam: torch.optim.Adam,
    AdamW: torch.optim.AdamW,
}
ORACLE = {Adam: AdamOracle, AdamW: AdamWOracle, DiffGrad: DiffGradOracle}


@dataclass(frozen=True)
class OptimConfig:
    """One of our optimizers with its hyperparameters, and the independent implementation it is
    checked against: torch.optim ("torch") or the float64-capable rule of tests/oracles.py ("oracle").

    `group1` holds the second param group's overrides (None: one group); `tensor_lr` passes every
    lr as a 0-dim tensor, to ours and to the reference alike."""

    desc: str
    cls: type
    kwargs: dict = field(default_factory=dict)
    group1: dict | None = None
    tensor_lr: bool = False
    reference: str = "torch"

    def _groups(self, params, kwargs):
        group0 = dict(kwargs)
        group1 = dict(self.group1) if self.group1 is not None else None
        if self.tensor_lr:
            for group in (group0, group1):
                if group is not None and "lr" in group:
                    group["lr"] = torch.tensor(float(group["lr"]))
        return split_groups(list(params), group1), group0

    def build(self, params, fused: bool | None):
        groups, group0 = self._groups(params, self.kwargs)
        return self.cls(groups, **group0, fused=fused)

    def build_reference(self, params):
        if self.reference == "torch":
            kwargs = {k: v for k, v in self.kwargs.items() if k != "bias_correction"}
            assert self.kwargs.get("bias_correction", True), "torch.optim has only bias-corrected Adam"
            ref_cls = TORCH_EQUIVALENT[self.cls]
        else:
            kwargs, ref_cls = self.kwargs, ORACLE[self.cls]
        groups, group0 = self._groups(params, kwargs)
        return ref_cls(groups, **group0)


def with_master_weights(config: OptimConfig) -> OptimConfig:
    """The same configuration with fp32 master weights (for bf16/fp16 params; its reference runs
    in float32)."""
    return dataclasses.replace(config, kwargs=dict(config.kwargs, master_weights=True))


def params_for(configs):
    return [pytest.param(c, id=f"{c.cls.__name__}: {c.desc}") for c in configs]


# -- the same rule as torch.optim: every option combination torch shares -----------------------
TORCH_PARITY = [
    OptimConfig("plain SGD (momentum=0)", Momentum, dict(lr=0.05, momentum=0.0), group1=dict(lr=0.02)),
    OptimConfig(
        "plain SGD, weight_decay, maximize",
        Momentum,
        dict(lr=0.05, momentum=0.0, weight_decay=0.1, maximize=True),
        group1=dict(weight_decay=0.0),
    ),
    OptimConfig("heavy ball", Momentum, dict(lr=0.01, momentum=0.9), group1=dict(lr=0.03, momentum=0.5)),
    OptimConfig(
        "dampening=momentum (EMA form)",
        Momentum,
        dict(lr=0.05, momentum=0.9, dampening=0.9),
        group1=dict(dampening=0.0),
    ),
    OptimConfig(
        "dampening 0.3, weight_decay, maximize",
        Momentum,
        dict(lr=0.01, momentum=0.8, dampening=0.3, weight_decay=0.05, maximize=True),
        group1=dict(momentum=0.0),
    ),
    OptimConfig("nesterov", Momentum, dict(lr=0.01, momentum=0.9, nesterov=True), group1=dict(momentum=0.7)),
    OptimConfig(
        "nesterov, weight_decay, maximize, tensor lr",
        Momentum,
        dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True),
        group1=dict(lr=0.002),
        tensor_lr=True,
    ),
    OptimConfig(
        "heavy ball, tensor lr", Momentum, dict(lr=0.01, momentum=0.9), group1=dict(lr=0.005), tensor_lr=True
    ),
    OptimConfig("defaults", RMSProp, dict(lr=0.01), group1=dict(lr=0.003)),
    OptimConfig("centered", RMSProp, dict(lr=0.01, centered=True), group1=dict(alpha=0.9)),
    OptimConfig("momentum", RMSProp, dict(lr=0.003, momentum=0.9), group1=dict(momentum=0.0)),
    OptimConfig(
        "centered, momentum",
        RMSProp,
        dict(lr=0.003, momentum=0.5, centered=True),
        group1=dict(centered=False),
    ),
    OptimConfig("alpha 0.999", RMSProp, dict(lr=0.01, alpha=0.999), group1=dict(lr=0.001)),
    OptimConfig(
        "weight_decay, maximize, alpha 0.9",
        RMSProp,
        dict(lr=0.01, alpha=0.9, weight_decay=0.1, maximize=True),
        group1=dict(eps=1e-4),
    ),
    OptimConfig(
        "centered, momentum, weight_decay, maximize, tensor lr",
        RMSProp,
        dict(lr=0.003, momentum=0.9, centered=True, weight_decay=0.05, maximize=True),
        group1=dict(lr=0.001, weight_decay=0.0),
        tensor_lr=True,
    ),
    OptimConfig("defaults", Adam, dict(lr=0.01), group1=dict(lr=0.001)),
    OptimConfig("amsgrad", Adam, dict(lr=0.01, amsgrad=True), group1=dict(betas=(0.8, 0.99))),
    OptimConfig("weight_decay (L2)", Adam, dict(lr=0.01, weight_decay=0.1), group1=dict(weight_decay=0.0)),
    OptimConfig(
        "maximize, betas (0.5, 0.9), eps 1e-6",
        Adam,
        dict(lr=0.01, betas=(0.5, 0.9), eps=1e-6, maximize=True),
        group1=dict(maximize=False),
    ),
    OptimConfig(
        "amsgrad, weight_decay, maximize, tensor lr",
        Adam,
        dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True, bias_correction=True),
        group1=dict(lr=0.003, amsgrad=False),
        tensor_lr=True,
    ),
    OptimConfig("defaults (weight_decay 1e-2)", AdamW, dict(lr=0.01), group1=dict(lr=0.002)),
    OptimConfig("amsgrad", AdamW, dict(lr=0.01, amsgrad=True), group1=dict(weight_decay=0.5)),
    OptimConfig(
        "weight_decay 0.1, maximize",
        AdamW,
        dict(lr=0.01, weight_decay=0.1, maximize=True),
        group1=dict(weight_decay=0.0),
    ),
    OptimConfig(
        "amsgrad, maximize, tensor lr",
        AdamW,
        dict(lr=0.01, amsgrad=True, maximize=True),
        group1=dict(lr=0.003, betas=(0.7, 0.9)),
        tensor_lr=True,
    ),
]

# -- rules torch.optim lacks: against the float64 oracle ------------------------------------------
ORACLE_PARITY = [
    OptimConfig(
        "no bias correction",
        Adam,
        dict(lr=0.01, bias_correction=False),
        group1=dict(lr=0.002),
        reference="oracle",
    ),
    OptimConfig(
        "no bias correction, amsgrad",
        Adam,
        dict(lr=0.01, bias_correction=False, amsgrad=True),
        group1=dict(betas=(0.8, 0.99)),
        reference="oracle",
    ),
    OptimConfig(
        "no bias correction, weight_decay, maximize, tensor lr",
        Adam,
        dict(lr=0.01, bias_correction=False, weight_decay=0.1, maximize=True),
        group1=dict(lr=0.003, weight_decay=0.0),
        tensor_lr=True,
        reference="oracle",
    ),
    OptimConfig(
        "no bias correction",
        AdamW,
        dict(lr=0.01, bias_correction=False, weight_decay=0.1),
        group1=dict(weight_decay=0.0),
        reference="oracle",
    ),
    OptimConfig(
        "no bias correction, amsgrad, maximize",
        AdamW,
        dict(lr=0.01, bias_correction=False, amsgrad=True, maximize=True),
        group1=dict(lr=0.001),
        reference="oracle",
    ),
    OptimConfig("defaults", DiffGrad, dict(lr=0.01), group1=dict(lr=0.002), reference="oracle"),
    OptimConfig(
        "weight_decay",
        DiffGrad,
        dict(lr=0.01, weight_decay=0.1),
        group1=dict(weight_decay=0.0),
        reference="oracle",
    ),
    OptimConfig(
        "maximize, betas (0.5, 0.9), eps 1e-6, tensor lr",
        DiffGrad,
        dict(lr=0.01, betas=(0.5, 0.9), eps=1e-6, maximize=True),
        group1=dict(lr=0.003),
        tensor_lr=True,
        reference="oracle",
    ),
]

# -- one representative of each rule, for the bf16/fp16 error bound --------------------------------
LOW_PRECISION = [
    OptimConfig(
        "nesterov, weight_decay", Momentum, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    ),
    OptimConfig("dampening 0.5", Momentum, dict(lr=0.05, momentum=0.9, dampening=0.5)),
    OptimConfig("centered, momentum", RMSProp, dict(lr=0.01, momentum=0.5, centered=True)),
    OptimConfig("amsgrad, weight_decay", Adam, dict(lr=0.02, amsgrad=True, weight_decay=0.01)),
    OptimConfig("defaults", AdamW, dict(lr=0.02)),
    OptimConfig("no bias correction", Adam, dict(lr=0.02, bias_correction=False), reference="oracle"),
    OptimConfig("defaults", DiffGrad, dict(lr=0.02), reference="oracle"),
]

ALL_CLASSES = [Momentum, RMSProp, Adam, AdamW, DiffGrad]

# -- invalid hyperparameters: (optimizer, kwargs, fragment the ValueError message must show) ------
NAN = math.nan
INVALID_HYPERPARAMETERS = [
    (Momentum, dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (Momentum, dict(lr=NAN), "Invalid learning rate: nan"),
    (Momentum, dict(lr=math.inf), "Invalid learning rate: inf"),
    (Momentum, dict(lr=torch.tensor([0.1, 0.2])), "(2,)"),
    (Momentum, dict(momentum=NAN), "Invalid momentum: nan"),
    (Momentum, dict(momentum=-0.5), "Invalid momentum: -0.5"),
    (Momentum, dict(dampening=NAN), "Invalid dampening: nan"),
    (Momentum, dict(weight_decay=-1e-4), "Invalid weight_decay: -0.0001"),
    (Momentum, dict(momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
    (Momentum, dict(momentum=0.0, nesterov=True), "momentum=0.0"),
    (Momentum, dict(nesterov="yes"), "Invalid nesterov: 'yes'"),
    (Momentum, dict(fused="yes"), "Invalid fused: 'yes'"),
    (Adam, dict(master_weights=1), "Invalid master_weights: 1"),
    (RMSProp, dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (RMSProp, dict(alpha=1.5), "Invalid alpha: 1.5"),
    (RMSProp, dict(alpha=NAN), "Invalid alpha: nan"),
    (RMSProp, dict(eps=-1e-8), "Invalid eps: -1e-08"),
    (RMSProp, dict(momentum=NAN), "Invalid momentum: nan"),
    (RMSProp, dict(weight_decay=NAN), "Invalid weight_decay: nan"),
    (RMSProp, dict(centered=1), "Invalid centered: 1"),
    (Adam, dict(lr=-1e-3), "Invalid learning rate: -0.001"),
    (Adam, dict(lr=torch.tensor(-0.5)), "-0.5"),
    (Adam, dict(eps=-1.0), "Invalid eps: -1.0"),
    (Adam, dict(eps=NAN), "Invalid eps: nan"),
    (Adam, dict(betas=(1.0, 0.999)), "Invalid beta1 (betas[0]): 1.0"),
    (Adam, dict(betas=(-0.1, 0.999)), "Invalid beta1 (betas[0]): -0.1"),
    (Adam, dict(betas=(0.9, 1.5)), "Invalid beta2 (betas[1]): 1.5"),
    (Adam, dict(betas=(0.9, NAN)), "Invalid beta2 (betas[1]): nan"),
    (Adam, dict(betas=(0.9, 0.99, 0.9)), "Invalid betas: (0.9, 0.99, 0.9)"),
    (Adam, dict(weight_decay=-0.1), "Invalid weight_decay: -0.1"),
    (Adam, dict(amsgrad="no"), "Invalid amsgrad: 'no'"),
    (Adam, dict(bias_correction=None), "Invalid bias_correction: None"),
    (AdamW, dict(lr=NAN), "Invalid learning rate: nan"),
    (AdamW, dict(betas=(0.9, 1.0)), "Invalid beta2 (betas[1]): 1.0"),
    (AdamW, dict(weight_decay=-0.01), "Invalid weight_decay: -0.01"),
    (DiffGrad, dict(lr=-0.5), "Invalid learning rate: -0.5"),
    (DiffGrad, dict(eps=-1e-8), "Invalid eps: -1e-08"),
    (DiffGrad, dict(betas=(NAN, 0.999)), "Invalid beta1 (betas[0]): nan"),
    (DiffGrad, dict(betas=(0.9, -0.001)), "Invalid beta2 (betas[1]): -0.001"),
    (DiffGrad, dict(maximize="true"), "Invalid maximize: 'true'"),
]
