"""Summaries and the markdown report of a CNN run, from the epochs CSV alone (nothing is re-run)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmarks.metadata import provenance_line


def per_run(final: pd.DataFrame) -> pd.DataFrame:
    """One row per (optimizer, seed) of the final stage: final and best accuracy, first epoch (and
    cumulative training seconds) at which the test accuracy reached the target, time in step()."""
    rows = []
    for (opt, seed), run in final.groupby(["optimizer", "seed"], sort=False):
        run = run.sort_values("epoch")
        target = float(run.target_accuracy.iloc[0])
        hit = run[run.eval_accuracy >= target]
        rows.append(
            {
                "optimizer": opt,
                "seed": seed,
                "lr": float(run.lr.iloc[0]),
                "final_accuracy": float(run.eval_accuracy.iloc[-1]),
                "best_accuracy": float(run.eval_accuracy.max()),
                "final_train_loss": float(run.train_loss.iloc[-1]),
                "epochs_to_target": float(hit.epoch.iloc[0]) if len(hit) else math.inf,
                "seconds_to_target": float(hit.elapsed_seconds.iloc[0]) if len(hit) else math.inf,
                "train_seconds": float(run.train_seconds.sum()),
                "step_seconds": float(run.step_seconds.sum()),
                "steps": int(run.steps.iloc[-1]),
            }
        )
    return pd.DataFrame(rows)


def summarize(final: pd.DataFrame) -> pd.DataFrame:
    """One row per optimizer: means and stds over seeds; medians of the time to target with a run that
    never reached it counted as never (so the median is finite only when at least half reached it)."""
    runs = per_run(final)
    grouped = runs.groupby("optimizer", sort=False)
    out = grouped.agg(
        lr=("lr", "first"),
        seeds=("seed", "nunique"),
        final_mean=("final_accuracy", "mean"),
        final_std=("final_accuracy", "std"),
        best_mean=("best_accuracy", "mean"),
        reached=("epochs_to_target", lambda s: int(np.isfinite(s).sum())),
        train_seconds=("train_seconds", "mean"),
        step_seconds=("step_seconds", "mean"),
        steps=("steps", "first"),
    )
    out["epochs_to_target"] = grouped.epochs_to_target.median()
    out["seconds_to_target"] = grouped.seconds_to_target.median()
    return out.reset_index()


def _pct(x: float, digits: int = 1) -> str:
    return "—" if not math.isfinite(x) else f"{100 * x:.{digits}f}%"


def _median(x: float, fmt: str, reached: int, n: int) -> str:
    text = "never" if not math.isfinite(x) else format(x, fmt)
    return text if reached == n else f"{text} ({reached}/{n} reached)"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


def convergence_table(final: pd.DataFrame, sweep: pd.DataFrame) -> list[str]:
    target = float(final.target_accuracy.iloc[0])
    summary = summarize(final)
    grid_edges = {opt: (part.lr.min(), part.lr.max()) for opt, part in sweep.groupby("optimizer", sort=False)}
    rows = []
    for r in summary.itertuples():
        lo, hi = grid_edges.get(r.optimizer, (math.nan, math.nan))
        edge = " (grid edge)" if len(grid_edges) and r.lr in (lo, hi) else ""
        std = "" if not math.isfinite(r.final_std) else f" ± {100 * r.final_std:.1f}"
        rows.append(
            [
                r.optimizer,
                f"{r.lr:.3g}{edge}",
                f"{_pct(r.final_mean)}{std}",
                _pct(r.best_mean),
                _median(r.epochs_to_target, ".0f", r.reached, r.seeds),
                _median(r.seconds_to_target, ".2f", r.reached, r.seeds),
                f"{r.train_seconds:.2f}",
                f"{r.step_seconds:.3f} ({_pct(r.step_seconds / r.train_seconds, 0)})",
            ]
        )
    header = [
        "optimizer",
        "lr (swept)",
        "final test acc. (mean ± std)",
        "best test acc. (mean)",
        f"epochs to {_pct(target, 0)} (median)",
        f"train s to {_pct(target, 0)} (median)",
        "train s / run",
        "step() s / run (share)",
    ]
    return _table(header, rows)


def sweep_table(sweep: pd.DataFrame, chosen: dict[str, float]) -> list[str]:
    """Per optimizer, its swept lrs with the final validation loss (accuracy); the chosen one in bold."""
    last = sweep.loc[sweep.groupby(["optimizer", "lr"], sort=False).epoch.idxmax()]
    width = last.groupby("optimizer").size().max()
    rows = []
    for opt, part in last.groupby("optimizer", sort=False):
        cells = []
        for r in part.sort_values("lr").itertuples():
            cell = f"{r.lr:.3g}: {r.eval_loss:.3f} ({_pct(r.eval_accuracy)})"
            cells.append(f"**{cell}**" if r.lr == chosen.get(opt) else cell)
        rows.append([opt, *cells, *[""] * (width - len(cells))])
    return _table(["optimizer", *[f"lr {i + 1}" for i in range(width)]], rows)


def markdown_report(rows: pd.DataFrame, last_call: dict | None = None) -> str:
    """The whole cnn.md: provenance, protocol, the convergence table and the lr sweep. last_call:
    cnn_run.json of the call that wrote the CSV (its wall time, and how many runs it trained or loaded)."""
    final = rows[rows.stage == "final"]
    sweep = rows[rows.stage == "sweep"]
    if final.empty:
        raise ValueError("the CSV has no final-stage rows")
    meta = final.iloc[0]
    chosen = final.groupby("optimizer", sort=False).lr.first().to_dict()
    seeds = final.seed.nunique()
    timing = ""
    if last_call and "seconds" in last_call:
        timing = f" The call that wrote the CSV took {last_call['seconds']:.1f} s of wall time"
        if last_call.get("runs_loaded"):
            timing += (
                f" ({last_call['runs_trained']} runs trained, {last_call['runs_loaded']} loaded from "
                "earlier calls)"
            )
        timing += "."
    compute = rows.train_seconds.sum() + rows.eval_seconds.sum()
    lines = [f"# CNN training: {meta.dataset}", "", provenance_line(meta.to_dict()), ""]
    if not sweep.empty:
        s = sweep.iloc[0]
        n_lrs = sweep.groupby("optimizer").lr.nunique().max()
        lines += [
            f"Protocol: each optimizer's lr is chosen by a sweep of {n_lrs} log-spaced lrs (seed "
            f"{int(s.seed)}, {int(s.epochs_budget)} epochs, trained on {int(s.train_size)} images and scored "
            f"on a validation split of {int(s.eval_size)} carved from the training set; lowest final "
            "validation loss, ties broken by validation accuracy). "
        ]
    else:
        lines += ["Protocol: "]
    lines[-1] += (
        f"The table reports {seeds} seed{'s' if seeds > 1 else ''} at the chosen lr: "
        f"{int(meta.epochs_budget)} epochs of batch {int(meta.batch_size)} on {int(meta.train_size)} "
        f"training images, test accuracy on {int(meta.eval_size)} test images after every epoch; "
        "`train s` counts the training loops only (not evaluation), `step()` the time inside "
        f"optimizer.step(). Training and evaluation took {compute:.1f} s in all.{timing}"
    )
    lines += ["", "## Convergence", "", *convergence_table(final, sweep), ""]
    if not sweep.empty:
        lines += [
            "## Learning-rate sweep",
            "",
            "Final validation loss (validation accuracy) per lr; the chosen lr, the lowest loss, in bold.",
            "",
            *sweep_table(sweep, chosen),
            "",
        ]
    return "\n".join(lines)
