"""The per-group plan that FusedOptimizer.step() keeps between steps (optimizers._base._GroupPlan):
whatever changes between two steps, a run with plans gives exactly what a run that makes every
decision afresh gives, and what the plan cannot see is refused, not used stale."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import optimizers
from optimizers import _base

CLASSES = {
    "momentum": lambda ps, **kw: optimizers.Momentum(ps, lr=1e-2, momentum=0.9, **kw),
    "sgd": lambda ps, **kw: optimizers.Momentum(ps, lr=1e-2, momentum=0.0, **kw),
    "adam": lambda ps, **kw: optimizers.Adam(ps, lr=1e-2, **kw),
    "adamw-amsgrad": lambda ps, **kw: optimizers.AdamW(ps, lr=1e-2, amsgrad=True, **kw),
    "rmsprop": lambda ps, **kw: optimizers.RMSProp(ps, lr=1e-2, **kw),
    "diffgrad": lambda ps, **kw: optimizers.DiffGrad(ps, lr=1e-2, **kw),
}


def _params(dtype=torch.float32, shapes=((7,), (3, 4), (1,))):
    generator = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=generator, dtype=dtype)) for s in shapes]


def _grads(params, step: int):
    generator = torch.Generator().manual_seed(100 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator).to(p.dtype)


def _without_plans(monkeypatch) -> None:
    monkeypatch.setattr(_base.FusedOptimizer, "_valid_plan", lambda self, *args: None)


# Things a training loop (or its user) may change between two steps.
def _drop_a_grad(opt, params, step):
    if step == 2:
        params[1].grad = None


def _new_dtype(opt, params, step):
    if step == 2:
        for p in params:
            p.data, p.grad = p.data.double(), p.grad.double()


def _add_group(opt, params, step):
    if step == 2:
        extra = torch.nn.Parameter(torch.ones(5, dtype=params[0].dtype))
        extra.grad = torch.full_like(extra, 0.5)
        opt.add_param_group({"params": [extra]})
        params.append(extra)


def _reload(opt, params, step):
    if step == 2:
        opt.load_state_dict(opt.state_dict())


def _forget_state(opt, params, step):
    if step == 2:
        opt.state.pop(params[0], None)  # plain SGD keeps none


def _swap_params(opt, params, step):
    if step == 2:
        group = opt.param_groups[0]["params"]
        group[0], group[2] = group[2], group[0]


CHANGES: dict[str, Callable] = {
    "nothing": lambda opt, params, step: None,
    "a grad set to None": _drop_a_grad,
    "params made float64": _new_dtype,
    "a group added": _add_group,
    "state_dict reloaded": _reload,
    "a param's state deleted": _forget_state,
    "params reordered": _swap_params,
}


def _run(make, change, steps=4):
    params = _params()
    opt = make(params, fused=True)
    for step in range(steps):
        _grads(params, step)
        change(opt, params, step)
        opt.step()
    state = {
        i: {k: v.clone() for k, v in opt.state[p].items()} for i, p in enumerate(params) if p in opt.state
    }
    return [p.detach().clone() for p in params], state


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
@pytest.mark.parametrize("name", list(CLASSES))
def test_a_step_with_a_plan_equals_one_without(name, change, monkeypatch):
    with_plans = _run(CLASSES[name], CHANGES[change])
    _without_plans(monkeypatch)
    without = _run(CLASSES[name], CHANGES[change])
    for ours, fresh in zip(with_plans[0], without[0], strict=True):
        assert ours.dtype == fresh.dtype
        torch.testing.assert_close(ours, fresh, rtol=0, atol=0)
    assert with_plans[1].keys() == without[1].keys()
    for i, state in with_plans[1].items():
        assert state.keys() == without[1][i].keys()
        for key, value in state.items():
            torch.testing.assert_close(value, without[1][i][key], rtol=0, atol=0)


def test_the_plan_is_kept_while_nothing_changes_and_dropped_when_something_does():
    params = _params()
    opt = optimizers.Adam(params, fused=True)
    _grads(params, 0)
    opt.step()
    plan = opt._group_plans[0]
    opt.step()
    assert opt._group_plans[0] is plan
    params[0].grad = None
    opt.step()
    assert opt._group_plans[0] is not plan and len(opt._group_plans[0].params) == 2


def test_a_sparse_grad_is_refused_after_a_planned_step():
    params = _params()
    opt = optimizers.Adam(params, fused=True)
    _grads(params, 0)
    opt.step()
    opt.step()  # planned
    params[1].grad = params[1].grad.to_sparse()
    with pytest.raises(RuntimeError, match="param 1 of group 0"):
        opt.step()


def test_a_state_tensor_replaced_with_another_dtype_is_refused_not_used():
    params = _params()
    opt = optimizers.Adam(params, fused=True)
    _grads(params, 0)
    opt.step()
    opt.state[params[0]]["exp_avg"] = opt.state[params[0]]["exp_avg"].double()
    with pytest.raises(RuntimeError, match="exp_avgs\\[0\\] has dtype Double"):
        opt.step()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_master_weights_turned_off_between_planned_steps(dtype, monkeypatch):
    def run():
        params = _params(dtype)
        opt = optimizers.Adam(params, lr=1e-2, fused=True, master_weights=True)
        for step in range(4):
            _grads(params, step)
            if step == 2:
                opt.param_groups[0]["master_weights"] = False
            opt.step()
        return params, opt

    params, opt = run()
    assert all("master_param" not in opt.state[p] for p in params)
    assert all(opt.state[p]["exp_avg"].dtype == dtype for p in params)
    _without_plans(monkeypatch)
    fresh, _ = run()
    for ours, other in zip(params, fresh):
        torch.testing.assert_close(ours, other, rtol=0, atol=0)


def test_a_checkpoint_with_master_weights_loaded_between_planned_steps():
    """load_state_dict brings fp32 masters and fp32 state into an optimizer without master weights:
    the next step drops the masters and casts the state back, as on an unplanned step."""
    donor_params = _params(torch.bfloat16)
    donor = optimizers.Adam(donor_params, lr=1e-2, fused=True, master_weights=True)
    _grads(donor_params, 0)
    donor.step()
    params = _params(torch.bfloat16)
    opt = optimizers.Adam(params, lr=1e-2, fused=True)
    for step in range(2):
        _grads(params, step)
        opt.step()
    opt.load_state_dict(donor.state_dict())
    assert opt.state[params[0]]["exp_avg"].dtype == torch.float32
    opt.step()
    assert all("master_param" not in opt.state[p] for p in params)
    assert all(opt.state[p]["exp_avg"].dtype == torch.bfloat16 for p in params)
