"""Where torch.optim has the same rule, ours matches it: params and every state tensor after 100
steps on random gradients, fp32 relative difference <= 1e-5 (see helpers.rel_diff)."""

import pytest
import torch

from optimizers import Adam
from tests.helpers import (
    PARITY_TOL,
    all_params,
    assert_optimizers_close,
    clone_params,
    differences,
    make_params,
    run_lockstep,
)
from tests.optim_db import OPTIM_DB, OptimConfig, configs, info_of, params_for

TORCH_PARITY = [c for c in configs("parity") if c.reference == "torch"]
WITH_TORCH = [info for info in OPTIM_DB if info.torch is not None]

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
    pytest.param(m, id=f"{info.cls.__name__}: {m.desc}") for info in WITH_TORCH for m in info.torch.mutants
]


@pytest.mark.parametrize("mutant", MUTANTS)
def test_parity_check_detects_a_different_rule(mutant, fused):
    config = mutant.config
    params = make_params(torch.float32)
    ours = config.build(clone_params(params), fused)
    if mutant.other is not None:
        ref = mutant.other(clone_params(params), **config.kwargs)
    else:
        ref = info_of(config.cls).torch.cls(clone_params(params), **{**config.kwargs, **mutant.change})
    run_lockstep([ours, ref], STEPS)
    assert max(differences(ours, ref).values()) > PARITY_TOL[torch.float32]


@pytest.mark.parametrize("config", params_for(info.torch.mixed_dtypes for info in WITH_TORCH))
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


@pytest.mark.parametrize("cls", [info.cls for info in WITH_TORCH])
def test_tensors_larger_than_a_kernel_chunk(cls, fused):
    """Several tensors of several 16384-element chunks each: per-tensor scalars and chunk offsets."""
    gen = torch.Generator().manual_seed(5)
    params = [torch.randn(n, generator=gen) for n in (3 * 16384 + 5, 7, 16384)]
    config = OptimConfig("large", info_of(cls).basic, cls=cls)
    ours, ref = _run_pair(config, fused, params, steps=5)
    assert_optimizers_close(ours, ref, PARITY_TOL[torch.float32])


@pytest.mark.parametrize("cls", [info.cls for info in WITH_TORCH])
def test_defaults_are_torch_defaults(cls):
    """Where a default differs on purpose the entry says so (defaults_differ), and it does differ."""
    twin = info_of(cls).torch
    ours = cls([torch.zeros(1)]).defaults
    ref = twin.cls([torch.zeros(1)]).defaults
    shared = set(ours) & set(ref) - {"fused"} - set(twin.defaults_differ)
    assert {k: ours[k] for k in shared} == {k: ref[k] for k in shared}
    assert all(ours[k] != ref[k] for k in twin.defaults_differ)


def test_fused_none_uses_the_kernel_on_cpu():
    """fused=None (auto) on CPU runs the same kernel as fused=True: bitwise identical."""
    config = next(c for c in TORCH_PARITY if c.cls is Adam and c.desc == "weight_decay (L2)")
    params = make_params()
    auto, kernel = config.build(clone_params(params), None), config.build(clone_params(params), True)
    run_lockstep([auto, kernel], 5)
    for p, q in zip(all_params(auto), all_params(kernel), strict=True):
        assert torch.equal(p, q)
