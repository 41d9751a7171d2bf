"""The step hooks and profiler label of torch.optim, which our classes run through their own leaner
wrapper (optimizers/_step_hooks.py): each behaviour is compared with torch.optim.SGD's."""

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

import optimizers


def _params():
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), 0.5)
    return [p]


def _momentum(params):
    return optimizers.Momentum(params, lr=0.1, momentum=0.9)


def _sgd(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def _hook_calls(make) -> list[tuple]:
    """What each of the four kinds of hook saw over two steps, in the order they ran."""
    calls = []
    opt = make(_params())
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", args[1:], kwargs)))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", args[1:], kwargs)))
    handles = [
        register_optimizer_step_pre_hook(lambda o, args, kwargs: calls.append(("global pre", o is opt))),
        register_optimizer_step_post_hook(lambda o, args, kwargs: calls.append(("global post", o is opt))),
    ]
    try:
        opt.step()
        opt.step(closure=None)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def test_hooks_run_once_each_in_torchs_order_with_torchs_arguments():
    assert _hook_calls(_momentum) == _hook_calls(_sgd)
    assert len(_hook_calls(_momentum)) == 8


def test_a_pre_hook_can_replace_the_arguments():
    def with_closure(make):
        seen = []
        opt = make(_params())
        opt.register_step_pre_hook(lambda o, args, kwargs: (args, {"closure": lambda: seen.append(1) or 2.0}))
        return opt.step(), seen

    assert with_closure(_momentum) == with_closure(_sgd) == (2.0, [1])


def test_a_pre_hook_returning_something_else_is_refused():
    for make in (_momentum, _sgd):
        opt = make(_params())
        opt.register_step_pre_hook(lambda o, args, kwargs: "not a tuple")
        with pytest.raises(RuntimeError, match="must return None or a tuple of"):
            opt.step()


def test_a_subclass_step_runs_the_hooks_as_often_as_torchs():
    class MyMomentum(optimizers.Momentum):
        def step(self, closure=None):
            return super().step(closure)

    class MySGD(torch.optim.SGD):
        def step(self, closure=None):
            return super().step(closure)

    assert _hook_calls(MyMomentum) == _hook_calls(MySGD)


def _step_labels(make) -> list[str]:
    opt = make(_params())
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        opt.step()
    return [e.name for e in prof.events() if e.name.startswith("Optimizer.step#")]


def test_a_profiled_step_carries_torchs_label():
    assert _step_labels(_momentum) == ["Optimizer.step#Momentum.step"]
    assert _step_labels(_sgd) == ["Optimizer.step#SGD.step"]


def test_an_unobserved_step_makes_no_record_function(monkeypatch):
    """The point of the wrapper: no record_function (a torch.ops call) when nothing observes it."""
    made = []

    class Counting(torch.autograd.profiler.record_function):
        def __init__(self, *args, **kwargs):
            made.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(torch.autograd.profiler, "record_function", Counting)
    opt = _momentum(_params())
    opt.step()
    assert made == []
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]):
        opt.step()
    assert made == [("Optimizer.step#Momentum.step",)]


def test_a_torch_function_mode_sees_the_operator():
    """Under a TorchFunctionMode the step calls torch.ops.optimizers.*, which the mode intercepts."""
    seen = []

    class Record(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))

    opt = _momentum(_params())
    with Record():
        opt.step()
    assert torch.ops.optimizers.momentum_.default in seen or torch.ops.optimizers.momentum_ in seen
