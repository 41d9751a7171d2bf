"""The one setup factory of the speed benchmark: pytest-benchmark and the CLI both build their cases here.

A case is one optimizer implementation (ours, torch.optim fused/foreach/for-loop, pytorch_optimizer)
stepping one workload (a list of parameter shapes) on one device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

import optimizers
from optimizers.reference import LOW_PRECISION

from . import shapes as shape_lists

# Values each rule reads and writes per element after its first step (params, grads, state):
# the byte-count floor is these times the element size, divided by memory bandwidth.
VALUES_MOVED = {
    "momentum": 5,  # read p, g, buf; write p, buf
    "rmsprop": 5,  # read p, g, square_avg; write p, square_avg
    "adam": 7,  # read p, g, m, v; write p, m, v
    "adamw": 7,
    "diffgrad": 9,  # read p, g, m, v, g_prev; write p, m, v, g_prev
}

# rule -> implementation -> factory(params) -> optimizer, with the same hyperparameters throughout.
_MOMENTUM = dict(lr=1e-2, momentum=0.9)
_RMSPROP = dict(lr=1e-2, alpha=0.99)


def _pytorch_optimizer_diffgrad(params):
    import pytorch_optimizer

    return pytorch_optimizer.DiffGrad(params, lr=1e-3)


IMPLEMENTATIONS: dict[str, dict[str, Callable]] = {
    "momentum": {
        "ours": lambda ps: optimizers.Momentum(ps, **_MOMENTUM, fused=True),
        "torch-fused": lambda ps: torch.optim.SGD(ps, **_MOMENTUM, fused=True),
        "torch-foreach": lambda ps: torch.optim.SGD(ps, **_MOMENTUM, foreach=True),
        "torch-forloop": lambda ps: torch.optim.SGD(ps, **_MOMENTUM, foreach=False),
    },
    "rmsprop": {
        "ours": lambda ps: optimizers.RMSProp(ps, **_RMSPROP, fused=True),
        "torch-foreach": lambda ps: torch.optim.RMSprop(ps, **_RMSPROP, foreach=True),
        "torch-forloop": lambda ps: torch.optim.RMSprop(ps, **_RMSPROP, foreach=False),
    },
    "adam": {
        "ours": lambda ps: optimizers.Adam(ps, lr=1e-3, fused=True),
        "torch-fused": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True),
        "torch-foreach": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True),
        "torch-forloop": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=False),
    },
    "adamw": {
        "ours": lambda ps: optimizers.AdamW(ps, lr=1e-3, fused=True),
        "torch-fused": lambda ps: torch.optim.AdamW(ps, lr=1e-3, fused=True),
        "torch-foreach": lambda ps: torch.optim.AdamW(ps, lr=1e-3, foreach=True),
        "torch-forloop": lambda ps: torch.optim.AdamW(ps, lr=1e-3, foreach=False),
    },
    "diffgrad": {
        "ours": lambda ps: optimizers.DiffGrad(ps, lr=1e-3, fused=True),
        "pytorch_optimizer": _pytorch_optimizer_diffgrad,
    },
}


# Ours with fp32 master weights, for bf16/fp16 params only (a no-op on fp32 params).
MASTER_WEIGHTS = "ours-master"
_MASTER_WEIGHTS_FACTORIES: dict[str, Callable] = {
    "momentum": lambda ps: optimizers.Momentum(ps, **_MOMENTUM, fused=True, master_weights=True),
    "rmsprop": lambda ps: optimizers.RMSProp(ps, **_RMSPROP, fused=True, master_weights=True),
    "adam": lambda ps: optimizers.Adam(ps, lr=1e-3, fused=True, master_weights=True),
    "adamw": lambda ps: optimizers.AdamW(ps, lr=1e-3, fused=True, master_weights=True),
    "diffgrad": lambda ps: optimizers.DiffGrad(ps, lr=1e-3, fused=True, master_weights=True),
}


def implementations_of(rule: str, dtype: torch.dtype = torch.float32) -> list[str]:
    """Every implementation of a rule for params of dtype (with ours-master for bf16/fp16)."""
    return list(IMPLEMENTATIONS[rule]) + ([MASTER_WEIGHTS] if dtype in LOW_PRECISION else [])


@dataclass
class Case:
    rule: str
    implementation: str
    workload: str
    device: torch.device
    dtype: torch.dtype
    numel: int
    step: Callable[[], None]

    @property
    def bytes_per_step(self) -> int:
        values, size = VALUES_MOVED[self.rule], torch.finfo(self.dtype).bits // 8
        if self.implementation == MASTER_WEIGHTS:
            # The param's value is read and written as the fp32 master, the state is fp32, and the
            # model's param is written once more (its own size), as the grad is read (its size).
            return ((values - 1) * 4 + 2 * size) * self.numel
        return values * size * self.numel


def build_case(
    rule: str,
    implementation: str,
    workload: str,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> Case:
    """Params of the workload's shapes with fixed random grads, the optimizer, and one step taken
    (so state exists and the timed steps are all steady-state)."""
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    shapes = shape_lists.WORKLOADS[workload]()
    params = []
    for shape in shapes:
        p = torch.nn.Parameter(torch.randn(shape, generator=generator, dtype=dtype).to(device))
        p.grad = (torch.randn(shape, generator=generator, dtype=dtype) * 1e-3).to(device)
        params.append(p)
    if implementation == MASTER_WEIGHTS:
        if dtype not in LOW_PRECISION:
            raise ValueError(f"{MASTER_WEIGHTS} is for bfloat16/float16 params, not {dtype}")
        optimizer = _MASTER_WEIGHTS_FACTORIES[rule](params)
    else:
        optimizer = IMPLEMENTATIONS[rule][implementation](params)
    optimizer.step()
    return Case(rule, implementation, workload, device, dtype, shape_lists.numel(shapes), optimizer.step)
