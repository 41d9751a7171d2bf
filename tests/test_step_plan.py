"""The per-group plan that FusedOptimizer.step() keeps between steps (optimizers._base._GroupPlan):
whatever changes between two steps, a run with plans gives exactly what a run that makes every
decision afresh gives, and what the plan cannot see is refused, not used stale."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import optimizers
from optimizers import _base
from tests.helpers import PARITY_TOL, rel_diff
from tests.optim_db import OptimConfig, configs, info_of, params_for

# Each class in the configurations of its `step_plan`; torch.optim's rule, where it has one, is an
# independent reference for the changes torch.optim supports.
PLANNED = configs("step_plan")

SHAPES = ((7,), (3, 4), (1,))
# A group of one dtype makes one kernel call on every param; float32 params beside a bf16 one under
# master weights make two calls, whose param indices the plan keeps.
PARAM_SETS = {
    "float32": dict(dtypes=(torch.float32,) * 3, master_weights=False),
    "mixed with master weights": dict(
        dtypes=(torch.float32, torch.bfloat16, torch.float32), master_weights=True
    ),
}


def _params(dtype=torch.float32, shapes=SHAPES, dtypes=None):
    generator = torch.Generator().manual_seed(0)
    dtypes = dtypes or (dtype,) * len(shapes)
    return [torch.nn.Parameter(torch.randn(s, generator=generator).to(d)) for s, d in zip(shapes, dtypes)]


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


def _swap_params_and_drop_a_grad(opt, params, step):
    if step == 2:
        group = opt.param_groups[0]["params"]
        group[0], group[1] = group[1], group[0]
        params[2].grad = None


def _new_hyperparameters(opt, params, step):
    """The values the kernels read from the group: taken at each step, never from the plan."""
    if step == 2:
        group = opt.param_groups[0]
        group["lr"] = 0.5 * group["lr"]
        group["weight_decay"] = 0.05
        group["maximize"] = True


def _new_param_object(opt, params, step):
    if step == 2:
        fresh = torch.nn.Parameter(params[0].detach().clone())
        fresh.grad = params[0].grad
        opt.param_groups[0]["params"][0] = params[0] = fresh


CHANGES: dict[str, Callable] = {
    "nothing": lambda opt, params, step: None,
    "a grad set to None": _drop_a_grad,
    "params made float64": _new_dtype,
    "a group added": _add_group,
    "state_dict reloaded": _reload,
    "a param's state deleted": _forget_state,
    "params reordered": _swap_params,
    "params reordered and a grad set to None": _swap_params_and_drop_a_grad,
    "hyperparameters changed": _new_hyperparameters,
    "a param replaced by a new one": _new_param_object,
}
# What torch.optim does not support (its Adam raises on float64 params with float32 state).
NOT_IN_TORCH = ("params made float64",)


def _run(make: Callable, change: Callable, param_set: str = "float32", steps: int = 4):
    """`steps` steps of the optimizer make(params, master_weights) builds, with `change` made
    before each; the params and every state tensor at the end."""
    settings = PARAM_SETS[param_set]
    params = _params(dtypes=settings["dtypes"])
    opt = make(params, settings["master_weights"])
    for step in range(steps):
        _grads(params, step)
        change(opt, params, step)
        opt.step()
    state = {
        i: {k: v.clone() for k, v in opt.state[p].items()} for i, p in enumerate(params) if p in opt.state
    }
    return [p.detach().clone() for p in params], state


def _ours(config: OptimConfig) -> Callable:
    return lambda params, master_weights: config.cls(
        params, **config.kwargs, fused=True, master_weights=master_weights
    )


def _torch(config: OptimConfig) -> Callable:
    twin = info_of(config.cls).torch
    return lambda params, master_weights: twin.cls(params, **twin.convert(config.kwargs))


@pytest.mark.parametrize("param_set", list(PARAM_SETS))
@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
@pytest.mark.parametrize("config", params_for(PLANNED))
def test_a_step_with_a_plan_equals_one_without(config, change, param_set, monkeypatch):
    with_plans = _run(_ours(config), CHANGES[change], param_set)
    _without_plans(monkeypatch)
    without = _run(_ours(config), CHANGES[change], param_set)
    for ours, fresh in zip(with_plans[0], without[0], strict=True):
        assert ours.dtype == fresh.dtype
        torch.testing.assert_close(ours, fresh, rtol=0, atol=0)
    assert with_plans[1].keys() == without[1].keys()
    for i, state in with_plans[1].items():
        assert state.keys() == without[1][i].keys()
        for key, value in state.items():
            torch.testing.assert_close(value, without[1][i][key], rtol=0, atol=0)


@pytest.mark.parametrize("change", [c for c in CHANGES if c not in NOT_IN_TORCH])
@pytest.mark.parametrize("config", params_for(c for c in PLANNED if c.reference == "torch"))
def test_planned_steps_match_torch_optim_through_the_change(config, change):
    """The same run against torch.optim's own rule, which keeps no plan: params and every state
    tensor torch keeps, at the package's fp32 parity tolerance."""
    ours_params, ours_state = _run(_ours(config), CHANGES[change])
    torch_params, torch_state = _run(_torch(config), CHANGES[change])
    for ours, ref in zip(ours_params, torch_params, strict=True):
        assert rel_diff(ours, ref) <= PARITY_TOL[torch.float32]
    for i, state in torch_state.items():
        for key, ref in state.items():
            assert rel_diff(ours_state[i][key], ref) <= PARITY_TOL[torch.float32], (i, key)


def _master_weights_on(opt, group, params, dtypes, devices):
    group["master_weights"] = True  # the same group dict, changed in place
    return opt, group, params, dtypes, devices


# Each thing the plan depends on, changed alone: holds() must see it (the end-to-end runs above
# cannot tell some of them apart on a CPU-only machine, e.g. a param moved to another device).
STALE = {
    "another group dict": lambda opt, g, ps, dt, dv: (opt, dict(g), ps, dt, dv),
    "another state mapping": lambda opt, g, ps, dt, dv: (_WithState(dict(opt.state)), g, ps, dt, dv),
    "master weights turned on": _master_weights_on,
    "a param fewer": lambda opt, g, ps, dt, dv: (opt, g, ps[:2], dt[:2], dv[:2]),
    "another param object": lambda opt, g, ps, dt, dv: (
        opt,
        g,
        [torch.nn.Parameter(ps[0].detach().clone()), *ps[1:]],
        dt,
        dv,
    ),
    "params reordered": lambda opt, g, ps, dt, dv: (opt, g, [ps[1], ps[0], ps[2]], dt, dv),
    "a dtype changed": lambda opt, g, ps, dt, dv: (opt, g, ps, [torch.float64, *dt[1:]], dv),
    "a device changed": lambda opt, g, ps, dt, dv: (opt, g, ps, dt, [torch.device("meta"), *dv[1:]]),
}


class _WithState:
    def __init__(self, state):
        self.state = state


@pytest.mark.parametrize("what", list(STALE))
def test_the_plan_no_longer_holds_when_anything_it_depends_on_changes(what):
    params = _params()
    opt = optimizers.Adam(params, fused=True)
    _grads(params, 0)
    opt.step()
    group, plan = opt.param_groups[0], opt._group_plans[0]
    dtypes, devices = [p.dtype for p in params], [p.device for p in params]
    assert plan.holds(opt, group, params, dtypes, devices)
    assert not plan.holds(*STALE[what](opt, group, params, dtypes, devices))


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
