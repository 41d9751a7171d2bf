"""Scores computed from the runs DataFrame alone (see README.md for its columns): the lr-selection rule
of the tuning protocol and the per-(optimizer, problem) summaries the tables print."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

KEYS = ["optimizer", "problem"]


def steps_or_inf(runs: pd.DataFrame) -> pd.Series:
    """Steps to threshold, +inf for runs that did not succeed (so a median over seeds is finite only when
    at least half of them succeeded)."""
    return runs.steps_to_threshold.where(runs.success, np.inf).astype(float)


def loss_or_inf(runs: pd.DataFrame) -> pd.Series:
    """Final loss, +inf for diverged runs and non-finite values."""
    loss = runs.final_loss.where(~runs.diverged, np.inf).astype(float)
    return loss.where(np.isfinite(loss), np.inf)


def lr_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (optimizer, problem, lr): median steps to threshold over seeds (failures = inf), median
    final loss, success rate."""
    frame = runs.assign(_steps=steps_or_inf(runs), _loss=loss_or_inf(runs))
    return (
        frame.groupby([*KEYS, "lr"], sort=False)
        .agg(
            median_steps=("_steps", "median"),
            median_loss=("_loss", "median"),
            success_rate=("success", "mean"),
            runs=("success", "size"),
        )
        .reset_index()
    )


def select_lr(runs: pd.DataFrame) -> pd.DataFrame:
    """The tuning rule: per (optimizer, problem) the lr with the fewest median steps to threshold; ties
    broken by the lower median final loss, then by the smaller lr."""
    scores = lr_scores(runs).sort_values([*KEYS, "median_steps", "median_loss", "lr"], kind="stable")
    return scores.groupby(KEYS, sort=False).head(1).reset_index(drop=True)


def _quantiles(values: pd.Series) -> tuple[float, float, float]:
    values = values.dropna()
    if values.empty:
        return (np.nan, np.nan, np.nan)
    q = np.quantile(values.to_numpy(dtype=float), [0.5, 0.25, 0.75])
    return (float(q[0]), float(q[1]), float(q[2]))


def summarize(runs: pd.DataFrame, by: Sequence[str] = KEYS) -> pd.DataFrame:
    """Per group: lr, runs, success and divergence rates, steps to threshold median and IQR (over the
    successful runs), median final gap f - f* (final loss where f* is unknown), median final distance to
    the nearest minimizer, and for saddles escape rate and escape steps median and IQR."""
    rows = []
    for key, group in runs.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        steps = _quantiles(group.steps_to_threshold[group.success])
        gap = group.final_gap.where(group.final_gap.notna(), group.final_loss)
        escape = group.escaped.dropna()
        esc_steps = _quantiles(group.steps_to_escape)
        lrs = group.lr.unique()
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "lr": float(lrs[0]) if len(lrs) == 1 else float(np.median(group.lr)),
                "runs": len(group),
                "success_rate": float(group.success.mean()),
                "diverged_rate": float(group.diverged.mean()),
                "steps_median": steps[0],
                "steps_q25": steps[1],
                "steps_q75": steps[2],
                "final_gap_median": float(gap[~group.diverged].median())
                if (~group.diverged).any()
                else np.nan,
                "final_dist_median": float(group.final_dist[~group.diverged].median())
                if (~group.diverged).any()
                else np.nan,
                "escape_rate": float(escape.mean()) if len(escape) else np.nan,
                "escape_steps_median": esc_steps[0],
                "escape_steps_q25": esc_steps[1],
                "escape_steps_q75": esc_steps[2],
            }
        )
    return pd.DataFrame(rows)
