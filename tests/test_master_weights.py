"""fp32 master weights for bf16/fp16 params (master_weights=True): the rule runs on a float32 copy
of each param with float32 state, and the param receives that copy rounded once per step. The
masters must follow the float32 reference (torch.optim, or the oracle) fed the same gradients, at
the float32 parity tolerance; the params must be exactly their masters rounded."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from optimizers import Adam, Momentum
from tests.helpers import (
    PARITY_TOL,
    all_params,
    assert_masters_follow,
    assert_optimizers_equal,
    clone_params,
    make_params,
    rel_diff,
    run_lockstep,
    set_grads,
)
from tests.optim_db import configs, params_for, with_master_weights

STEPS = 100
LOW = [pytest.param(torch.bfloat16, id="bf16"), pytest.param(torch.float16, id="fp16")]
TOL = PARITY_TOL[torch.float32]


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize(
    "config", params_for(configs("low_precision", where=lambda info: info.supports_master_weights))
)
def test_masters_follow_the_float32_reference(config, dtype, fused):
    low = make_params(dtype)
    ours = with_master_weights(config).build(clone_params(low), fused)
    ref = config.build_reference(clone_params(low, torch.float32))
    run_lockstep([ours, ref], STEPS, round_through=dtype)
    assert_masters_follow(ours, ref, dtype)


def test_updates_below_the_rounding_step_accumulate(fused):
    """lr * g = 1e-4 is below half of bf16's spacing at 1 (2**-8): a bf16 param never moves, its
    master does, and the param follows float32 SGD rounded."""
    start = torch.ones(64, dtype=torch.bfloat16)
    plain = start.clone().requires_grad_()
    mastered = start.clone().requires_grad_()
    exact = start.float().requires_grad_()
    optimizers = [
        Momentum([plain], lr=1e-4, momentum=0.0, fused=fused),
        Momentum([mastered], lr=1e-4, momentum=0.0, fused=fused, master_weights=True),
        torch.optim.SGD([exact], lr=1e-4),
    ]
    for _ in range(50):
        set_grads([plain, mastered, exact], [torch.ones(64)] * 3)
        for opt in optimizers:
            opt.step()
    assert torch.equal(plain, start)
    assert not torch.equal(mastered, start)
    assert torch.equal(mastered, exact.detach().to(torch.bfloat16))


def _checkpoint(opt) -> dict:
    """state_dict through torch.save and torch.load, as a checkpoint file would carry it."""
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer)


def test_checkpoint_keeps_float32_state_and_resumes_exactly(fused):
    """torch.optim casts loaded state to the param's dtype; masters and their state stay float32,
    and a resumed run is bitwise the uninterrupted one."""
    dtype = torch.bfloat16
    params = make_params(dtype)
    first = Adam(params, lr=0.01, amsgrad=True, fused=fused, master_weights=True)
    run_lockstep([first], 5, seed=3, round_through=dtype)
    resumed = Adam(clone_params(params), lr=0.01, amsgrad=True, fused=fused, master_weights=True)
    resumed.load_state_dict(_checkpoint(first))
    for state in resumed.state.values():
        for name, value in state.items():
            assert value.dtype == torch.float32, name
    run_lockstep([first, resumed], 5, seed=4, round_through=dtype)
    assert_optimizers_equal(first, resumed)


def test_checkpoint_without_masters_continues_with_masters(fused):
    """A bf16 run's checkpoint loaded with master_weights=True: the masters start from the params
    and the state goes on in float32, as torch.optim's float32 run loaded from the same checkpoint."""
    dtype = torch.bfloat16
    params = make_params(dtype)
    plain = Adam(params, lr=0.01, fused=fused)
    run_lockstep([plain], 5, seed=3, round_through=dtype)
    checkpoint = copy.deepcopy(plain.state_dict())
    ours = Adam(clone_params(params), lr=0.01, fused=fused, master_weights=True)
    ours.load_state_dict(checkpoint)
    ref = torch.optim.Adam(clone_params(params, torch.float32), lr=0.01)
    ref.load_state_dict(copy.deepcopy(checkpoint))
    # Our checkpoint's fused=True would switch torch to its fused CPU Adam, which is wrong on the
    # strided-slice param (a torch bug); the reference is torch's for-loop Adam.
    for group in ref.param_groups:
        group["fused"] = False
    run_lockstep([ours, ref], 20, seed=4, round_through=dtype)
    assert_masters_follow(ours, ref, dtype)


def test_checkpoint_with_masters_continues_without(fused):
    """master_weights=False on loading a checkpoint that has masters: the params go on by themselves,
    in their own dtype, as a plain bf16 run from the same state."""
    dtype = torch.bfloat16
    params = make_params(dtype)
    mastered = Adam(params, lr=0.01, fused=fused, master_weights=True)
    run_lockstep([mastered], 5, seed=3, round_through=dtype)
    checkpoint = _checkpoint(mastered)
    ours = Adam(clone_params(params), lr=0.01, fused=fused)
    ours.load_state_dict(checkpoint)
    # The same checkpoint without its masters, loaded into a plain bf16 optimizer.
    stripped = copy.deepcopy(checkpoint)
    for state in stripped["state"].values():
        del state["master_param"]
    plain = Adam(clone_params(params), lr=0.01, fused=fused)
    plain.load_state_dict(stripped)
    run_lockstep([ours, plain], 3, seed=4, round_through=dtype)
    for p in all_params(ours):
        state = ours.state[p]
        assert "master_param" not in state
        assert state["exp_avg"].dtype == dtype and state["exp_avg_sq"].dtype == dtype
    assert_optimizers_equal(ours, plain)


def test_float32_params_in_a_mixed_group_are_unaffected(fused):
    """master_weights concerns bf16/fp16 params only: float32 params in the same group keep no
    master and update exactly as without the option."""
    gen = torch.Generator().manual_seed(0)
    values = [torch.randn(n, generator=gen).to(torch.bfloat16).float() for n in (7, 300, 33)]
    mixed = [values[0].clone(), values[1].to(torch.bfloat16), values[2].clone()]
    plain = [v.clone() for v in values]
    ours = Adam(mixed, lr=0.01, weight_decay=0.1, fused=fused, master_weights=True)
    ref = Adam(plain, lr=0.01, weight_decay=0.1, fused=fused)
    run_lockstep([ours, ref], 10, round_through=torch.bfloat16)
    for i in (0, 2):
        assert "master_param" not in ours.state[mixed[i]]
        assert torch.equal(mixed[i], plain[i])
    master = ours.state[mixed[1]]["master_param"]
    assert rel_diff(master, plain[1]) <= TOL
    assert torch.equal(mixed[1], master.to(torch.bfloat16))


def test_grad_scaler_scalars_unscale_and_skip(fused):
    """GradScaler's grad_scale unscales the bf16 grads before the float32 update; found_inf leaves
    params, masters and state untouched."""
    dtype = torch.bfloat16
    params = make_params(dtype)
    scaled = Adam(clone_params(params), lr=0.01, fused=fused, master_weights=True)
    unscaled = Adam(clone_params(params), lr=0.01, fused=fused, master_weights=True)
    scaled.grad_scale = torch.tensor(1024.0)
    scaled.found_inf = torch.tensor(0.0)
    gen = torch.Generator().manual_seed(5)
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=gen).to(dtype) for p in params]
        set_grads(all_params(scaled), [g * 1024 for g in grads])  # a power of two: exact in bf16
        set_grads(all_params(unscaled), grads)
        scaled.step()
        unscaled.step()
    assert_optimizers_equal(scaled, unscaled)

    before = copy.deepcopy(scaled.state_dict())
    values = [p.clone() for p in all_params(scaled)]
    scaled.found_inf = torch.tensor(1.0)
    scaled.step()
    assert all(torch.equal(p, v) for p, v in zip(all_params(scaled), values, strict=True))
    for key, state in scaled.state_dict()["state"].items():
        for name, value in state.items():
            assert torch.equal(value, before["state"][key][name]), name
