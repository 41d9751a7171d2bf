"""GradScaler-style AMP on CPU: torch.amp.GradScaler sets `grad_scale` and `found_inf` on optimizers
with `_step_supports_amp_scaling`; the kernels unscale the grads and skip the step on inf."""

import pytest
import torch

from optimizers import Adam
from tests.helpers import (
    PARITY_TOL,
    all_params,
    assert_optimizers_close,
    assert_optimizers_equal,
    make_params,
    run_lockstep,
    set_grads,
)
from tests.optim_db import configs, params_for

SCALE = 2.0**16  # GradScaler's initial scale; a power of two, so unscaling is exact

AMP_CONFIGS = configs("amp", where=lambda info: info.supports_amp)


def _amp(opt, grad_scale: float, found_inf: float):
    opt.grad_scale = torch.tensor(grad_scale)
    opt.found_inf = torch.tensor(found_inf)


def _poisoned_step(opt):
    """A step whose grads overflowed: inf/NaN grads and found_inf=1, as GradScaler reports it."""
    params = all_params(opt)
    set_grads(
        params,
        [
            torch.full(p.shape, float("nan")) if i % 2 else torch.full(p.shape, float("inf"))
            for i, p in enumerate(params)
        ],
    )
    _amp(opt, SCALE, 1.0)
    opt.step()


@pytest.mark.parametrize("config", params_for(AMP_CONFIGS))
def test_found_inf_skips_the_step(config, fused):
    """With found_inf=1 params and state stay bitwise as they were, step counts included."""
    opt, twin = config.build(make_params(), fused), config.build(make_params(), fused)
    run_lockstep([opt, twin], 3)
    _poisoned_step(opt)
    assert_optimizers_equal(opt, twin)


@pytest.mark.parametrize("config", params_for(AMP_CONFIGS))
def test_skipped_first_step_leaves_no_trace(config, fused):
    """GradScaler usually skips the first steps (the initial scale overflows): a run whose first
    step was skipped must continue exactly like a run without that step."""
    opt, twin = config.build(make_params(), fused), config.build(make_params(), fused)
    _poisoned_step(opt)
    _amp(opt, 1.0, 0.0)
    run_lockstep([opt, twin], 4)
    assert_optimizers_equal(opt, twin)


@pytest.mark.parametrize("config", params_for(AMP_CONFIGS))
def test_scaled_grads_with_grad_scale_equal_the_unscaled_run(config, fused):
    scaled, plain = config.build(make_params(), fused), config.build(make_params(), fused)
    _amp(scaled, SCALE, 0.0)
    run_lockstep([scaled], 10, seed=3, grad_scale=SCALE)
    run_lockstep([plain], 10, seed=3)
    assert_optimizers_equal(scaled, plain)
    assert not torch.equal(all_params(plain)[2], make_params()[2])


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.bfloat16, torch.float16], ids=["fp32", "bf16", "fp16"]
)
@pytest.mark.parametrize("config", params_for(AMP_CONFIGS))
def test_grads_are_left_unscaled(config, dtype, fused):
    """As torch's fused optimizers (and GradScaler.unscale_) leave them: after a step with grad_scale
    each grad holds grad / scale rounded once to its dtype; a skipped step leaves the grads as they
    were. make_params has strided params (their grads are written back through copies)."""
    opt = config.build(make_params(dtype), fused)
    params = all_params(opt)
    gen = torch.Generator().manual_seed(7)
    scaled = [(torch.randn(p.shape, generator=gen) * SCALE * 1e-3).to(dtype) for p in params]
    set_grads(params, [g.clone() for g in scaled])
    _amp(opt, SCALE, 1.0)
    opt.step()
    assert all(torch.equal(p.grad, g) for p, g in zip(params, scaled, strict=True))
    _amp(opt, SCALE, 0.0)
    opt.step()
    for p, g in zip(params, scaled, strict=True):
        assert p.grad.dtype == dtype
        assert torch.equal(p.grad, (g.double() / SCALE).to(dtype))


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))


@pytest.mark.parametrize("config", params_for(c for c in AMP_CONFIGS if c.reference == "torch"))
def test_grad_scaler_end_to_end(config, fused):
    """torch.amp.GradScaler("cpu") driving ours (kernel-side unscale and skip) and torch.optim
    (scaler-side unscale) through the same iterations, one of which overflows."""
    ours_model, ref_model = _model(0), _model(0)
    ours, ref = (
        config.build(list(ours_model.parameters()), fused),
        config.build_reference(list(ref_model.parameters())),
    )
    scalers = [torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3) for _ in range(2)]
    gen = torch.Generator().manual_seed(1)
    for it in range(10):
        x, y = torch.randn(8, 6, generator=gen), torch.randn(8, 1, generator=gen)
        for model, opt, scaler in zip((ours_model, ref_model), (ours, ref), scalers, strict=True):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            if it == 4:
                loss = loss * float("inf")  # overflow: the step is skipped and the scale backs off
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    assert scalers[0].get_scale() == scalers[1].get_scale() < 2.0**10 * 2**3
    assert not hasattr(ours, "found_inf")  # GradScaler removes its attributes after the step
    state = ours.state[ours_model[0].weight]
    if "step" in state:
        assert state["step"].item() == 9
    assert_optimizers_close(ours, ref, PARITY_TOL[torch.float32])
    assert not torch.equal(ours_model[0].weight, _model(0)[0].weight)
    # torch.optim's grads were unscaled by the scaler, ours by the kernel: both are left unscaled.
    for a, b in zip(ours_model.parameters(), ref_model.parameters(), strict=True):
        tol = PARITY_TOL[torch.float32]  # the params differ by rounding: so do small grads
        torch.testing.assert_close(a.grad, b.grad, rtol=tol, atol=tol * b.grad.abs().max().item())


def test_poisoned_step_helper_really_poisons():
    """Without found_inf the NaN/inf grads of _poisoned_step would corrupt the params (the skip tests
    are not vacuous)."""
    opt = Adam(make_params(), lr=0.01)
    params = all_params(opt)
    set_grads(params, [torch.full(p.shape, float("inf")) for p in params])
    opt.step()
    assert not torch.isfinite(params[2]).all()
