"""Where torch.optim has the same rule, ours matches it: params and every state tensor after 100
steps on random gradients, fp32 relative difference <= 1e-5 (see helpers.rel_diff)."""

import pytest
import torch

from optimizers import Adam, AdamW, Momentum, RMSProp
from tests.helpers import (
    PARITY_TOL,
    all_params,
    assert_optimizers_close,
    clone_params,
    differences,
    make_params,
    run_lockstep,
)
from tests.optim_configs import TORCH_EQUIVALENT, TORCH_PARITY, OptimConfig, params_for

STEPS = 100


def _run_pair(config: OptimConfig, fused: bool, params, steps: int = STEPS, **lockstep):
    ours = config.build(clone_params(params), fused)
    ref = config.build_reference(clone_params(params))
    run_lockstep([ours, ref], steps, **lockstep)
    return ours, ref


@pytest.mark.parametrize("config", params_for(TORCH_PARITY))
def test_matches_torch_optim(config, fused):
    params = make_params(torch.float32)
    ours, ref = _run_pair(config, fused, params)
    # The optimizer really holds the non-contiguous views, with their layout.
    held = all_params(ours)
    assert [p.stride() for p in held] == [p.stride() for p in params]
    assert sum(not p.is_contiguous() for p in held) == 2
    assert all(torch.is_tensor(g["lr"]) == config.tensor_lr for g in ours.param_groups)
    assert len(ours.param_groups) == 2
    assert_optimizers_close(ours, ref, PARITY_TOL[torch.float32])
    # The states torch keeps are the ones we keep.
    for p, q in zip(all_params(ours), all_params(ref), strict=True):
        expected = {k for k, v in ref.state[q].items() if v is not None}
        assert {k for k, v in ours.state[p].items() if v is not None} == expected


# Mutants: a neighbouring rule from torch must NOT pass the parity check, or the check is blind.
MUTANTS = [
    pytest.param(
        OptimConfig("nesterov", Momentum, dict(lr=0.01, momentum=0.9, nesterov=True)),
        dict(nesterov=False),
        id="Momentum: nesterov vs heavy ball",
    ),
    pytest.param(
        OptimConfig("dampening", Momentum, dict(lr=0.01, momentum=0.9, dampening=0.5)),
        dict(dampening=0.45),
        id="Momentum: dampening 0.5 vs 0.45",
    ),
    pytest.param(
        OptimConfig("centered", RMSProp, dict(lr=0.01, centered=True)),
        dict(centered=False),
        id="RMSProp: centered vs not",
    ),
    pytest.param(
        OptimConfig("amsgrad", Adam, dict(lr=0.01, amsgrad=True)),
        dict(amsgrad=False),
        id="Adam: amsgrad vs not",
    ),
    pytest.param(
        OptimConfig("eps", Adam, dict(lr=0.01, eps=1e-8)), dict(eps=1e-4), id="Adam: eps 1e-8 vs 1e-4"
    ),
    pytest.param(
        OptimConfig("decoupled", AdamW, dict(lr=0.01, weight_decay=0.1)), "Adam", id="AdamW vs Adam with L2"
    ),
]


@pytest.mark.parametrize("config, change", MUTANTS)
def test_parity_check_detects_a_different_rule(config, change, fused):
    params = make_params(torch.float32)
    ours = config.build(clone_params(params), fused)
    if change == "Adam":
        ref = torch.optim.Adam(clone_params(params), **config.kwargs)
    else:
        ref = TORCH_EQUIVALENT[config.cls](clone_params(params), **{**config.kwargs, **change})
    run_lockstep([ours, ref], STEPS)
    assert max(differences(ours, ref).values()) > PARITY_TOL[torch.float32]


@pytest.mark.parametrize(
    "config",
    params_for(
        [
            OptimConfig("heavy ball, weight_decay", Momentum, dict(lr=0.01, momentum=0.9, weight_decay=0.1)),
            OptimConfig("centered, momentum", RMSProp, dict(lr=0.01, centered=True, momentum=0.5)),
            OptimConfig("amsgrad, weight_decay", Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
            OptimConfig("defaults", AdamW, dict(lr=0.01)),
        ]
    ),
)
def test_mixed_dtypes_in_one_group(config, fused):
    """fp32 and fp64 params side by side in one param group; each matches torch at its precision."""
    dtypes = [torch.float32, torch.float64, torch.float32, torch.float64, torch.float32]
    params = [p.to(dtype) for p, dtype in zip(make_params(seed=3)[2:7], dtypes, strict=True)]
    ours = config.build(clone_params(params), fused)
    ref = config.build_reference(clone_params(params))
    assert len(ours.param_groups) == 1
    run_lockstep([ours, ref], 30)
    for p in all_params(ours):
        assert p.dtype in (torch.float32, torch.float64)
    diffs = differences(ours, ref)
    for i, p in enumerate(params):
        worst = max(v for k, v in diffs.items() if k.endswith(f" {i}"))
        assert worst <= PARITY_TOL[p.dtype], (i, p.dtype, worst)


@pytest.mark.parametrize("cls", [Momentum, RMSProp, Adam, AdamW])
def test_tensors_larger_than_a_kernel_chunk(cls, fused):
    """Several tensors of several 16384-element chunks each: per-tensor scalars and chunk offsets."""
    gen = torch.Generator().manual_seed(5)
    params = [torch.randn(n, generator=gen) for n in (3 * 16384 + 5, 7, 16384)]
    config = OptimConfig("large", cls, dict(lr=0.01, momentum=0.9) if cls is Momentum else dict(lr=0.01))
    ours, ref = _run_pair(config, fused, params, steps=5)
    assert_optimizers_close(ours, ref, PARITY_TOL[torch.float32])


@pytest.mark.parametrize(
    "cls, torch_cls", [(RMSProp, torch.optim.RMSprop), (Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)]
)
def test_defaults_are_torch_defaults(cls, torch_cls):
    ours = cls([torch.zeros(1)]).defaults
    ref = torch_cls([torch.zeros(1)]).defaults
    shared = set(ours) & set(ref) - {"fused"}
    assert {k: ours[k] for k in shared} == {k: ref[k] for k in shared}


def test_fused_none_uses_the_kernel_on_cpu():
    """fused=None (auto) on CPU runs the same kernel as fused=True: bitwise identical."""
    config = next(c for c in TORCH_PARITY if c.cls is Adam and c.desc == "weight_decay (L2)")
    params = make_params()
    auto, kernel = config.build(clone_params(params), None), config.build(clone_params(params), True)
    run_lockstep([auto, kernel], 5)
    for p, q in zip(all_params(auto), all_params(kernel), strict=True):
        assert torch.equal(p, q)
