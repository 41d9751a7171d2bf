"""Plots from the epochs CSV alone: test accuracy and training loss against epoch at the chosen lr (the
mean over the held-out seeds with its 95% interval as a band; geometric for the loss), and the lr search's
score against lr (mean over the sweep seeds, bars from the lowest to the highest seed)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from benchmarks import plotting
from benchmarks.metadata import png_metadata
from benchmarks.stats import geometric_mean_ci, mean_ci

from .selection import lr_scores


def _caption(rows: pd.DataFrame) -> str:
    m = rows.iloc[0]
    return (
        f"{m.dataset}; torch {m.torch_version}, optimizers {m.package_version}, commit {m.git_commit}; "
        f"{m.device}, {m.threads} thread(s) per run"
    )


def _finish(fig, ax, rows: pd.DataFrame, path: str) -> None:
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, frameon=False, fontsize=8)
    fig.text(0.01, 0.01, _caption(rows), fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110, metadata=png_metadata(rows.iloc[0].to_dict()))
    import matplotlib.pyplot as plt

    plt.close(fig)


def _per_epoch(final: pd.DataFrame, column: str, geometric: bool) -> pd.DataFrame:
    """optimizer, epoch, mean and 95% interval of `column` over seeds."""
    ci = geometric_mean_ci if geometric else mean_ci
    rows = [
        (opt, epoch, *ci(part[column]))
        for (opt, epoch), part in final.groupby(["optimizer", "epoch"], sort=False)
    ]
    return pd.DataFrame(rows, columns=["optimizer", "epoch", "mean", "lo", "hi"])


def curve_plot(final: pd.DataFrame, column: str, ylabel: str, path: str, palette: dict, log: bool = False):
    plt, _ = plotting.pyplot()
    stats = _per_epoch(final, column, geometric=log)
    fig, ax = plt.subplots(figsize=(8.0, 5.6))
    for opt, part in stats.groupby("optimizer", sort=False):
        lr = final[final.optimizer == opt].lr.iloc[0]
        ax.plot(part.epoch, part["mean"], "-", lw=1.4, color=palette[opt], label=f"{opt} (lr {lr:.3g})")
        ax.fill_between(part.epoch, part["lo"], part["hi"], color=palette[opt], alpha=0.18, lw=0)
    seeds = final.seed.nunique()
    if column == "test_accuracy":
        ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}%")
    if column == "train_loss":
        target = float(final.loss_target.iloc[0])
        ax.axhline(target, ls="--", lw=0.8, color="black", label=f"target {target:g}")
    if log:
        ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    statistic = "geometric mean" if log else "mean"
    ax.set_title(f"{ylabel} at the chosen lr: {statistic} over {seeds} seeds, band its 95% interval")
    _finish(fig, ax, final, path)


def sweep_plot(sweep: pd.DataFrame, last_epochs: int, chosen: dict[str, float], path: str, palette: dict):
    """The selection score against lr (diverged lrs, +inf, are left out of the lines)."""
    plt, _ = plotting.pyplot()
    scores = lr_scores(sweep, last_epochs)
    fig, ax = plt.subplots(figsize=(8.0, 5.6))
    for opt, part in scores.groupby("optimizer", sort=False):
        part = part.sort_values("lr")
        part = part[np.isfinite(part.score)]
        err = [part.score - part.score_min, part.score_max - part.score]
        ax.errorbar(
            part.lr, part.score, yerr=err, fmt="-o", ms=3, lw=1.2, capsize=2, color=palette[opt], label=opt
        )
        best = part[part.lr == chosen.get(opt)]
        ax.plot(best.lr, best.score, "*", ms=13, color=palette[opt], mec="black", mew=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"validation loss, mean of the last {last_epochs} epochs")
    ax.set_title(
        f"lr search: mean over {sweep.seed.nunique()} seeds, bars lowest to highest seed; ★ chosen (lowest)"
    )
    _finish(fig, ax, sweep, path)


def write_plots(rows: pd.DataFrame, out_dir: str) -> list[str]:
    """Every plot the rows allow; returns the paths written."""
    final, sweep = rows[rows.stage == "final"], rows[rows.stage == "sweep"]
    palette = plotting.palette(list(dict.fromkeys(rows.optimizer)))
    written = []
    if not final.empty:
        path = os.path.join(out_dir, "cnn_test_accuracy.png")
        curve_plot(final, "test_accuracy", "test accuracy", path, palette)
        written.append(path)
        path = os.path.join(out_dir, "cnn_train_loss.png")
        curve_plot(final, "train_loss", "training loss", path, palette, log=True)
        written.append(path)
    if not sweep.empty:
        chosen = final.groupby("optimizer", sort=False).lr.first().to_dict()
        path = os.path.join(out_dir, "cnn_lr_sweep.png")
        sweep_plot(sweep, int(rows.selection_epochs.iloc[0]), chosen, path, palette)
        written.append(path)
    return written
