"""The protocol: for every optimizer, a small log-spaced lr sweep (one seed, a few epochs, trained on the
training set minus a validation split and scored on that split), then several seeds at the chosen lr
(trained on the whole training set, evaluated on the test set: the reported numbers).

The lr is chosen by the lowest final validation loss (a diverged run's NaN counts as +inf), ties broken
by the higher final validation accuracy, then by the smaller lr. The loss, not the accuracy, decides:
on digits' 287 validation images most good lrs reach 100% accuracy, and the loss still tells them apart.

Every run is resumable (store.py): rerunning into the same out_dir trains only what is missing."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import pandas as pd
import torch

from benchmarks import optimizer_specs
from benchmarks.metadata import run_metadata
from benchmarks.optimizer_specs import OptimizerSpec
from benchmarks.resume import write_csv
from optimizers import Momentum

from .data import DATASETS, ImageData, load_dataset
from .model import build_model
from .store import RunKey, resumable_run
from .train import train_run

SWEEP_SEED = 1000
"""The sweep's one seed, disjoint from the reported seeds 0..seeds-1."""
VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class Budget:
    """Per-dataset settings of the protocol."""

    epochs: int  # reported runs
    sweep_epochs: int
    batch_size: int
    target_accuracy: float  # the tables report epochs and seconds to reach it
    lr_points: int = 5  # half a decade apart around the optimizer's typical lr
    max_train: int | None = None  # caps on the training and test images (quick runs)
    max_eval: int | None = None
    threads: int | None = None  # torch threads (None: every core)


BUDGETS: dict[str, Budget] = {
    # Tiny tensors: a second thread mostly waits, and one thread keeps timings steady on a shared machine.
    # Every optimizer passes 95% within an epoch or two; 98% still separates them.
    "digits": Budget(epochs=20, sweep_epochs=6, batch_size=32, target_accuracy=0.98, threads=1),
    "mnist": Budget(epochs=8, sweep_epochs=2, batch_size=128, target_accuracy=0.99),
    "fashion-mnist": Budget(epochs=10, sweep_epochs=2, batch_size=128, target_accuracy=0.90),
    "cifar10": Budget(epochs=20, sweep_epochs=3, batch_size=128, target_accuracy=0.70),
}


def budget_for(dataset: str, quick: bool = False, epochs: int | None = None) -> Budget:
    """The dataset's budget; quick: 3 lrs, few epochs, at most 5,000 training and 1,000 test images.
    epochs overrides the reported runs' epochs (the sweep keeps its own, capped by it)."""
    if dataset not in BUDGETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {list(DATASETS)}")
    budget = BUDGETS[dataset]
    if quick:
        budget = replace(budget, epochs=3, sweep_epochs=2, lr_points=3, max_train=5000, max_eval=1000)
    if epochs is not None:
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        budget = replace(budget, epochs=epochs, sweep_epochs=min(budget.sweep_epochs, epochs))
    return budget


def typical_lr(spec: OptimizerSpec) -> float:
    """The centre of an optimizer's sweep: where such rules usually work for a small CNN with BN."""
    if issubclass(spec.cls, (Momentum, torch.optim.SGD)):
        return 0.1 if spec.hyper.get("momentum", 0.0) == 0 else 0.0316
    return 0.00316  # RMSProp and the Adam family


def lr_grid(spec: OptimizerSpec, points: int = 5) -> list[float]:
    """`points` lrs half a decade apart (1e-3, 3.16e-3, 1e-2, ...), centred on typical_lr: 5 points span
    two decades."""
    centre = round(2 * math.log10(typical_lr(spec)))  # in half-decades
    first = centre - (points - 1) // 2
    return [float(f"{10 ** ((first + k) / 2):.3g}") for k in range(points)]


def select_lr(sweep: pd.DataFrame) -> dict[str, float]:
    """optimizer -> chosen lr, from the sweep's rows: lowest final validation loss (NaN counts as +inf),
    then the best final validation accuracy, then the smaller lr."""
    last = sweep.loc[sweep.groupby(["optimizer", "lr"]).epoch.idxmax()]
    last = last.assign(loss_key=last.eval_loss.fillna(math.inf))
    ranked = last.sort_values(
        ["loss_key", "eval_accuracy", "lr"], ascending=[True, False, True], kind="stable"
    )
    return {opt: float(part.lr.iloc[0]) for opt, part in ranked.groupby("optimizer", sort=False)}


def row_metadata(device: str) -> dict:
    meta = run_metadata(device)
    meta["git_dirty"] = meta["git_commit"].endswith("-dirty")
    meta["platform"] = platform.platform()
    return meta


def _run_frame(records: list[dict], columns: dict) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    for i, (name, value) in enumerate(columns.items()):
        frame.insert(i, name, value)
    return frame


def run_cnn(
    optimizers: Sequence[str] | None,
    seeds: int,
    epochs: int | None,
    dataset: str,
    data_dir: str | None,
    out_dir: str,
    device: str = "cpu",
    quick: bool = False,
    progress: bool = True,
    *,
    threads: int | None = None,
) -> pd.DataFrame:
    """Runs the protocol for every optimizer (names from benchmarks.optimizer_specs; None: DEFAULT) and
    returns every epoch of every run (sweep and final; columns in README.md). Writes out_dir/runs/ (one
    CSV per run, reused on rerun), out_dir/cnn_epochs.csv (all rows of this call) and out_dir/cnn_run.json.
    Raises DataNotFoundError before any training if the dataset's files are missing.

    attrs of the result: seconds (wall time of this call), ran and loaded (run files trained now or reused).
    threads: torch threads while it runs (None: the dataset's budget; restored afterwards)."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    specs = list({s.name: s for s in optimizer_specs.get(optimizers)}.values())  # each name once
    budget = budget_for(dataset, quick, epochs)
    data = load_dataset(dataset, data_dir).subset(budget.max_train, budget.max_eval)
    tuning = data.validation_split(VALIDATION_FRACTION)
    data, tuning = data.to(device), tuning.to(device)

    previous_threads = torch.get_num_threads()
    threads = threads or budget.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    meta = row_metadata(device)  # after set_num_threads: records the threads the runs use
    runs_dir = os.path.join(out_dir, "runs")
    grids = {s.name: lr_grid(s, budget.lr_points) for s in specs}
    total = sum(len(g) for g in grids.values()) * budget.sweep_epochs + len(specs) * seeds * budget.epochs
    bar = tqdm(total=total, desc=f"cnn {dataset}", unit="epoch", disable=not progress)
    ran, loaded, frames = [], [], []
    model = build_model(data.shape, data.classes).description

    def execute(stage: str, spec: OptimizerSpec, lr: float, seed: int, split: ImageData, n_epochs: int):
        key = RunKey(stage, spec.name, lr, seed)
        # What a stored run must match to be reused; stored as a short hash (the columns hold the values).
        config = json.dumps(
            {
                "dataset": dataset,
                "eval_split": split.eval_split,
                "train_size": len(split.train_y),
                "eval_size": len(split.eval_y),
                "epochs": n_epochs,
                "batch_size": budget.batch_size,
                "hyperparams": spec.hyper_json(),
                "model": model,
            },
            sort_keys=True,
        )
        config = "cfg-" + hashlib.sha1(config.encode()).hexdigest()[:12]  # never parsed as a number
        columns = {
            "stage": stage,
            "dataset": dataset,
            "optimizer": spec.name,
            "hyperparams": spec.hyper_json(),
            "lr": lr,
            "seed": seed,
            "eval_split": split.eval_split,
            "train_size": len(split.train_y),
            "eval_size": len(split.eval_y),
            "epochs_budget": n_epochs,
            "batch_size": budget.batch_size,
            "target_accuracy": budget.target_accuracy,
            "world_size": 1,
            "model": model,
        }
        bar.set_postfix_str(f"{stage} {spec.name} lr={lr:g} seed={seed}")

        def run() -> pd.DataFrame:
            result = train_run(
                spec,
                lr,
                split,
                seed=seed,
                epochs=n_epochs,
                batch_size=budget.batch_size,
                device=device,
                on_epoch=lambda _: bar.update(1),
            )
            return _run_frame(result.records, columns).assign(**meta, config=config)

        frame, trained = resumable_run(runs_dir, key, config, n_epochs, run)
        (ran if trained else loaded).append(key.filename)
        if not trained:
            bar.update(n_epochs)
        frames.append(frame)
        return frame

    try:
        sweep = [
            execute("sweep", s, lr, SWEEP_SEED, tuning, budget.sweep_epochs)
            for s in specs
            for lr in grids[s.name]
        ]
        chosen = select_lr(pd.concat(sweep, ignore_index=True))
        for s in specs:
            for seed in range(seeds):
                execute("final", s, chosen[s.name], seed, data, budget.epochs)
    finally:
        bar.close()
        torch.set_num_threads(previous_threads)

    rows = pd.concat(frames, ignore_index=True)
    seconds = time.perf_counter() - started
    write_csv(rows, os.path.join(out_dir, "cnn_epochs.csv"))
    summary = {
        **meta,
        "dataset": dataset,
        "optimizers": [s.name for s in specs],
        "seeds": seeds,
        "quick": quick,
        "budget": asdict(budget),
        "lr_grids": grids,
        "chosen_lr": chosen,
        "seconds": seconds,
        "runs_trained": len(ran),
        "runs_loaded": len(loaded),
    }
    with open(os.path.join(out_dir, "cnn_run.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    rows.attrs.update(seconds=seconds, ran=ran, loaded=loaded)
    return rows
