"""The tuning protocol and the sweep that runs it.

For every optimizer spec, on every problem:

1. grid: lr on a log grid (default 13 points, 1e-4 to 1), one run per tuning seed;
2. refine: lr_best x 10^(k/9), k = -2, -1, 1, 2 around the best grid lr (between it and its grid
   neighbours), same tuning seeds; the lr is chosen over grid and refine runs by `metrics.select_lr`
   (median steps to threshold over seeds, ties broken by median final loss);
3. final: the chosen lr on held-out evaluation seeds (the numbers the tables report), plus one run from
   the problem's default start (for the trajectory plots);
and, independently, default: the spec's default hyperparameters (its default lr) on the evaluation seeds.

Stages 1 and default share one batch; each stage is one batch of every optimizer and problem at once.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from benchmarks import optimizer_specs
from benchmarks import problems as problem_registry
from benchmarks.metadata import run_metadata
from benchmarks.optimizer_specs import OptimizerSpec
from benchmarks.problems import DEFAULT_START, Problem
from benchmarks.resume import UnitStore, atomic_write, write_csv

from .metrics import select_lr
from .runner import BatchResult, Slab, log_record_steps, run_batch

GRID = tuple(float(x) for x in np.logspace(-4, 0, 13))
REFINE = tuple(float(10 ** (k / 9)) for k in (-2, -1, 1, 2))
EVAL_SEED_OFFSET = 1000
"""Evaluation seeds are EVAL_SEED_OFFSET + 0..seeds-1, disjoint from the tuning seeds 0..seeds-1."""


def _specs(optimizers) -> list[OptimizerSpec]:
    if optimizers is None or all(isinstance(o, str) for o in optimizers):
        return optimizer_specs.get(optimizers)
    return list(optimizers)


def _problems(problems) -> list[Problem]:
    if problems is None or all(isinstance(p, str) for p in problems):
        return problem_registry.get(problems)
    return list(problems)


def run_sweep(
    optimizers: Sequence[str | OptimizerSpec] | None = None,
    problems: Sequence[str | Problem] | None = None,
    seeds: int = 10,
    steps: int = 1000,
    out_dir: str | None = None,
    progress: bool = True,
    *,
    grid: Sequence[float] = GRID,
    refine: Sequence[float] = REFINE,
    dtype: torch.dtype = torch.float64,
    threads: int | None = 1,
    resume: bool = True,
) -> pd.DataFrame:
    """Runs the protocol for every optimizer (names from benchmarks.optimizer_specs, default DEFAULT) on
    every problem (names from benchmarks.problems, default all) and returns the runs DataFrame (one row
    per run, all stages; columns in README.md). With out_dir, writes runs.csv, curves.csv,
    trajectories.csv and sweep.json there. threads: torch threads during the sweep (None: leave as is);
    the tensors are small, and on a shared machine extra threads mostly wait on each other.

    With out_dir, each stage batch is a unit of work saved under out_dir/units/ once it finishes (see
    benchmarks.resume): a rerun with the same settings loads the finished stages and runs only the rest,
    so an interrupted sweep resumes where it stopped. resume=False discards saved stages first. Each row
    carries the provenance of the run that computed its stage; runs.attrs["units_loaded"] counts the
    stages loaded from disk."""
    from tqdm.auto import tqdm

    specs, probs = _specs(optimizers), _problems(problems)
    tune_seeds = tuple(range(seeds))
    eval_seeds = tuple(range(EVAL_SEED_OFFSET, EVAL_SEED_OFFSET + seeds))
    record = log_record_steps(steps)
    store = UnitStore(os.path.join(out_dir, "units"), fresh=not resume) if out_dir is not None else None
    settings = _settings(specs, probs, seeds, steps, grid, refine, dtype)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # runs converging to 0 must not crawl through denormals
    bar = tqdm(total=3 * steps, desc="convergence sweep", unit="step", disable=not progress)
    batches: list[tuple[str, BatchResult, dict]] = []

    def stage(name: str, slabs: list[Slab], lrs: dict | None = None, **kwargs) -> BatchResult:
        """One stage batch: loaded when a finished unit with these settings is on disk, else run."""
        bar.set_postfix_str(name)
        chosen_lrs = sorted(f"{o}|{p}|{lr!r}" for (o, p), lr in (lrs or {}).items())
        key = {**settings, "stage": name, "lrs": chosen_lrs}

        def compute() -> tuple[BatchResult, dict]:
            batch = run_batch(probs, slabs, steps, dtype=dtype, progress=bar, **kwargs)
            return batch, _provenance()  # records the threads the sweep ran with

        if store is None:
            batch, meta = compute()
        else:
            (batch, meta), loaded = store.get_or_compute(
                f"{len(batches) + 1}-{name.replace(' ', '')}", key, compute
            )
            if loaded:
                bar.update(steps)
                bar.set_postfix_str(f"{name} (finished before, loaded)")
        batches.append((name, batch, meta))
        return batch

    try:
        slabs = [Slab.uniform(s, lr, probs, tune_seeds, tags={"stage": "grid"}) for s in specs for lr in grid]
        slabs += [
            Slab.uniform(s, s.default_lr, probs, eval_seeds, tags={"stage": "default"}, record_curves=True)
            for s in specs
        ]
        first = stage("grid + default", slabs, record_steps=record)
        grid_runs = first.runs[first.runs.stage == "grid"]

        best = _lr_table(select_lr(grid_runs))
        slabs = [
            Slab(s, {p.name: best[s.name, p.name] * f for p in probs}, tune_seeds, tags={"stage": "refine"})
            for s in specs
            for f in refine
        ]
        second = stage("refine", slabs, best)

        chosen = _lr_table(select_lr(pd.concat([grid_runs, second.runs], ignore_index=True)))
        slabs = [
            Slab(
                s,
                {p.name: chosen[s.name, p.name] for p in probs},
                (*eval_seeds, DEFAULT_START),
                tags={"stage": "final"},
                record_curves=True,
                record_trajectories=True,
            )
            for s in specs
        ]
        stage("final", slabs, chosen, record_steps=record)
        meta = _provenance()
    finally:
        bar.close()
        torch.set_flush_denormal(False)  # torch's default
        torch.set_num_threads(previous_threads)

    runs, curves, trajectories = _combine(batches)
    seconds = sum(b.seconds for _, b, _ in batches)  # compute time, the same however often it resumed
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        for name, frame in (("runs", runs), ("curves", curves), ("trajectories", trajectories)):
            write_csv(frame, os.path.join(out_dir, f"{name}.csv"), float_format="%.10g")
        sweep = {
            **meta,
            "optimizers": [s.name for s in specs],
            "problems": [p.name for p in probs],
            "seeds": seeds,
            "steps": steps,
            "grid": list(grid),
            "refine": list(refine),
            "dtype": str(dtype).removeprefix("torch."),
            "seconds": seconds,
            "batches": {
                name: {
                    "seconds": b.seconds,
                    "steps_run": b.steps_run,
                    "runs": len(b.runs),
                    "by": m["command"],
                }
                for name, b, m in batches
            },
            "problem_info": [p.info() for p in probs],
        }
        text = json.dumps(sweep, indent=1, default=str).encode()
        atomic_write(os.path.join(out_dir, "sweep.json"), lambda f: f.write(text))
    runs.attrs["seconds"] = seconds
    runs.attrs["units_loaded"] = store.loaded if store is not None else 0
    return runs


def _provenance() -> dict:
    meta = run_metadata()
    meta["git_dirty"] = meta["git_commit"].endswith("-dirty")
    meta["platform"] = platform.platform()
    return meta


def _settings(specs, probs, seeds, steps, grid, refine, dtype) -> dict:
    """Everything a stage's result depends on besides its lrs: the key its saved unit is valid for."""
    import optimizers

    return {
        "optimizers": [
            [s.name, f"{s.cls.__module__}.{s.cls.__qualname__}", s.default_lr, s.hyper_json()] for s in specs
        ],
        "problems": [p.info() for p in probs],
        "seeds": seeds,
        "steps": steps,
        "grid": [repr(float(x)) for x in grid],
        "refine": [repr(float(x)) for x in refine],
        "dtype": str(dtype),
        "package_version": optimizers.__version__,
        "torch_version": torch.__version__,
    }


def _lr_table(selected: pd.DataFrame) -> dict[tuple[str, str], float]:
    return {(row.optimizer, row.problem): float(row.lr) for row in selected.itertuples()}


def _combine(
    batches: list[tuple[str, BatchResult, dict]],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Concatenates the batches, giving every run a sweep-wide run_id (curves and trajectories too) and
    the provenance columns of the run that computed its batch."""
    runs, curves, trajectories = [], [], []
    offset = 0
    for _, batch, meta in batches:
        runs.append(batch.runs.assign(run_id=batch.runs.run + offset, **meta))
        curves.append(batch.curves.assign(run_id=batch.curves.run + offset))
        trajectories.append(batch.trajectories.assign(run_id=batch.trajectories.run + offset))
        offset += len(batch.runs)
    runs = pd.concat(runs, ignore_index=True).drop(columns="run")
    runs.insert(0, "run_id", runs.pop("run_id"))
    stage = runs.set_index("run_id").stage
    curves = pd.concat(curves, ignore_index=True).drop(columns="run")[["run_id", "step", "loss"]]
    trajectories = pd.concat(trajectories, ignore_index=True).drop(columns="run")[
        ["run_id", "step", "x", "y"]
    ]
    # Keep the curves of the reported stages only (grid and refine curves are not recorded).
    curves = curves[curves.run_id.map(stage).isin(["final", "default"])].reset_index(drop=True)
    return runs, curves, trajectories
