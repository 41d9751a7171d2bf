"""torch.compile of step(): a float lr changed by a scheduler at every step recompiles no more often
than torch.optim's does (Dynamo would otherwise guard on each float value passed to the operator)."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

from tests.optim_db import CLASSES, info_of

STEPS = 12


def _graphs_and_params(make) -> tuple[int, list[torch.Tensor]]:
    """Compiled graphs after STEPS scheduled steps of a small model, and its final params. Not
    fullgraph: Dynamo skips the wrapper that an lr scheduler puts around step() (for torch.optim's
    optimizers too); without one, ours compile with fullgraph=True (the test below)."""
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = make(model.parameters())
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.9**step)

    @torch.compile
    def step():
        opt.step()

    gen = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        model(torch.randn(2, 4, generator=gen)).sum().backward()
        step()
        opt.zero_grad()
        schedule.step()
    return counters["stats"]["unique_graphs"], [p.detach().clone() for p in model.parameters()]


@pytest.fixture(scope="module")
def torch_adam_graphs() -> int:
    graphs, _ = _graphs_and_params(lambda ps: torch.optim.Adam(ps, lr=0.01))
    return graphs


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_scheduled_float_lr_does_not_recompile_per_value(cls, torch_adam_graphs):
    """No more graphs than torch.optim.Adam under the same schedule, and the compiled steps give the
    eager result: the lr reaches the kernel as a graph input, not as a constant of the first graph."""
    info = info_of(cls)
    kwargs = info.basic
    graphs, compiled = _graphs_and_params(lambda ps: cls(ps, **kwargs))
    assert graphs <= torch_adam_graphs
    torch._dynamo.reset()
    eager = _eager_params(cls, kwargs)
    for a, b in zip(compiled, eager):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    if info.torch is not None:  # and torch.optim agrees under the same schedule
        reference = _eager_params(info.torch.cls, info.torch.convert(kwargs))
        for a, b in zip(compiled, reference):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _eager_params(cls, kwargs) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = cls(model.parameters(), **kwargs)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.9**step)
    gen = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        model(torch.randn(2, 4, generator=gen)).sum().backward()
        opt.step()
        opt.zero_grad()
        schedule.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_step_compiles_as_one_graph_with_a_changing_float_lr(cls):
    """fullgraph=True (no graph break) with the lr set by hand before each step: at most two graphs
    (the first one specialized, then one with the lr as an input), as torch.optim compiles."""
    torch._dynamo.reset()
    counters.clear()
    p = torch.zeros(5, requires_grad=True)
    opt = cls([p], lr=0.1)
    step = torch.compile(opt.step, fullgraph=True)
    for i in range(STEPS):
        p.grad = torch.ones(5)
        opt.param_groups[0]["lr"] = 0.1 * 0.9**i
        step()
    assert counters["stats"]["unique_graphs"] <= 2
