"""The lr search: a grid half a decade apart around the rule's typical lr, then a fixed number of
adaptive points (every optimizer tries the same number of lrs), and the choice. Everything here reads
the sweep's validation columns only: the sweep's runs never see the test split (sweep.py gives them data
without it), and nothing here looks at a test column.

A run's score is its mean validation loss over the last few epochs (a diverged run's NaN counts as
+inf); an lr's score is the mean over the sweep seeds (+inf if any seed diverged). The chosen lr has the
lowest score, ties going to the smaller lr."""

from __future__ import annotations

import math

import pandas as pd

from benchmarks.optimizer_specs import OptimizerSpec

STEPS_PER_DECADE = 8
"""Every lr tried is 10**(k/8) rounded to 3 digits: the grid is every 4th point of this lattice, an
extension adds 4 more, a refinement halves the gap to a neighbour (a quarter, then an eighth decade)."""


def _lr(k: int) -> float:
    return float(f"{10 ** (k / STEPS_PER_DECADE):.3g}")


def _step(lr: float) -> int:
    return round(STEPS_PER_DECADE * math.log10(lr))


def lr_grid(spec: OptimizerSpec, points: int = 5) -> list[float]:
    """`points` lrs half a decade apart (1e-3, 3.16e-3, 1e-2, ...) centred on the spec's cnn_lr."""
    half = STEPS_PER_DECADE // 2
    first = _step(spec.cnn_lr) - half * ((points - 1) // 2)
    return [_lr(first + half * k) for k in range(points)]


def run_scores(sweep: pd.DataFrame, last_epochs: int) -> pd.DataFrame:
    """One row per sweep run (optimizer, lr, seed): its score, the mean validation loss of its last
    `last_epochs` epochs (+inf if any is NaN), and its final validation accuracy."""
    rows = []
    for (opt, lr, seed), run in sweep.groupby(["optimizer", "lr", "seed"], sort=False):
        tail = run.sort_values("epoch").tail(last_epochs)
        loss = tail.val_loss.to_numpy(dtype=float)
        score = float(loss.mean()) if len(loss) and bool(pd.notna(loss).all()) else math.inf
        rows.append(
            {
                "optimizer": opt,
                "lr": float(lr),
                "seed": int(seed),
                "score": score if math.isfinite(score) else math.inf,
                "val_accuracy": float(tail.val_accuracy.iloc[-1]),
            }
        )
    return pd.DataFrame(rows, columns=["optimizer", "lr", "seed", "score", "val_accuracy"])


def lr_scores(sweep: pd.DataFrame, last_epochs: int) -> pd.DataFrame:
    """One row per (optimizer, lr): score (mean over seeds), its lowest and highest seed, the seeds, and
    the mean final validation accuracy."""
    runs = run_scores(sweep, last_epochs)
    return (
        runs.groupby(["optimizer", "lr"], sort=False)
        .agg(
            score=("score", "mean"),
            score_min=("score", "min"),
            score_max=("score", "max"),
            seeds=("seed", "nunique"),
            val_accuracy=("val_accuracy", "mean"),
        )
        .reset_index()
    )


def _best(scores: dict[float, float]) -> float:
    return min(sorted(scores), key=lambda lr: scores[lr])  # stable: ties go to the smaller lr


def next_lr(scores: dict[float, float]) -> float:
    """The next lr to try given lr -> score so far: half a decade beyond the tried range when the best is
    at its edge; else halfway (in log lr, on the lattice) between the best and its better neighbour, or
    its other neighbour if that gap is already an eighth of a decade. Never an lr already tried."""
    best = _step(_best(scores))
    steps = sorted(_step(lr) for lr in scores)
    half = STEPS_PER_DECADE // 2
    if best == steps[-1]:
        return _lr(best + half)
    if best == steps[0]:
        return _lr(best - half)
    i = steps.index(best)
    by_step = {_step(lr): score for lr, score in scores.items()}
    left, right = steps[i - 1], steps[i + 1]
    for neighbour in sorted((left, right), key=lambda k: (by_step[k], k)):
        if abs(neighbour - best) > 1:
            return _lr((best + neighbour) // 2 if neighbour > best else -((-best - neighbour) // 2))
    return _lr(steps[-1] + half)  # both gaps at the lattice's resolution: widen the range instead


def select_lr(scores: pd.DataFrame) -> dict[str, float]:
    """optimizer -> chosen lr from lr_scores' rows."""
    return {
        opt: _best(dict(zip(part.lr.astype(float), part.score.astype(float))))
        for opt, part in scores.groupby("optimizer", sort=False)
    }


def at_edge(scores: pd.DataFrame, chosen: dict[str, float]) -> dict[str, bool]:
    """optimizer -> whether its chosen lr is the smallest or largest it tried (the optimum may be out
    there: the tables flag it)."""
    return {
        opt: chosen[opt] in (part.lr.min(), part.lr.max())
        for opt, part in scores.groupby("optimizer", sort=False)
    }
