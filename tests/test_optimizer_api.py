"""The torch.optim contract: lr schedulers, closures, params without grads, hyperparameter
validation, unsupported gradients."""

import re

import pytest
import torch

from tests.helpers import (
    PARITY_TOL,
    all_params,
    assert_optimizers_close,
    clone_params,
    make_params,
    run_lockstep,
)
from tests.optim_db import CLASSES, OPTIM_DB, params_for

# One configuration per rule, with float and tensor lr, each checked against its independent reference.
REPRESENTATIVES = [c for info in OPTIM_DB for c in info.parity if c.desc in info.representatives]


def _reference_for(config, params):
    dtype = torch.float64 if config.reference == "oracle" else None
    return config.build_reference(clone_params(params, dtype))


def _set_lr(group, value):
    if torch.is_tensor(group["lr"]):
        group["lr"].fill_(value)
    else:
        group["lr"] = value


SCHEDULERS = {
    "StepLR": lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    "LambdaLR": lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1 + epoch)),
}


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
@pytest.mark.parametrize("config", params_for(REPRESENTATIVES))
def test_lr_scheduler_takes_effect_at_next_step(config, scheduler, fused):
    params = make_params()
    ours = config.build(clone_params(params), fused)
    ref = _reference_for(config, params)
    schedulers = [SCHEDULERS[scheduler](ours), SCHEDULERS[scheduler](ref)]
    initial_lr = float(ours.param_groups[1]["lr"])

    def before_step(step):
        if step > 0:
            for s in schedulers:
                s.step()
        if step == 7:  # a hand-made change of one group's lr, as a user or a custom schedule would make
            for opt in (ours, ref):
                _set_lr(opt.param_groups[1], 0.5 * float(opt.param_groups[1]["lr"]))

    run_lockstep([ours, ref], 12, before_step=before_step)
    assert float(ours.param_groups[1]["lr"]) < 0.5 * initial_lr  # the schedule really ran
    assert_optimizers_close(ours, ref, PARITY_TOL[torch.float32])


@pytest.mark.parametrize("cls", CLASSES)
def test_lr_change_is_not_ignored(cls, fused):
    """Changing lr between steps changes the update: the lr is read at every step, not cached."""
    params = make_params()[2:4]
    kept, changed = (
        cls(clone_params(params), lr=0.01, fused=fused),
        cls(clone_params(params), lr=0.01, fused=fused),
    )
    run_lockstep(
        [kept, changed], 3, before_step=lambda step: step == 2 and _set_lr(changed.param_groups[0], 0.1)
    )
    assert not torch.equal(all_params(kept)[1], all_params(changed)[1])


@pytest.mark.parametrize("cls", CLASSES)
def test_step_with_closure(cls, fused):
    """step(closure) evaluates the closure under enable_grad (even inside no_grad) and returns its loss;
    the update equals the one from the same gradients computed outside."""
    target = torch.randn(6, generator=torch.Generator().manual_seed(0))
    w, twin = torch.zeros(6, requires_grad=True), torch.zeros(6, requires_grad=True)
    opt, twin_opt = cls([w], lr=0.01, fused=fused), cls([twin], lr=0.01, fused=fused)
    seen = {}

    def closure():
        seen["grad_enabled"] = torch.is_grad_enabled()
        opt.zero_grad()
        loss = ((w - target) ** 2).sum()
        loss.backward()
        seen["loss"] = loss
        return loss

    for _ in range(3):
        with torch.no_grad():
            returned = opt.step(closure)
        assert seen["grad_enabled"] is True
        assert returned is seen["loss"]
        twin_opt.zero_grad()
        ((twin - target) ** 2).sum().backward()
        assert twin_opt.step() is None
    assert torch.equal(w, twin)
    assert not torch.equal(w, torch.zeros(6))


@pytest.mark.parametrize("config", params_for(REPRESENTATIVES))
def test_params_without_grad_are_skipped(config, fused):
    """Param 5 never gets a grad: no state, unchanged. Param 3 gets its first grad at step 3, so its
    step count lags the others' in the same group. The rest matches the reference."""
    params = make_params()
    ours = config.build(clone_params(params), fused)
    ref = _reference_for(config, params)
    late, never = 3, 5

    def skip(step, i):
        return i == never or (i == late and step < 3)

    run_lockstep([ours, ref], 3, skip=skip)
    held, ref_held = all_params(ours), all_params(ref)
    # No state until a param's first grad, or (Adagrad, as torch's) the state made at construction.
    assert set(ours.state.get(held[late], {})) == set(ref.state.get(ref_held[late], {}))
    assert torch.equal(held[late], params[late])
    run_lockstep([ours, ref], 10, skip=lambda step, i: i == never, seed=2)
    assert set(ours.state.get(held[never], {})) == set(ref.state.get(ref_held[never], {}))
    assert torch.equal(held[never], params[never])
    if "step" in ours.state[held[late]]:
        assert ours.state[held[late]]["step"].item() == 10
        assert ours.state[held[0]]["step"].item() == 13  # the empty param counts its steps too
    assert_optimizers_close(ours, ref, PARITY_TOL[torch.float32])


@pytest.mark.parametrize(
    "cls, invalid",
    [
        pytest.param(info.cls, e, id=f"{info.cls.__name__}-{e.match}")
        for info in OPTIM_DB
        for e in info.invalid
    ],
)
def test_invalid_hyperparameters_raise(cls, invalid):
    with pytest.raises(invalid.error, match=re.escape(invalid.match)):
        cls([torch.zeros(2)], **invalid.kwargs)


@pytest.mark.parametrize("cls", CLASSES)
def test_sparse_gradient_is_rejected(cls, fused):
    dense, p = torch.zeros(3), torch.zeros(4)
    opt = cls([dense, p], lr=0.1, fused=fused)
    dense.grad = torch.ones(3)
    p.grad = torch.sparse_coo_tensor(torch.tensor([[1]]), torch.tensor([1.0]), (4,), check_invariants=True)
    with pytest.raises(RuntimeError, match=rf"{cls.__name__}\b.*sparse.*param 1 of group 0"):
        opt.step()


@pytest.mark.parametrize("cls", CLASSES)
def test_complex_param_is_rejected(cls, fused):
    p = torch.zeros(3, dtype=torch.complex64)
    opt = cls([p], lr=0.1, fused=fused)
    p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match=rf"{cls.__name__}\b.*complex.*param 0 of group 0"):
        opt.step()
