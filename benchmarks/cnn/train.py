"""One training run: the dataset's model (model.py) from `seed`, one optimizer at one lr and schedule,
`epochs` passes over the training inputs, the validation and test splits scored after each. The same
loop runs in one process or data-parallel under DistributedDataParallel (`world` set, process group
initialized): every rank draws its shard of a DistributedSampler permutation and takes
batch_size // world_size inputs per step, so the global batch and the number of steps per epoch match
the single-process run."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DistributedSampler

from benchmarks.optimizer_specs import OptimizerSpec

from .data import ImageData
from .model import build_model
from .schedules import lr_factor

EVAL_BATCH = 1024


@dataclass(frozen=True)
class World:
    """This process's place in a data-parallel run (the process group must already exist)."""

    rank: int
    size: int


@dataclass
class RunResult:
    """records: one dict per epoch (see EPOCH_COLUMNS). model, optimizer: their final state (model is the
    DDP wrapper in a distributed run)."""

    records: list[dict]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer


EPOCH_COLUMNS = (
    "epoch",  # 1-based
    "steps",  # optimizer steps so far
    "lr_now",  # the lr of the epoch's last step (the schedule's factor times the run's lr)
    "train_loss",  # mean cross-entropy over the epoch's training batches (as they were trained on)
    "val_loss",  # mean cross-entropy on the validation split after the epoch (NaN: no such split)
    "val_accuracy",  # fraction correct on it
    "test_loss",  # the same on the test split (NaN in the lr sweep, which never sees it)
    "test_accuracy",
    "train_seconds",  # wall time of the epoch's training loop (forward, backward, step)
    "step_ms",  # median over the epoch's steps of the time in optimizer.step(), in ms
    "eval_seconds",  # wall time of the evaluation
    "elapsed_seconds",  # cumulative train_seconds up to this epoch
    "diverged",  # the parameters are no longer finite: later epochs repeat this one's scores untrained
)
SPLITS = ("val", "test")


class _Indices:
    """A Sized stand-in for a dataset: DistributedSampler needs only its length."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _all_reduce(values: list[float], device: torch.device, world: World | None, op=None) -> list[float]:
    if world is None or world.size == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op is None else op)
    return t.tolist()


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, data: ImageData, x: Tensor, y: Tensor, world: World | None = None
) -> tuple[float, float]:
    """(mean loss, accuracy) of `model` on inputs x, labels y; ranks take strided shards and sum."""
    model.eval()
    net = getattr(model, "module", model)  # no DDP forward: it would broadcast buffers out of step
    start, stride = (0, 1) if world is None else (world.rank, world.size)
    idx = torch.arange(start, len(y), stride, device=y.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=idx.device)
    correct = torch.zeros((), dtype=torch.int64, device=idx.device)
    for b in range(0, len(idx), EVAL_BATCH):
        bi = idx[b : b + EVAL_BATCH]
        logits = net(data.normalize(x[bi]))
        loss_sum += F.cross_entropy(logits.float(), y[bi], reduction="sum").double()
        correct += (logits.argmax(1) == y[bi]).sum()
    total_loss, total_correct, n = _all_reduce(
        [loss_sum.item(), float(correct.item()), float(len(idx))], idx.device, world
    )
    return total_loss / n, total_correct / n


def _scores(model: torch.nn.Module, data: ImageData, world: World | None) -> dict[str, float]:
    """val_/test_ loss and accuracy for the splits the data has; NaN for the others."""
    out = {f"{split}_{m}": math.nan for split in SPLITS for m in ("loss", "accuracy")}
    for split, (x, y) in data.evaluation_splits().items():
        out[f"{split}_loss"], out[f"{split}_accuracy"] = evaluate(model, data, x, y, world)
    return out


def _finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def train_run(
    spec: OptimizerSpec,
    lr: float,
    data: ImageData,
    *,
    seed: int,
    epochs: int,
    batch_size: int,
    device: str | torch.device = "cpu",
    world: World | None = None,
    schedule: str = "constant",
    on_epoch: Callable[[dict], None] | None = None,
) -> RunResult:
    """Trains and scores on every evaluation split `data` has; `data` must already be on `device`.
    Seeds the model init with torch.manual_seed(seed) and the shuffling with the sampler's generator
    (seed + epoch). The lr of step t is lr * lr_factor(schedule, t, total steps). A run whose
    parameters stop being finite has diverged: its remaining epochs repeat the scores it has then,
    without training (NaN stays NaN, so this only saves the time)."""
    device = torch.device(device)
    rank, size = (0, 1) if world is None else (world.rank, world.size)
    torch.manual_seed(seed)
    model = build_model(data.shape, data.classes).to(device)
    if size > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    optimizer = spec.build(model.parameters(), lr)
    sampler = DistributedSampler(_Indices(len(data.train_y)), num_replicas=size, rank=rank, seed=seed)
    local_batch = max(1, batch_size // size)
    total_steps = epochs * -(-len(sampler) // local_batch)
    records, steps, elapsed, diverged = [], 0, 0.0, False
    for epoch in range(epochs):
        if diverged:
            record = {**records[-1], "epoch": epoch + 1, "train_loss": math.nan, "train_seconds": 0.0}
            record.update(step_ms=math.nan, eval_seconds=0.0)
            records.append(record)
            if on_epoch is not None:
                on_epoch(record)
            continue
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.long, device=device)
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        step_times = []
        _sync(device)
        started = time.perf_counter()
        for b in range(0, len(order), local_batch):
            bi = order[b : b + local_batch]
            y = data.train_y[bi]
            lr_now = lr * lr_factor(schedule, steps, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr_now
            loss = F.cross_entropy(model(data.normalize(data.train_x[bi])), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            _sync(device)
            t = time.perf_counter()
            optimizer.step()
            _sync(device)
            step_times.append(time.perf_counter() - t)
            loss_sum += loss.detach().double() * len(bi)
            steps += 1
            if not math.isfinite(loss.item()) and not _finite(model):
                diverged = True
                break
        _sync(device)
        train_seconds = time.perf_counter() - started
        if size > 1:
            # DDP broadcasts rank 0's BN statistics before each forward; after the last one every rank has
            # updated its own copy, so broadcast once more: evaluation and saved state then agree.
            for buffer in model.module.buffers():
                dist.broadcast(buffer, 0)
        train_loss_sum, n_trained = _all_reduce([loss_sum.item(), float(len(order))], device, world)
        train_seconds, step_ms = _all_reduce(
            [train_seconds, 1e3 * statistics.median(step_times)], device, world, op=dist.ReduceOp.MAX
        )  # the slowest rank sets the pace
        started = time.perf_counter()
        scores = _scores(model, data, world)
        _sync(device)
        elapsed += train_seconds
        record = {
            "epoch": epoch + 1,
            "steps": steps,
            "lr_now": lr_now,
            "train_loss": math.nan if diverged else train_loss_sum / n_trained,
            **scores,
            "train_seconds": train_seconds,
            "step_ms": step_ms,
            "eval_seconds": time.perf_counter() - started,
            "elapsed_seconds": elapsed,
            "diverged": diverged,
        }
        records.append({c: record[c] for c in EPOCH_COLUMNS})
        if on_epoch is not None:
            on_epoch(records[-1])
    return RunResult(records, model, optimizer)
