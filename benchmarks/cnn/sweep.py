"""The protocol, for every optimizer:

1. **lr search** on `sweep_seeds` seeds (1000, 1001, ...): the grid of selection.py, then `lr_extra`
   adaptive points, every run trained on the training set minus a validation split and scored on that
   split only (its data has no test split). Every optimizer tries the same number of lrs.
2. **held-out seeds** 0 .. seeds-1 at the chosen lr, trained on the same inputs, scored on the
   validation and the test split after every epoch: the reported numbers.

Every run is resumable (store.py): rerunning into the same out_dir trains only what is missing, and the
adaptive lrs are recomputed from the stored sweep runs, so a resumed call tries and picks the same lrs."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict

import pandas as pd
import torch

from benchmarks import optimizer_specs
from benchmarks.metadata import code_version, run_metadata
from benchmarks.optimizer_specs import OptimizerSpec
from benchmarks.result_set import writing

from .budget import Budget, budget_for
from .executor import DataRecipe, Executor, RunTask, default_jobs
from .model import build_model
from .schedules import SCHEDULES
from .selection import at_edge, lr_grid, lr_scores, next_lr, select_lr
from .store import RunKey, load_run

SWEEP_SEED = 1000
"""The first sweep seed; the sweep's seeds are disjoint from the held-out seeds 0 .. seeds-1."""
STAGES = ("sweep", "final")


def row_metadata(device: str) -> dict:
    meta = run_metadata(device)
    meta["git_dirty"] = meta["git_commit"].endswith("-dirty")
    meta["platform"] = platform.platform()
    return meta


class _Protocol:
    """The state of one run_cnn call: what to train, what was trained or loaded, the progress bar."""

    def __init__(self, specs, budget: Budget, data, dataset: str, schedule: str, runs_dir: str, meta, bar):
        self.specs, self.budget, self.data = specs, budget, data
        self.dataset, self.schedule, self.runs_dir = dataset, schedule, runs_dir
        self.meta, self.bar = meta, bar
        self.model = build_model(data["final"].shape, data["final"].classes).description
        # Per stage: the sweep's data has no test split, so its runs do not depend on it.
        self.fingerprints = {stage: d.fingerprint() for stage, d in data.items()}
        self.code = code_version()  # an edited source (or rebuilt extension) never reuses a stored run
        self.frames: dict[RunKey, pd.DataFrame] = {}
        self.ran: list[str] = []
        self.loaded: list[str] = []

    def task(self, stage: str, spec: OptimizerSpec, lr: float, seed: int) -> RunTask:
        data = self.data[stage]
        epochs = self.budget.epochs if stage == "final" else (self.budget.sweep_epochs or self.budget.epochs)
        settings = {
            "dataset": self.dataset,
            "data": self.fingerprints[stage],
            **data.sizes(),
            "epochs": epochs,
            "batch_size": self.budget.batch_size,
            "schedule": self.schedule,
            "hyperparams": spec.hyper_json(),
            "model": self.model,
            "code_version": self.code,
        }
        text = json.dumps(settings, sort_keys=True)
        config = "cfg-" + hashlib.sha1(text.encode()).hexdigest()[:12]  # never parsed as a number
        columns = {
            "stage": stage,
            "dataset": self.dataset,
            "optimizer": spec.name,
            "hyperparams": spec.hyper_json(),
            "lr": lr,
            "seed": seed,
            "schedule": self.schedule,
            **data.sizes(),
            "epochs_budget": epochs,
            "batch_size": self.budget.batch_size,
            "loss_target": self.budget.loss_target,
            "accuracy_target": self.budget.accuracy_target,
            "world_size": 1,
            "model": self.model,
            "data_fingerprint": self.fingerprints[stage],
        }
        return RunTask(
            RunKey(stage, spec.name, lr, seed, config),
            spec,
            epochs,
            self.budget.batch_size,
            self.schedule,
            tuple(columns.items()),
            tuple({**self.meta, "config": config}.items()),
        )

    def execute(self, executor: Executor, tasks: list[RunTask]) -> None:
        """Loads the stored runs among `tasks`, trains the rest (in parallel where the executor can)."""
        pending = []
        for t in tasks:
            stored = load_run(self.runs_dir, t.key, t.epochs)
            if stored is None:
                pending.append(t)
            else:
                self.frames[t.key] = stored
                self.loaded.append(t.key.filename)
                self.bar.update(t.epochs)
        for t, frame in executor.run(pending):
            self.frames[t.key] = frame
            self.ran.append(t.key.filename)
            self.bar.update(t.epochs)
            self.bar.set_postfix_str(f"{t.key.stage} {t.key.optimizer} lr={t.key.lr:g}", refresh=False)

    def stage_rows(self, stage: str) -> pd.DataFrame:
        frames = [f for k, f in self.frames.items() if k.stage == stage]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def sweep_tasks(self, lrs: dict[str, list[float]]) -> list[RunTask]:
        seeds = range(SWEEP_SEED, SWEEP_SEED + self.budget.sweep_seeds)
        return [self.task("sweep", s, lr, seed) for s in self.specs for lr in lrs[s.name] for seed in seeds]


def run_cnn(
    optimizers: Sequence[str] | None,
    seeds: int | None,
    epochs: int | None,
    dataset: str,
    data_dir: str | None,
    out_dir: str,
    device: str = "cpu",
    quick: bool = False,
    progress: bool = True,
    *,
    schedule: str = "constant",
    threads: int | None = None,
    jobs: int | None = None,
) -> pd.DataFrame:
    """Runs the protocol for every optimizer (names from benchmarks.optimizer_specs; None: DEFAULT) and
    returns every epoch of every run (sweep and final; columns in README.md). seeds, epochs: override
    the dataset's budget (None: keep it). Writes out_dir/runs/ (one CSV per run, reused on rerun),
    out_dir/cnn_epochs.csv (all rows of this call) and out_dir/cnn_run.json, as one result set with
    out_dir/manifest.json (benchmarks/result_set.py). Raises DataNotFoundError
    or DataFileError before any training if the dataset's files are missing or damaged.

    jobs: runs at once in worker processes (None: the budget's, else one per core); threads: torch
    threads per run (None: the budget's, else the cores shared among the jobs).
    attrs of the result: seconds (wall time of this call), ran and loaded (run files trained or reused)."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
    specs = list({s.name: s for s in optimizer_specs.get(optimizers)}.values())  # each name once
    budget = budget_for(dataset, quick, epochs, seeds)
    recipe = DataRecipe(dataset, data_dir, budget.max_train, budget.max_test, device)
    data = recipe.build()
    jobs = jobs or default_jobs(budget.jobs, device)
    threads = threads or budget.threads or max(1, (os.cpu_count() or 1) // jobs)
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    meta = row_metadata(device) | {"threads": threads, "jobs": jobs}
    runs_dir = os.path.join(out_dir, "runs")
    grids = {s.name: lr_grid(s, budget.lr_points) for s in specs}
    sweep_epochs = budget.sweep_epochs or budget.epochs
    total = len(specs) * (budget.tuning_runs * sweep_epochs + budget.seeds * budget.epochs)
    bar = tqdm(total=total, desc=f"cnn {dataset}", unit="epoch", disable=not progress, smoothing=0.05)
    p = _Protocol(specs, budget, data, dataset, schedule, runs_dir, meta, bar)
    tried = {name: list(g) for name, g in grids.items()}
    try:
        with Executor(recipe, data, runs_dir, jobs, threads) as executor:
            p.execute(executor, p.sweep_tasks(grids))
            for _ in range(budget.lr_extra):
                scores = lr_scores(p.stage_rows("sweep"), budget.last_epochs)
                extra = {}
                for s in specs:
                    part = scores[scores.optimizer == s.name]
                    extra[s.name] = [next_lr(dict(zip(part.lr.astype(float), part.score.astype(float))))]
                    tried[s.name] += extra[s.name]
                p.execute(executor, p.sweep_tasks(extra))
            scores = lr_scores(p.stage_rows("sweep"), budget.last_epochs)
            chosen = select_lr(scores)
            finals = [p.task("final", s, chosen[s.name], seed) for s in specs for seed in range(budget.seeds)]
            p.execute(executor, finals)
    finally:
        bar.close()

    order = {s.name: i for i, s in enumerate(specs)}
    rows = pd.concat([p.stage_rows(stage) for stage in STAGES], ignore_index=True)
    rows = rows.sort_values(
        ["stage", "optimizer", "lr", "seed", "epoch"],
        key=lambda c: (
            c.map(order) if c.name == "optimizer" else (c.map(STAGES.index) if c.name == "stage" else c)
        ),
        kind="stable",
    ).reset_index(drop=True)
    # How the lr was chosen, for the report (not a setting of any run: stored runs do not carry it).
    rows = rows.assign(selection_epochs=budget.last_epochs, lr_extra=budget.lr_extra)
    seconds = time.perf_counter() - started
    summary = {
        **meta,
        "dataset": dataset,
        "optimizers": [s.name for s in specs],
        "quick": quick,
        "schedule": schedule,
        "budget": asdict(budget),
        "lrs_tried": tried,
        "chosen_lr": chosen,
        "chosen_at_grid_edge": at_edge(scores, chosen),
        "seconds": seconds,
        "runs_trained": len(p.ran),
        "runs_loaded": len(p.loaded),
    }
    with writing(out_dir) as result:  # the two files as one set, with its manifest written last
        result.csv("cnn_epochs.csv", rows)
        result.text("cnn_run.json", json.dumps(summary, indent=1, default=str))
    rows.attrs.update(seconds=seconds, ran=p.ran, loaded=p.loaded)
    return rows
