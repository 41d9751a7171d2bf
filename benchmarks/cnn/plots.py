"""Plots from the epochs CSV alone: test accuracy and training loss against epoch (mean over seeds, a
band from the lowest to the highest seed, one line per optimizer) and validation loss against lr for the
sweep."""

from __future__ import annotations

import os

import pandas as pd

from benchmarks import plotting
from benchmarks.metadata import png_metadata


def _caption(rows: pd.DataFrame) -> str:
    m = rows.iloc[0]
    return (
        f"{m.dataset}; torch {m.torch_version}, optimizers {m.package_version}, commit {m.git_commit}; "
        f"{m.device}, {m.threads} threads"
    )


def _finish(fig, ax, rows: pd.DataFrame, path: str) -> None:
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, frameon=False, fontsize=8)
    fig.text(0.01, 0.01, _caption(rows), fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110, metadata=png_metadata(rows.iloc[0].to_dict()))
    import matplotlib.pyplot as plt

    plt.close(fig)


def curve_plot(final: pd.DataFrame, column: str, ylabel: str, path: str, palette: dict, log: bool = False):
    plt, _ = plotting.pyplot()
    # A min-max band stays positive on a log axis, and with 3 seeds says more than a std would.
    stats = (
        final.groupby(["optimizer", "epoch"], sort=False)[column].agg(["mean", "min", "max"]).reset_index()
    )
    fig, ax = plt.subplots(figsize=(8.0, 5.6))
    for opt, part in stats.groupby("optimizer", sort=False):
        lr = final[final.optimizer == opt].lr.iloc[0]
        ax.plot(
            part.epoch, part["mean"], "-o", ms=2.5, lw=1.4, color=palette[opt], label=f"{opt} (lr {lr:.3g})"
        )
        ax.fill_between(part.epoch, part["min"], part["max"], color=palette[opt], alpha=0.15, lw=0)
    seeds = final.seed.nunique()
    if column == "eval_accuracy":
        target = float(final.target_accuracy.iloc[0])
        ax.axhline(target, ls="--", lw=0.8, color="black", label=f"target {100 * target:.0f}%")
        # Zoom on the part where the optimizers differ: from the worst mean after the first epoch.
        later = stats[stats.epoch > stats.epoch.min()] if stats.epoch.nunique() > 1 else stats
        bottom = max(0.0, min(later["mean"].min(), target) - 0.02)
        ax.set_ylim(bottom, min(1.0, stats["max"].max() + 0.005))
        ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}%")
    if log:
        ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    band = f"mean over {seeds} seeds, band from the lowest to the highest" if seeds > 1 else "one seed"
    ax.set_title(f"{ylabel} per epoch at the tuned lr ({band})")
    _finish(fig, ax, final, path)


def sweep_plot(sweep: pd.DataFrame, chosen: dict[str, float], path: str, palette: dict) -> None:
    """Final validation loss against lr, the criterion the lr is chosen by (diverged lrs are left out)."""
    plt, _ = plotting.pyplot()
    last = sweep.loc[sweep.groupby(["optimizer", "lr"], sort=False).epoch.idxmax()]
    fig, ax = plt.subplots(figsize=(8.0, 5.6))
    for opt, part in last.groupby("optimizer", sort=False):
        part = part.sort_values("lr")
        ax.plot(part.lr, part.eval_loss, "-o", ms=3, lw=1.2, color=palette[opt], label=opt)
        best = part[part.lr == chosen.get(opt)]
        ax.plot(best.lr, best.eval_loss, "*", ms=13, color=palette[opt], mec="black", mew=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("validation loss after the sweep's last epoch")
    ax.set_title(
        f"lr sweep ({int(last.epochs_budget.iloc[0])} epochs, seed {int(last.seed.iloc[0])}; "
        "★ chosen: the lowest loss)"
    )
    _finish(fig, ax, sweep, path)


def write_plots(rows: pd.DataFrame, out_dir: str) -> list[str]:
    """Every plot the rows allow; returns the paths written."""
    final, sweep = rows[rows.stage == "final"], rows[rows.stage == "sweep"]
    palette = plotting.palette(list(dict.fromkeys(rows.optimizer)))
    written = []
    if not final.empty:
        path = os.path.join(out_dir, "cnn_test_accuracy.png")
        curve_plot(final, "eval_accuracy", "test accuracy", path, palette)
        written.append(path)
        path = os.path.join(out_dir, "cnn_train_loss.png")
        curve_plot(final, "train_loss", "training loss", path, palette, log=True)
        written.append(path)
    if not sweep.empty:
        chosen = final.groupby("optimizer", sort=False).lr.first().to_dict()
        path = os.path.join(out_dir, "cnn_lr_sweep.png")
        sweep_plot(sweep, chosen, path, palette)
        written.append(path)
    return written
