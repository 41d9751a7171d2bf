"""Scores computed from the runs DataFrame alone (see README.md for its columns): the lr-selection rule
of the tuning protocol and the per-(optimizer, problem) summaries the tables print."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmarks.stats import bootstrap_median_ci, median_or_never, performance_profile, sign_test, wilson

KEYS = ["optimizer", "problem"]


def steps_or_inf(runs: pd.DataFrame) -> pd.Series:
    """Steps to threshold, +inf for runs that did not succeed (so a median over seeds is finite only when
    at least half of them succeeded)."""
    return runs.steps_to_threshold.where(runs.success, np.inf).astype(float)


def loss_or_inf(runs: pd.DataFrame) -> pd.Series:
    """Final loss, +inf for diverged runs and non-finite values."""
    loss = runs.final_loss.where(~runs.diverged, np.inf).astype(float)
    return loss.where(np.isfinite(loss), np.inf)


TRIAL = ["lr", "hyperparams"]


def trial_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (optimizer, problem, trial): successes, runs, the Wilson 95% lower bound of the success
    rate, median steps to threshold (failures = inf) and median final loss, over the tuning seeds."""
    frame = runs.assign(_steps=steps_or_inf(runs), _loss=loss_or_inf(runs))
    scores = (
        frame.groupby([*KEYS, *TRIAL], sort=False)
        .agg(
            successes=("success", "sum"),
            runs=("success", "size"),
            median_steps=("_steps", "median"),
            median_loss=("_loss", "median"),
        )
        .reset_index()
    )
    scores["success_lower"] = [wilson(int(k), int(n))[0] for k, n in zip(scores.successes, scores.runs)]
    return scores


def select_trial(runs: pd.DataFrame) -> pd.DataFrame:
    """The tuning rule, robust to trials at the edge of divergence: per (optimizer, problem) the trial
    with the highest Wilson lower bound of its success rate, then the fewest median steps to threshold
    (failures = never), then the lowest median final loss, then the smaller lr."""
    scores = trial_scores(runs)
    scores = scores.assign(_neg_lower=-scores.success_lower).sort_values(
        [*KEYS, "_neg_lower", "median_steps", "median_loss", "lr"], kind="stable"
    )
    return scores.groupby(KEYS, sort=False).head(1).drop(columns="_neg_lower").reset_index(drop=True)


def headline(runs: pd.DataFrame, by: Sequence[str] = KEYS) -> pd.DataFrame:
    """Per group (over its seeds): n; successes, the success rate and its Wilson 95% interval; the median
    steps to threshold over all n runs with failures as never (inf when half or more failed) and its
    bootstrap 95% interval; the divergence rate; the tuned lr and hyperparameters (and whether the lr
    sits at an edge of the search range)."""
    rows = []
    for key, group in runs.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        steps = steps_or_inf(group).to_numpy()
        k, n = int(group.success.sum()), len(group)
        lo, hi = wilson(k, n)
        steps_lo, steps_hi = bootstrap_median_ci(steps)
        escape = group.escaped.dropna()
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "lr": float(group.lr.iloc[0]),
                "hyperparams": group.hyperparams.iloc[0],
                "lr_at_edge": bool(group.get("lr_at_edge", pd.Series([False])).iloc[0]),
                "runs": n,
                "successes": k,
                "success_rate": k / n,
                "success_lo": lo,
                "success_hi": hi,
                "steps_median": median_or_never(steps),
                "steps_lo": steps_lo,
                "steps_hi": steps_hi,
                "diverged_rate": float(group.diverged.mean()),
                "escape_rate": float(escape.mean()) if len(escape) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def profile(runs: pd.DataFrame, taus: Sequence[float]) -> dict[str, list[float]]:
    """Performance profiles over the problems of `runs`: each optimizer's cost on a problem is its median
    steps to threshold over the seeds, failures as never (benchmarks.stats.performance_profile)."""
    costs = runs.assign(_steps=steps_or_inf(runs)).groupby(KEYS, sort=False)._steps.apply(median_or_never)
    table = costs.unstack("problem")
    return performance_profile({opt: table.loc[opt].tolist() for opt in table.index}, taus)


def paired_best(runs: pd.DataFrame) -> pd.DataFrame:
    """Per problem: the two optimizers with the fewest median steps (failures as never; ties by success
    rate) and the sign test of their per-seed steps, paired by seed (the same start for both)."""
    rows = []
    for problem, part in runs.groupby("problem", sort=False):
        part = part.assign(_steps=steps_or_inf(part))
        rank = part.groupby("optimizer").agg(m=("_steps", median_or_never), s=("success", "mean"))
        rank = rank.assign(neg_s=-rank.s).sort_values(["m", "neg_s"], kind="stable")
        if len(rank) < 2:
            continue
        if not np.isfinite(rank.m.iloc[0]):
            continue  # no optimizer reached the threshold on most seeds: nothing to rank
        first, second = rank.index[0], rank.index[1]
        a = part[part.optimizer == first].set_index("seed")._steps
        b = part[part.optimizer == second].set_index("seed")._steps.reindex(a.index)
        wins, losses, p = sign_test(a.to_numpy(), b.to_numpy())
        rows.append(
            {"problem": problem, "best": first, "runner_up": second, "wins": wins, "losses": losses, "p": p}
        )
    return pd.DataFrame(rows)


def escape_or_inf(runs: pd.DataFrame) -> pd.Series:
    """Steps to escape a saddle, +inf for runs that did not escape (a run that grew along a direction of
    positive curvature is diverged, so never escaped)."""
    escaped = runs.escaped.fillna(0).astype(bool) & ~runs.diverged
    return runs.steps_to_escape.where(escaped, np.inf).astype(float)


def escape_curve(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (optimizer, problem, lr): n, the escape rate and its Wilson 95% interval, the median steps to
    escape with failures as never and its bootstrap 95% interval."""
    rows = []
    for (opt, problem, lr), group in runs.groupby([*KEYS, "lr"], sort=False):
        steps = escape_or_inf(group).to_numpy()
        k, n = int(np.isfinite(steps).sum()), len(group)
        lo, hi = bootstrap_median_ci(steps)
        rows.append(
            {
                "optimizer": opt,
                "problem": problem,
                "lr": float(lr),
                "runs": n,
                "escape_rate": k / n,
                "escape_lo": wilson(k, n)[0],
                "escape_hi": wilson(k, n)[1],
                "steps_median": median_or_never(steps),
                "steps_lo": lo,
                "steps_hi": hi,
                "diverged_rate": float(group.diverged.mean()),
            }
        )
    return pd.DataFrame(rows)
