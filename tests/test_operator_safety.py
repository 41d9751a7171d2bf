"""No silent wrong answers from the operators: what they write is marked written (version counters),
aliased memory is refused instead of raced on, a call that raises has changed nothing, and every
tensor must lie on the params' device."""

from __future__ import annotations

import warnings

import pytest
import torch

from optimizers import Adam, Momentum
from optimizers._extension import OPERATORS
from tests.optim_db import CLASSES
from tests.test_operators import call, list_names, valid_call


@pytest.mark.parametrize("cls", CLASSES)
def test_backward_through_a_weight_the_step_changed_raises(cls, fused):
    """A weight saved for backward, then step(), then backward(): torch.optim's in-place updates
    make autograd raise, so must ours (the kernel bumps the version counters of what it writes)."""
    w = torch.ones(3, requires_grad=True)
    opt = cls([w], lr=0.1, fused=fused)
    w.grad = torch.ones(3)
    loss = (w * w).sum()  # saves w for backward
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("name", OPERATORS)
def test_every_written_tensor_has_its_version_bumped(name):
    lists, kwargs = valid_call(name)
    kwargs["grad_scale"] = torch.tensor(2.0)  # the grads are written too (unscaled in place)
    versions = {arg: [t._version for t in tensors] for arg, tensors in lists.items()}
    call(name, lists, kwargs)
    for arg, tensors in lists.items():
        for t, before in zip(tensors, versions[arg]):
            assert t._version > before, arg


@pytest.mark.parametrize("cls", CLASSES)
def test_two_params_over_one_storage_are_refused(cls):
    """Two Parameters over one tensor would be updated by two threads at once (a different result
    on each run): the fused step refuses, naming both."""
    base = torch.zeros(4)
    a, b = torch.nn.Parameter(base), torch.nn.Parameter(base)
    opt = cls([a, b], lr=0.1, fused=True)
    a.grad, b.grad = torch.ones(4), torch.ones(4)
    with pytest.raises(RuntimeError, match=r"params\[1\] and params\[0\] overlap in memory"):
        opt.step()
    assert torch.equal(base, torch.zeros(4))


@pytest.mark.parametrize("cls", CLASSES)
def test_disjoint_views_of_one_buffer_step_as_separate_tensors(cls):
    """Params that are disjoint views into one flat buffer (and grads likewise, as FSDP2 lays them
    out) are not aliasing: they step exactly as separate tensors do."""
    flat, flat_grad = torch.arange(10.0), torch.linspace(-1, 1, 10)
    views = [flat[:4], flat[4:]]
    for v, g in zip(views, (flat_grad[:4], flat_grad[4:])):
        v.grad = g
    apart = [flat[:4].clone(), flat[4:].clone()]
    for p, v in zip(apart, views):
        p.grad = v.grad.clone()
    ours, ref = cls(views, lr=0.1, fused=True), cls(apart, lr=0.1, fused=True)
    for _ in range(3):
        ours.step()
        ref.step()
    assert torch.equal(flat, torch.cat(apart))


def test_the_same_tensor_in_two_lists_is_refused():
    lists, kwargs = valid_call("adam_")
    lists["exp_avgs"][1] = lists["params"][1]
    with pytest.raises(RuntimeError, match=r"exp_avgs\[1\] and params\[1\] overlap|params\[1\] and exp_avgs"):
        call("adam_", lists, kwargs)


# Views of one 12-element buffer that share bytes (params[0], params[1]), as a user could build them.
OVERLAPPING_VIEWS = {
    "partly overlapping slices": lambda flat: (flat[:7], flat[5:]),
    "a slice inside another": lambda flat: (flat[2:10], flat[4:6]),
    "interleaved by strides": lambda flat: (flat[0::2], flat[1::2]),  # no common element, same bytes
    "rows of a transposed view": lambda flat: (flat.view(3, 4).t()[0], flat.view(3, 4)[0]),
}


@pytest.mark.parametrize("views", list(OVERLAPPING_VIEWS), ids=list(OVERLAPPING_VIEWS))
def test_views_of_one_buffer_whose_bytes_overlap_are_refused(views):
    """Overlap within one storage is judged by byte ranges, also among params that are not the same
    tensor (the cheap first pass only skips calls whose tensors have distinct storages)."""
    flat = torch.arange(12.0)
    params = [torch.nn.Parameter(v) for v in OVERLAPPING_VIEWS[views](flat)]
    params.append(torch.nn.Parameter(torch.zeros(3)))  # a tensor of its own beside them
    for p in params:
        p.grad = torch.ones_like(p)
    opt = Adam(params, lr=0.1, fused=True)
    with pytest.raises(RuntimeError, match=r"params\[[01]\] and params\[[01]\] overlap in memory"):
        opt.step()
    assert torch.equal(flat, torch.arange(12.0))


def test_a_grad_over_its_params_bytes_is_refused():
    """A grad is only read, but the param it overlaps is written: refused."""
    lists, kwargs = valid_call("adam_")
    lists["grads"][1] = lists["params"][1].view_as(lists["params"][1])
    with pytest.raises(RuntimeError, match=r"grads\[1\] and params\[1\] overlap|params\[1\] and grads\[1\]"):
        call("adam_", lists, kwargs)


def _snapshot(lists):
    return {arg: [t.clone() for t in tensors] for arg, tensors in lists.items()}


def _unchanged(lists, snapshot) -> bool:
    return all(torch.equal(a, b) for arg in lists for a, b in zip(lists[arg], snapshot[arg], strict=True))


def test_an_expanded_grad_with_grad_scale_is_refused_before_anything_changes():
    """With grad_scale the grads are unscaled in place, which an expanded grad cannot hold: the call
    raises before the update and before the step counts move."""
    lists, kwargs = valid_call("adam_")
    lists["grads"][0] = torch.ones(1).expand(lists["params"][0].shape)
    kwargs["grad_scale"] = torch.tensor(2.0)
    before = _snapshot(lists)
    with pytest.raises(RuntimeError, match=r"grads\[0\] has elements that share memory"):
        call("adam_", lists, kwargs)
    assert _unchanged(lists, before)


def test_an_expanded_grad_without_grad_scale_is_only_read():
    """Without grad_scale an expanded grad is only read: the step is that of the same values dense."""
    lists, kwargs = valid_call("adam_")
    dense = _snapshot(lists)
    lists["grads"][0] = torch.ones(1).expand(lists["params"][0].shape)
    dense["grads"][0] = torch.ones(lists["params"][0].shape)
    call("adam_", lists, kwargs)
    call("adam_", dense, kwargs)
    assert all(torch.equal(a, b) for a, b in zip(lists["params"], dense["params"]))


@pytest.mark.parametrize("name", [n for n in OPERATORS if "state_steps" in list_names(n)])
def test_step_counts_of_another_dtype_are_refused_before_anything_changes(name):
    lists, kwargs = valid_call(name)
    lists["state_steps"][1] = torch.zeros((), dtype=torch.int64)
    before = _snapshot(lists)
    with pytest.raises(RuntimeError, match=r"state_steps\[1\] has dtype Long"):
        call(name, lists, kwargs)
    assert _unchanged(lists, before)


@pytest.mark.parametrize("name", OPERATORS)
def test_a_meta_state_tensor_is_refused(name):
    """A single meta tensor among CPU ones sends the call to the meta kernel, which computes nothing:
    it must raise, as the reference path does, instead of returning with nothing updated."""
    lists, kwargs = valid_call(name)
    state = next(arg for arg in lists if arg not in ("params", "grads") and lists[arg])
    lists[state][0] = torch.empty_like(lists[state][0], device="meta")
    with pytest.raises(RuntimeError, match=rf"{state}\[0\] is on meta but params\[0\] is on cpu"):
        call(name, lists, kwargs)


def test_a_param_listed_twice_in_a_group_is_refused_by_the_kernel_and_not_raced():
    p = torch.zeros(4, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = Momentum([p, p], lr=0.1, fused=True)
    p.grad = torch.ones(4)
    with pytest.raises(RuntimeError, match="overlap in memory"):
        opt.step()


def test_the_reference_path_steps_a_param_listed_twice_deterministically():
    """fused=False updates the duplicate in turn, the same on every run."""
    results = []
    for _ in range(3):
        p = torch.zeros(4, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = Adam([p, p], lr=0.1, fused=False)
        p.grad = torch.ones(4)
        opt.step()
        results.append(p.detach().clone())
    assert all(torch.equal(r, results[0]) for r in results)
