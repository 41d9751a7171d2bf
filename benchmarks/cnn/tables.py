"""Summaries and the markdown report of a CNN run, from the epochs CSV alone (nothing is re-run).

Every cell over the held-out seeds says its statistic and carries a 95% interval over seeds: means
(Student t) for test accuracy and loss, the geometric mean for the training loss (it spans decades), and
for the time to a target the median with a percentile-bootstrap interval, a run that never reaches the
target counting as never. Diverged runs stay in every statistic (their accuracy is what the diverged
network scores; their losses make a mean NaN, shown as such with the count)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd

from benchmarks.metadata import provenance_line
from benchmarks.stats import bootstrap_median_ci, geometric_mean_ci, mean_ci, median_or_never

from .schedules import DESCRIPTIONS
from .selection import at_edge, lr_scores


def _first_epoch(run: pd.DataFrame, hit: pd.Series) -> tuple[float, float]:
    """(epoch, cumulative training seconds) of the first epoch where `hit` holds; (inf, inf) if none."""
    reached = run[hit.to_numpy()]
    if reached.empty:
        return math.inf, math.inf
    return float(reached.epoch.iloc[0]), float(reached.elapsed_seconds.iloc[0])


def per_run(final: pd.DataFrame) -> pd.DataFrame:
    """One row per (optimizer, seed) of the held-out runs: final test accuracy and loss, final training
    loss, the epochs and training seconds to the training-loss and validation-accuracy targets, the
    median step() time over its epochs (the table: its median over seeds, with a bootstrap interval),
    whether it diverged."""
    rows = []
    for (opt, seed), run in final.groupby(["optimizer", "seed"], sort=False):
        run = run.sort_values("epoch")
        last = run.iloc[-1]
        loss_epoch, loss_seconds = _first_epoch(run, run.train_loss <= float(last.loss_target))
        acc_epoch, acc_seconds = _first_epoch(run, run.val_accuracy >= float(last.accuracy_target))
        rows.append(
            {
                "optimizer": opt,
                "seed": int(seed),
                "lr": float(last.lr),
                "test_accuracy": float(last.test_accuracy),
                "test_loss": float(last.test_loss),
                "train_loss": float(last.train_loss),
                "val_accuracy": float(last.val_accuracy),
                "epochs_to_loss": loss_epoch,
                "seconds_to_loss": loss_seconds,
                "epochs_to_accuracy": acc_epoch,
                "seconds_to_accuracy": acc_seconds,
                "step_ms": float(run.step_ms.median()),
                "diverged": bool(run.diverged.astype(bool).any()),
            }
        )
    return pd.DataFrame(rows)


def summarize(final: pd.DataFrame) -> pd.DataFrame:
    """One row per optimizer: (value, low, high) triples over its seeds for every reported quantity."""
    out = []
    for opt, runs in per_run(final).groupby("optimizer", sort=False):
        row = {"optimizer": opt, "lr": runs.lr.iloc[0], "n": len(runs), "diverged": int(runs.diverged.sum())}
        row["test_accuracy"] = mean_ci(runs.test_accuracy)
        row["test_loss"] = mean_ci(runs.test_loss)
        row["train_loss"] = geometric_mean_ci(runs.train_loss)
        for what in ("loss", "accuracy"):
            for unit in ("epochs", "seconds"):
                values = runs[f"{unit}_to_{what}"]
                row[f"{unit}_to_{what}"] = (median_or_never(values), *bootstrap_median_ci(values))
            row[f"reached_{what}"] = int(np.isfinite(runs[f"epochs_to_{what}"]).sum())
        row["step_ms"] = (median_or_never(runs.step_ms), *bootstrap_median_ci(runs.step_ms))
        out.append(row)
    return pd.DataFrame(out)


def _fmt(x: float, fmt: str, scale: float = 1.0) -> str:
    if math.isnan(x):
        return "NaN"
    return "never" if math.isinf(x) else format(scale * x, fmt)


def _cell(triple: tuple[float, float, float], fmt: str, scale: float = 1.0) -> str:
    value, lo, hi = triple
    if math.isinf(value) and lo == hi == value:
        return "never"
    if math.isnan(lo) or math.isnan(hi):
        return _fmt(value, fmt, scale)
    return f"{_fmt(value, fmt, scale)} [{_fmt(lo, fmt, scale)}, {_fmt(hi, fmt, scale)}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


def _epochs(n: int) -> str:
    return "epoch" if n == 1 else f"{n} epochs"


def _pct(x: float) -> str:
    return f"{100 * x:g}%"


def results_table(final: pd.DataFrame, edges: dict[str, bool]) -> list[str]:
    summary = summarize(final)
    first = final.iloc[0]
    n = int(summary.n.max())
    rows = []
    for r in summary.itertuples():
        diverged = f" ({r.diverged}/{r.n} diverged)" if r.diverged else ""
        rows.append(
            [
                r.optimizer,
                f"{r.lr:.3g}{' †' if edges.get(r.optimizer) else ''}",
                _cell(r.test_accuracy, ".1f", 100) + diverged,
                _cell(r.test_loss, ".3f"),
                _cell(r.train_loss, ".3g"),
                f"{_cell(r.epochs_to_loss, '.0f')} ({r.reached_loss}/{r.n})",
                _cell(r.seconds_to_loss, ".1f"),
                f"{_cell(r.epochs_to_accuracy, '.0f')} ({r.reached_accuracy}/{r.n})",
                _cell(r.seconds_to_accuracy, ".1f"),
                _cell(r.step_ms, ".3f"),
            ]
        )
    loss_target, acc_target = float(first.loss_target), float(first.accuracy_target)
    header = [
        "optimizer",
        "lr",
        f"test acc. % (mean [95% CI], n={n})",
        "test loss (mean [95% CI])",
        "train loss (geo. mean [95% CI])",
        f"epochs to train loss ≤ {loss_target:g} (median [95% CI], reached)",
        f"train s to loss ≤ {loss_target:g} (median [95% CI])",
        f"epochs to val. acc. ≥ {_pct(acc_target)} (median [95% CI], reached)",
        f"train s to val. acc. ≥ {_pct(acc_target)} (median [95% CI])",
        "step() ms (median over seeds [95% CI])",
    ]
    return _table(header, rows)


def separation(final: pd.DataFrame) -> dict:
    """How well the headline metric (mean final test accuracy) tells the optimizers apart: its spread
    across optimizers, the median width of their 95% intervals, and the pairs whose intervals are
    disjoint."""
    summary = summarize(final)
    cis = {r.optimizer: r.test_accuracy for r in summary.itertuples()}
    means = [m for m, _, _ in cis.values()]
    widths = [hi - lo for _, lo, hi in cis.values() if math.isfinite(hi - lo)]
    disjoint = [(a, b) for a, b in combinations(cis, 2) if cis[a][1] > cis[b][2] or cis[b][1] > cis[a][2]]
    return {
        "spread": max(means) - min(means) if means else math.nan,
        "median_width": float(np.median(widths)) if widths else math.nan,
        "disjoint_pairs": disjoint,
        "pairs": len(cis) * (len(cis) - 1) // 2,
    }


def separation_line(final: pd.DataFrame) -> str:
    s = separation(final)
    ratio = s["spread"] / s["median_width"] if s["median_width"] > 0 else math.inf
    return (
        f"Separation: the mean test accuracies span {100 * s['spread']:.1f} points across optimizers, "
        f"{ratio:.1f}× the median width of their 95% intervals ({100 * s['median_width']:.1f} points); "
        f"{len(s['disjoint_pairs'])} of {s['pairs']} pairs of optimizers have disjoint intervals."
    )


def sweep_table(sweep: pd.DataFrame, last_epochs: int, chosen: dict[str, float]) -> list[str]:
    """Per optimizer, every lr tried (ascending) with its score: the mean over seeds of the mean
    validation loss of the last epochs, [lowest, highest seed]; the chosen one in bold."""
    scores = lr_scores(sweep, last_epochs)
    width = int(scores.groupby("optimizer").size().max())
    rows = []
    for opt, part in scores.groupby("optimizer", sort=False):
        cells = []
        for r in part.sort_values("lr").itertuples():
            cell = (
                f"{r.lr:.3g}: {_fmt(r.score, '.3f')} [{_fmt(r.score_min, '.3f')}, {_fmt(r.score_max, '.3f')}]"
            )
            cells.append(f"**{cell}**" if r.lr == chosen.get(opt) else cell)
        rows.append([opt, *cells, *[""] * (width - len(cells))])
    return _table(["optimizer", *[f"lr {i + 1}" for i in range(width)]], rows)


def markdown_report(rows: pd.DataFrame, last_call: dict | None = None) -> str:
    """The whole cnn.md: provenance, protocol, the results table with its separation line, the lr
    search. last_call: cnn_run.json of the call that wrote the CSV (its wall time, runs trained/loaded)."""
    final = rows[rows.stage == "final"]
    sweep = rows[rows.stage == "sweep"]
    if final.empty:
        raise ValueError("the CSV has no final-stage rows")
    meta = final.iloc[0]
    chosen = final.groupby("optimizer", sort=False).lr.first().to_dict()
    last_epochs = int(meta.selection_epochs)
    edges = at_edge(lr_scores(sweep, last_epochs), chosen) if not sweep.empty else {}
    seeds = final.seed.nunique()
    timing = ""
    if last_call and "seconds" in last_call:
        timing = f" The call that wrote the CSV took {last_call['seconds']:.1f} s of wall time"
        if last_call.get("jobs"):
            timing += f" with {last_call['jobs']} runs at a time"
        if last_call.get("runs_loaded"):
            timing += f" ({last_call['runs_trained']} runs trained, {last_call['runs_loaded']} loaded)"
        timing += "."
    compute = rows.train_seconds.sum() + rows.eval_seconds.sum()
    schedule = DESCRIPTIONS.get(meta.schedule, meta.schedule)
    lines = [f"# CNN training: {meta.dataset}", "", provenance_line(meta.to_dict()), ""]
    text = (
        f"Protocol: `{meta.model}`, batch {int(meta.batch_size)}, {schedule}, "
        f"{int(meta.epochs_budget)} epochs on {int(meta.train_size)} training inputs. "
    )
    if not sweep.empty:
        s = sweep.iloc[0]
        n_lrs = int(sweep.groupby("optimizer").lr.nunique().max())
        text += (
            f"Each optimizer's lr is chosen from {n_lrs} lrs ({n_lrs - int(meta.lr_extra)} half a decade "
            f"apart, then adaptive points beyond an edge or between the best and a neighbour), "
            f"each trained on {sweep.seed.nunique()} seeds for {int(s.epochs_budget)} epochs and scored on a "
            f"validation split of {int(s.val_size)} inputs carved from the training set, by the mean "
            f"validation loss of the last {_epochs(last_epochs)} averaged over the seeds; the sweep never "
            "sees the test split. † marks an lr at the edge of those tried. "
        )
    text += (
        f"The table reports {seeds} held-out seed{'s' if seeds > 1 else ''} (disjoint from the sweep's) "
        f"at the chosen lr, scored after the last epoch on {int(meta.test_size)} test inputs; the targets "
        f"are met on the training loss and on the validation accuracy (a run that never meets one counts as "
        "never). `train s` counts training loops only (not evaluation); `step()` is the median time of one "
        f"optimizer.step(). Training and evaluation took {compute:.1f} s of compute in all.{timing}"
    )
    lines += [text, "", "## Results", "", separation_line(final), "", *results_table(final, edges), ""]
    if not sweep.empty:
        lines += [
            "## Learning-rate search",
            "",
            f"Score per lr: mean validation loss of the last {_epochs(last_epochs)}, mean over "
            f"{sweep.seed.nunique()} seeds [lowest, highest seed]; the chosen lr, the lowest, in bold.",
            "",
            *sweep_table(sweep, last_epochs, chosen),
            "",
        ]
    return "\n".join(lines)
