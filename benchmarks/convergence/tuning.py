"""The tuning protocol and the sweep that runs it.

Every optimizer gets the same tuning budget over its own hyperparameters (its search space in
benchmarks.optimizer_specs: lr over 1e-5 … 1e2, and momentum, β1, β2, α or AdamW's weight decay):

1. search: `trials` points of a scrambled Sobol sequence in the space, each run from every tuning seed on
   every problem;
2. refine: per problem, `refine_trials` points around the best search trial (lr within ±0.7 decades,
   so the range extends past an edge where the best value sits there), same tuning seeds;
3. final: per problem the best of search and refine (`metrics.select_trial`: the highest Wilson lower
   bound of the success rate, then the fewest median steps with failures as never, then the lowest
   median final loss) on held-out seeds, plus one run from the problem's default start;
and, independently, default: the spec's default hyperparameters on the held-out seeds.

The held-out seeds are never read by the selection. Stages 3 and default share one batch; each stage is
one batch of every optimizer and problem at once.
"""

from __future__ import annotations

import json
import os
import platform
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from benchmarks import optimizer_specs, result_set, search_space
from benchmarks import problems as problem_registry
from benchmarks.metadata import code_version, run_metadata
from benchmarks.optimizer_specs import OptimizerSpec
from benchmarks.problems import DEFAULT_START, Problem
from benchmarks.resume import UnitStore

from .metrics import select_trial
from .runner import BatchResult, Slab, log_record_steps, run_batch

TRIALS = 48
REFINE_TRIALS = 16
REFINE_RADIUS = 0.1  # of each coordinate's unit range: ±0.7 decades of lr
TUNING_SEEDS = 16
EVAL_SEED_OFFSET = 1000
"""Evaluation seeds are EVAL_SEED_OFFSET + 0..seeds-1, disjoint from the tuning seeds 0..tuning_seeds-1."""


def _specs(optimizers) -> list[OptimizerSpec]:
    if optimizers is None or all(isinstance(o, str) for o in optimizers):
        return optimizer_specs.get(optimizers)
    return list(optimizers)


def _problems(problems) -> list[Problem]:
    if problems is None or all(isinstance(p, str) for p in problems):
        return problem_registry.get(problems)
    return list(problems)


def search_trials(spec: OptimizerSpec, n: int) -> list[dict]:
    """The spec's search trials: the same count for every spec, its own scramble."""
    return search_space.sobol_trials(spec.search, n, seed=zlib.crc32(spec.name.encode()))


def trial_slab(spec: OptimizerSpec, trials: dict[str, dict], seeds, **kwargs) -> Slab:
    """A slab running `trials[problem]` (a point of the spec's space) on each problem."""
    return Slab(
        spec,
        {p: t["lr"] for p, t in trials.items()},
        tuple(seeds),
        hypers={p: spec.trial_hyper(t) for p, t in trials.items()},
        **kwargs,
    )


def run_sweep(
    optimizers: Sequence[str | OptimizerSpec] | None = None,
    problems: Sequence[str | Problem] | None = None,
    seeds: int = 50,
    steps: int = 1000,
    out_dir: str | None = None,
    progress: bool = True,
    *,
    trials: int = TRIALS,
    refine_trials: int = REFINE_TRIALS,
    tuning_seeds: int = TUNING_SEEDS,
    dtype: torch.dtype = torch.float64,
    threads: int | None = 1,
    resume: bool = True,
) -> pd.DataFrame:
    """Runs the protocol for every optimizer (names from benchmarks.optimizer_specs, default DEFAULT) on
    every problem (names from benchmarks.problems, default all) and returns the runs DataFrame (one row
    per run, all stages; columns in README.md): `seeds` held-out seeds per reported row, `trials` +
    `refine_trials` tuning trials per optimizer and problem, each on `tuning_seeds` seeds. With out_dir,
    writes runs.csv, curves.csv, trajectories.csv and sweep.json there as one result set, with the
    manifest.json that lists them written last (benchmarks.result_set). threads: torch threads during
    the sweep (None: leave as is); the tensors are small, and on a shared machine extra threads mostly
    wait on each other.

    With out_dir, each stage batch is a unit of work saved under out_dir/units/ once it finishes (see
    benchmarks.resume), keyed by the settings and the code version (a hash of the benchmark and
    optimizer sources and the extension build), and named by that key: a rerun with the same settings
    and code loads the finished stages and runs only the rest, and runs with other settings into the
    same out_dir keep their own units beside these. resume=False discards every saved stage first. Each
    row carries the provenance of the run that computed its stage; runs.attrs["units_loaded"] counts the
    stages loaded from disk."""
    from tqdm.auto import tqdm

    specs, probs = _specs(optimizers), _problems(problems)
    names = [p.name for p in probs]
    tune_seeds = tuple(range(tuning_seeds))
    eval_seeds = tuple(range(EVAL_SEED_OFFSET, EVAL_SEED_OFFSET + seeds))
    record = log_record_steps(steps)
    store = None
    if out_dir is not None:  # each unit's file named by its key too: other settings do not replace it
        store = UnitStore(os.path.join(out_dir, "units"), fresh=not resume, by_key=True)
    settings = _settings(specs, probs, seeds, steps, trials, refine_trials, tuning_seeds, dtype)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # runs converging to 0 must not crawl through denormals
    lr_curve = all(p.is_saddle for p in probs)
    bar = tqdm(
        total=(1 if lr_curve else 3) * steps, desc="convergence sweep", unit="step", disable=not progress
    )
    batches: list[tuple[str, BatchResult, dict]] = []

    def stage(name: str, slabs: list[Slab], chosen: dict | None = None, **kwargs) -> BatchResult:
        """One stage batch: loaded when a finished unit with these settings is on disk, else run."""
        bar.set_postfix_str(name)
        picked = sorted(f"{o}|{p}|{json.dumps(t, sort_keys=True)}" for (o, p), t in (chosen or {}).items())
        key = {**settings, "stage": name, "chosen": picked}

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
        if lr_curve:
            _lr_curve_stages(stage, specs, probs, eval_seeds, record)
        else:
            _tuned_stages(stage, specs, probs, trials, refine_trials, tune_seeds, eval_seeds, record)
        meta = _provenance()
    finally:
        bar.close()
        torch.set_flush_denormal(False)  # torch's default
        torch.set_num_threads(previous_threads)

    runs, curves, trajectories = _combine(batches)
    runs["lr_at_edge"] = (runs.stage == "final") & runs.lr.map(search_space.lr_at_edge)
    seconds = sum(b.seconds for _, b, _ in batches)  # compute time, the same however often it resumed
    if out_dir is not None:
        sweep = {
            **meta,
            "optimizers": [s.name for s in specs],
            "search_spaces": {s.name: [d.name for d in s.search] for s in specs},
            "problems": names,
            "seeds": seeds,
            "tuning_seeds": tuning_seeds,
            "trials": trials,
            "refine_trials": refine_trials,
            "steps": steps,
            "dtype": str(dtype).removeprefix("torch."),
            "seconds": seconds,
            "code_version": settings["code_version"],
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
        with result_set.writing(out_dir) as result:  # its manifest, written last, lists each file
            for name, frame in (("runs", runs), ("curves", curves), ("trajectories", trajectories)):
                result.csv(f"{name}.csv", frame, float_format="%.10g")
            result.text("sweep.json", json.dumps(sweep, indent=1, default=str))
    runs.attrs["seconds"] = seconds
    runs.attrs["units_loaded"] = store.loaded if store is not None else 0
    return runs


def _provenance() -> dict:
    meta = run_metadata()
    meta["git_dirty"] = meta["git_commit"].endswith("-dirty")
    meta["platform"] = platform.platform()
    return meta


def _tuned_stages(stage, specs, probs, trials, refine_trials, tune_seeds, eval_seeds, record) -> None:
    """Search, refine, then final and default (see the module docstring)."""
    names = [p.name for p in probs]
    slabs = [
        trial_slab(s, dict.fromkeys(names, t), tune_seeds, tags={"stage": "search"})
        for s in specs
        for t in search_trials(s, trials)
    ]
    search_runs = stage("search", slabs).runs

    best = _trial_table(select_trial(search_runs), specs)
    slabs = []
    for s in specs:
        around = {
            p: search_space.local_trials(
                s.search,
                best[s.name, p],
                refine_trials,
                zlib.crc32(f"{s.name}|{p}".encode()),
                REFINE_RADIUS,
            )
            for p in names
        }
        slabs += [
            trial_slab(s, {p: around[p][k] for p in names}, tune_seeds, tags={"stage": "refine"})
            for k in range(refine_trials)
        ]
    second = stage("refine", slabs, best)

    chosen = _trial_table(select_trial(pd.concat([search_runs, second.runs], ignore_index=True)), specs)
    slabs = [
        trial_slab(
            s,
            {p: chosen[s.name, p] for p in names},
            (*eval_seeds, DEFAULT_START),
            tags={"stage": "final"},
            record_curves=True,
            record_trajectories=True,
        )
        for s in specs
    ]
    slabs += _default_slabs(specs, probs, eval_seeds, trajectories=False)
    stage("final + default", slabs, chosen, record_steps=record)


SADDLE_LRS = tuple(float(x) for x in np.logspace(-4, 0, 9))
"""The saddle sweep's lrs, two per decade: escape is reported against lr, not at one tuned value."""


def _lr_curve_stages(stage, specs, probs, eval_seeds, record) -> None:
    """Saddles: every optimizer at its default hyperparameters but the lr, at each of SADDLE_LRS on the
    held-out seeds (an lr curve of escape steps), beside its defaults. Tuning one lr per problem would
    measure how long a first step can be, not how a rule escapes (Adam's first step is exactly lr)."""
    slabs = [
        Slab.uniform(s, lr, probs, (*eval_seeds, DEFAULT_START), tags={"stage": "lr-curve"})
        for s in specs
        for lr in SADDLE_LRS
    ]
    slabs += _default_slabs(specs, probs, eval_seeds, trajectories=True)  # no final stage to draw
    stage("lr-curve + default", slabs, record_steps=record)


def _default_slabs(specs, probs, eval_seeds, trajectories: bool) -> list[Slab]:
    """Each spec at its default hyperparameters on the held-out seeds and the default start."""
    return [
        Slab.uniform(
            s,
            s.default_lr,
            probs,
            (*eval_seeds, DEFAULT_START),
            tags={"stage": "default"},
            record_curves=True,
            record_trajectories=trajectories,
        )
        for s in specs
    ]


# What a stored unit's numbers depend on besides its settings: the benchmark code, the optimizers'
# Python and C++ sources (their git state is not enough: an edit need not be committed).
def _settings(specs, probs, seeds, steps, trials, refine_trials, tuning_seeds, dtype) -> dict:
    """Everything a stage's result depends on besides its chosen trials: the key its unit is valid for."""
    import optimizers

    return {
        "optimizers": [
            [s.name, f"{s.cls.__module__}.{s.cls.__qualname__}", s.default_lr, s.hyper_json()] for s in specs
        ],
        "problems": [p.info() for p in probs],
        "seeds": seeds,
        "steps": steps,
        "trials": trials,
        "refine_trials": refine_trials,
        "tuning_seeds": tuning_seeds,
        "saddle_lrs": [repr(x) for x in SADDLE_LRS],
        "dtype": str(dtype),
        "package_version": optimizers.__version__,
        "torch_version": torch.__version__,
        "code_version": code_version(),
    }


def _trial_table(selected: pd.DataFrame, specs: list[OptimizerSpec]) -> dict[tuple[str, str], dict]:
    """(optimizer, problem) -> the selected trial, a point of the spec's search space."""
    by_name = {s.name: s for s in specs}
    table = {}
    for row in selected.itertuples():
        spec = by_name[row.optimizer]
        table[row.optimizer, row.problem] = search_space.point_of(
            spec.search, float(row.lr), json.loads(row.hyperparams)
        )
    return table


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
