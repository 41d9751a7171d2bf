"""Run under torchrun (2 processes, gloo, CPU): FSDP2 (fully_shard, DTensor params) training with each
of our classes on the fused kernel, beside torch.optim's rule and our reference path on the same
sharded model, a DCP checkpoint resume, and a state placed unlike its param. Rank 0 writes what the
test compares to OUT/results.pt."""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import Replicate, distribute_tensor

import optimizers
from tests.optim_db import OPTIM_DB

STEPS, RESUME_AT = 5, 3
# Every class of tests/optim_db.py, run with its `fsdp2` hyperparameters (which exercise its state).
CASES = {info.cls.__name__: info for info in OPTIM_DB}


def sharded_model() -> torch.nn.Module:
    torch.manual_seed(0)  # the same initial weights on every rank, then sharded
    # 7 rows do not split evenly over 2 ranks: uneven local shards are covered.
    model = torch.nn.Sequential(torch.nn.Linear(6, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer)
    return fully_shard(model)


def train(model, opt, steps: range) -> None:
    for step in steps:
        gen = torch.Generator().manual_seed(100 * step + dist.get_rank())  # each rank its own batch
        x, y = torch.randn(8, 6, generator=gen), torch.randn(8, 3, generator=gen)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def full_params(model) -> list[torch.Tensor]:
    return [p.full_tensor().detach().clone() for p in model.parameters()]


def run(make_opt, steps=range(STEPS)) -> tuple[list[torch.Tensor], object]:
    model = sharded_model()
    opt = make_opt(model.parameters())
    train(model, opt, steps)
    return full_params(model), opt


def resumed(make_opt, checkpoint: str) -> list[torch.Tensor]:
    """RESUME_AT steps, a DCP save, a fresh model and optimizer loaded from it, the remaining steps."""
    model = sharded_model()
    opt = make_opt(model.parameters())
    train(model, opt, range(RESUME_AT))
    model_state, optim_state = get_state_dict(model, opt)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=checkpoint)
    model, opt = sharded_model(), None
    opt = make_opt(model.parameters())
    model_state, optim_state = get_state_dict(model, opt)
    loaded = {"model": model_state, "optim": optim_state}
    dcp.load(loaded, checkpoint_id=checkpoint)
    set_state_dict(model, opt, model_state_dict=loaded["model"], optim_state_dict=loaded["optim"])
    train(model, opt, range(RESUME_AT, STEPS))
    return full_params(model)


def placement_mismatch_error() -> str:
    """A sharded param whose state is replicated: the fused step must refuse it, not mix elements."""
    model = sharded_model()
    p = next(model.parameters())
    opt = optimizers.Adam([p], lr=0.01, fused=True)
    p.grad = torch.ones_like(p)
    opt.step()
    state = opt.state[p]
    state["exp_avg"] = distribute_tensor(state["exp_avg"].full_tensor(), p.device_mesh, [Replicate()])
    p.grad = torch.ones_like(p)
    try:
        opt.step()
    except RuntimeError as error:
        return str(error)
    return ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    out = parser.parse_args().out
    dist.init_process_group("gloo")
    results: dict = {"world_size": dist.get_world_size()}
    for name, info in CASES.items():
        cls, kwargs = info.cls, info.fsdp2
        fused, opt = run(lambda ps, cls=cls, kwargs=kwargs: cls(ps, **kwargs, fused=True))
        local_state_types = {type(v).__name__ for state in opt.state.values() for v in state.values()}
        reference, _ = run(lambda ps, cls=cls, kwargs=kwargs: cls(ps, **kwargs, fused=False))
        results[name] = {
            "fused": fused,
            "reference": reference,
            "state_types": sorted(local_state_types),
            "resumed": resumed(
                lambda ps, cls=cls, kwargs=kwargs: cls(ps, **kwargs, fused=True),
                os.path.join(out, f"dcp-{name}"),
            ),
        }
        if info.torch is not None:
            torch_cls, torch_kwargs = info.torch.cls, info.torch.convert(kwargs)
            results[name]["torch"], _ = run(lambda ps, c=torch_cls, kwargs=torch_kwargs: c(ps, **kwargs))
    results["mismatch_error"] = placement_mismatch_error()
    if dist.get_rank() == 0:
        torch.save(results, os.path.join(out, "results.pt"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
