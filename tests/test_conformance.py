"""Conformance with torch.optim's semantics where a user would notice a difference: checkpoints that
round-trip, no empty state, tensor betas, per-group validation, and steps that fail without leaving
anything changed. torch.optim's behaviour on the same input is the reference wherever it has one."""

from __future__ import annotations

import copy
import re
import warnings

import pytest
import torch

import optimizers
from optimizers import Adam, Momentum
from tests.helpers import PARITY_TOL, assert_optimizers_close, assert_optimizers_equal
from tests.optim_db import CLASSES, OPTIM_DB, info_of, takes

WITH_TORCH = [info.cls for info in OPTIM_DB if info.torch is not None]
BETAS_CLASSES = [cls for cls in CLASSES if takes(cls, "betas")]


def _params(n: int = 3, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(5 + i, generator=gen, requires_grad=True) for i in range(n)]


def _run(opt: torch.optim.Optimizer, steps: int, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    params = [p for group in opt.param_groups for p in group["params"]]
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        opt.step()


# -- checkpoints ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", CLASSES)
def test_state_dict_save_load_save_is_the_identity(cls, fused):
    """torch.optim's property: a state_dict loaded into a fresh optimizer saves as the same dict
    (same group keys and values, same state); ours added 'differentiable' to every group."""
    opt = cls(_params(), lr=0.01, fused=fused)
    _run(opt, 3)
    saved = opt.state_dict()
    fresh = cls(_params(), lr=0.5, fused=fused)
    fresh.load_state_dict(copy.deepcopy(saved))
    again = fresh.state_dict()
    assert again["param_groups"] == saved["param_groups"]
    assert again["state"].keys() == saved["state"].keys()
    for index, state in saved["state"].items():
        assert again["state"][index].keys() == state.keys()
        for key, value in state.items():
            assert torch.equal(again["state"][index][key], value), key


@pytest.mark.parametrize("cls", WITH_TORCH)
def test_state_dict_group_keys_are_stable_as_torchs(cls, fused):
    """The reference: torch.optim's groups keep their keys through save -> load -> save, and so do ours."""
    torch_cls = info_of(cls).torch.cls
    for make in (lambda ps: cls(ps, lr=0.01, fused=fused), lambda ps: torch_cls(ps, lr=0.01)):
        opt = make(_params())
        _run(opt, 1)
        keys = set(opt.state_dict()["param_groups"][0])
        fresh = make(_params())
        fresh.load_state_dict(opt.state_dict())
        assert set(fresh.state_dict()["param_groups"][0]) == keys


def test_plain_sgd_keeps_no_state(fused):
    """Momentum(momentum=0) is plain gradient descent: no state entries, as torch.optim.SGD."""
    ours, ref = Momentum(_params(), lr=0.1, momentum=0.0, fused=fused), torch.optim.SGD(_params(), lr=0.1)
    _run(ours, 2)
    _run(ref, 2)
    assert ref.state_dict()["state"] == {}
    assert ours.state_dict()["state"] == {}
    assert len(ours.state) == 0


# -- tensor betas ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(), (1,), (1, 1)], ids=["0-dim", "1-elem", "1x1"])
@pytest.mark.parametrize("cls", BETAS_CLASSES)
def test_tensor_betas_step_as_the_same_floats(cls, shape, fused):
    """1-element tensor betas give the result of the same values as floats, on both paths."""
    betas = (torch.full(shape, 0.8), torch.full(shape, 0.99))
    as_floats = cls(_params(), lr=0.01, betas=tuple(b.item() for b in betas), fused=fused)
    as_tensors = cls(_params(), lr=0.01, betas=betas, fused=fused)
    _run(as_floats, 3)
    _run(as_tensors, 3)
    assert_optimizers_equal(as_tensors, as_floats)


@pytest.mark.parametrize("cls", BETAS_CLASSES)
@pytest.mark.parametrize(
    "betas, fragment",
    [
        ((0.9, torch.tensor(0.999)), "both numbers or both 1-element tensors"),
        ((torch.tensor([0.9, 0.8]), torch.tensor([0.99, 0.9])), "1-element tensor"),
    ],
    ids=["mixed", "two-element"],
)
def test_other_tensor_betas_are_refused(cls, betas, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        cls(_params(), betas=betas)


# -- per-group validation ------------------------------------------------------------------------
GROUP_VALUES = [(info.cls, e.kwargs, e.match) for info in OPTIM_DB for e in info.invalid_in_group]
GROUP_IDS = [f"{cls.__name__}-{next(iter(values))}" for cls, values, _ in GROUP_VALUES]


@pytest.mark.parametrize("cls, values, fragment", GROUP_VALUES, ids=GROUP_IDS)
def test_invalid_group_values_raise_in_the_constructor(cls, values, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        cls([{"params": _params(1)}, {"params": _params(1, seed=1), **values}], lr=0.01)


@pytest.mark.parametrize("cls, values, fragment", GROUP_VALUES, ids=GROUP_IDS)
def test_invalid_group_values_raise_in_add_param_group(cls, values, fragment):
    opt = cls(_params(1), lr=0.01)
    with pytest.raises(ValueError, match=re.escape(fragment)):
        opt.add_param_group({"params": _params(1, seed=1), **values})
    assert len(opt.param_groups) == 1  # the invalid group was not kept


@pytest.mark.parametrize("cls, values, fragment", GROUP_VALUES, ids=GROUP_IDS)
def test_invalid_group_values_raise_in_load_state_dict(cls, values, fragment):
    if set(values) & {"fused", "master_weights"}:
        pytest.skip("the optimizer's own choice, not taken from a checkpoint")
    opt = cls(_params(1), lr=0.01)
    _run(opt, 1)
    damaged = opt.state_dict()
    damaged["param_groups"][0].update(values)
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match=re.escape(fragment)):
        opt.load_state_dict(damaged)
    assert opt.state_dict()["param_groups"] == before["param_groups"]


# -- a failed step changes nothing ------------------------------------------------------------------
@pytest.mark.parametrize("cls", CLASSES)
def test_a_step_without_a_kernel_leaves_no_state(cls):
    """fused=True on a device without a kernel raises before any state is made (torch checks first too)."""
    p = torch.zeros(4, device="meta", requires_grad=True)
    p.grad = torch.zeros(4, device="meta")
    opt = cls([p], lr=0.01, fused=True)
    before = _state_of(opt)
    with pytest.raises(RuntimeError, match="no fused kernel for device 'meta'"):
        opt.step()
    assert _state_of(opt) == before  # none, or (Adagrad, as torch's) what the constructor made


@pytest.mark.parametrize("cls", CLASSES)
def test_a_step_the_operator_refuses_leaves_no_state(cls):
    """The same param twice in a group: the fused operator refuses the aliasing call, and the fresh
    state it would have used is removed again."""
    p = torch.zeros(4, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.optim warns about the duplicate
        opt = cls([p, p], lr=0.01, fused=True)
    p.grad = torch.ones(4)
    before = _state_of(opt)
    with pytest.raises(RuntimeError, match="overlap in memory"):
        opt.step()
    assert _state_of(opt) == before
    assert torch.equal(p, torch.zeros(4))


def _state_of(opt) -> dict:
    """Every param's state as plain values (tensors as lists, meta ones by shape): equal when equal."""

    def plain(value):
        if not torch.is_tensor(value):
            return value
        return ("meta", tuple(value.shape)) if value.is_meta else value.tolist()

    return {id(p): {k: plain(v) for k, v in state.items()} for p, state in opt.state.items()}


def test_fallback_warns_once_per_device_type(monkeypatch):
    """fused=None where no kernel exists for the params' device runs the reference path and says so,
    once per device type, also when the extension itself is loaded."""
    monkeypatch.setattr(optimizers._extension, "_warned", set())
    monkeypatch.setattr(optimizers._extension, "has_kernel", lambda device: device.type != "cpu")
    p = torch.zeros(4, requires_grad=True)
    p.grad = torch.ones(4)
    opt = Adam([p], lr=0.01)
    with pytest.warns(RuntimeWarning, match="no kernel for 'cpu' params.*reference implementation"):
        opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        Momentum([p], lr=0.01).step()


# -- state follows its param's dtype ----------------------------------------------------------------
@pytest.mark.parametrize(
    "cls", [info.cls for info in OPTIM_DB if info.torch is not None and info.torch.after_model_double]
)
def test_training_goes_on_after_model_double(cls, fused):
    """model.double() mid-training: torch.optim.SGD and RMSprop go on, and so do we, matching them
    after the switch. (torch.optim.Adam raises there; ours goes on, see below.)"""
    twin = info_of(cls).torch
    kwargs = twin.after_model_double
    ours_params, ref_params = _params(), _params()
    ours, ref = cls(ours_params, **kwargs, fused=fused), twin.cls(ref_params, **twin.convert(kwargs))
    _run(ours, 2)
    _run(ref, 2)
    for p in ours_params + ref_params:
        p.data = p.data.double()
    _run(ours, 3, seed=2)
    _run(ref, 3, seed=2)
    assert all(p.dtype == torch.float64 for p in ours_params)
    assert_optimizers_close(ours, ref, PARITY_TOL[torch.float32])


# -- inf in a gradient -------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", WITH_TORCH)
def test_state_after_an_inf_gradient_is_torchs(cls, fused):
    """Two steps with ±inf in the grad: each state element is NaN, inf or finite where torch.optim's is
    (every state either optimizer holds: one that only one holds fails the comparison)."""
    twin = info_of(cls).torch
    kwargs = twin.inf_grad
    ours_p, ref_p = torch.ones(4, requires_grad=True), torch.ones(4, requires_grad=True)
    ours, ref = (
        cls([ours_p], lr=0.1, **kwargs, fused=fused),
        twin.cls([ref_p], lr=0.1, **twin.convert(kwargs)),
    )
    for _ in range(2):
        for p in (ours_p, ref_p):
            p.grad = torch.tensor([1.0, float("inf"), -float("inf"), 2.0])
        ours.step()
        ref.step()
    assert ours.state[ours_p]  # the check below compares state
    for name in (set(ours.state[ours_p]) | set(ref.state[ref_p])) - {"step"}:
        a, b = ours.state[ours_p][name], ref.state[ref_p][name]
        assert torch.equal(a.isnan(), b.isnan()), name
        assert torch.equal(a.isinf(), b.isinf()), name
    assert torch.equal(ours_p.isnan(), ref_p.isnan())


@pytest.mark.parametrize("cls", CLASSES)
def test_state_follows_the_params_dtype(cls, fused):
    """After model.double() every floating-point state tensor is float64 like its param, the step
    count stays float32, and the values carried over are the float32 ones, exactly."""
    state_kinds = info_of(cls).state
    params = _params()
    opt = cls(params, lr=0.01, fused=fused)
    _run(opt, 2)
    carried = copy.deepcopy(opt.state_dict()["state"])
    for p in params:
        p.data = p.data.double()
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.param_groups[0]["lr"] = 0.0
    opt.step()
    for index, p in enumerate(params):
        for key, value in opt.state[p].items():
            before, kind = carried[index][key], state_kinds[key].zero_grad
            if kind == "counts":
                assert value.dtype == torch.float32
            else:
                assert value.dtype == torch.float64, key
                if kind in ("replaced", "moves"):
                    continue  # e.g. diffGrad's previous_grad holds this step's (zero) grad
                if kind == "decays":  # a zero-grad step scales the moving averages, nothing else
                    assert torch.all((value == 0) == (before == 0)), key
                else:
                    assert kind == "stays", kind
                    assert torch.equal(value, before.double()), key
