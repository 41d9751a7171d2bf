"""Markdown convergence tables from the runs CSV alone (nothing is re-run)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmarks.metadata import provenance_line

from .metrics import summarize


def _lr(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _pct(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.0f}%"


def _sci(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.2g}" if 1e-3 <= abs(x) < 1e4 or x == 0 else f"{x:.1e}"


def _steps(median: float, q25: float, q75: float) -> str:
    if not math.isfinite(median):
        return "—"
    return f"{median:.0f} [{q25:.0f}–{q75:.0f}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


def reported_runs(runs: pd.DataFrame, stage: str) -> pd.DataFrame:
    """The runs a table reports: one stage, random starts only (the default-start runs of the final
    stage exist for the trajectory plots)."""
    return runs[(runs.stage == stage) & (runs.start == "random")]


def overview(summary: pd.DataFrame, problems: list[str], optimizers: list[str]) -> list[str]:
    """optimizer x problem: success rate and median steps to threshold."""

    def cell(r) -> str:
        if r.success_rate > 0:
            return f"{_pct(r.success_rate)} · {r.steps_median:.0f}"
        if r.diverged_rate == 1:
            return "0% (all diverged)"
        return f"0% (f−f* {_sci(r.final_gap_median)})" if r.has_min else "0%"

    cells = {(r.optimizer, r.problem): cell(r) for r in summary.itertuples()}
    rows = [[opt, *[cells.get((opt, p), "") for p in problems]] for opt in optimizers]
    return _table(["optimizer", *problems], rows)


def lr_overview(summary: pd.DataFrame, problems: list[str], optimizers: list[str]) -> list[str]:
    cell = {(r.optimizer, r.problem): _lr(r.lr) for r in summary.itertuples()}
    return _table(
        ["optimizer", *problems], [[o, *[cell.get((o, p), "") for p in problems]] for o in optimizers]
    )


def per_problem(
    summary: pd.DataFrame, runs: pd.DataFrame, problems: list[str], optimizers: list[str], lr_label: str
) -> list[str]:
    """One table per problem: a row per optimizer with lr, success, steps, final gap and distance, divergence,
    and escape for saddles."""
    lines = []
    for problem in problems:
        part = summary[summary.problem == problem].set_index("optimizer")
        first = runs[runs.problem == problem].iloc[0]
        saddle = part.escape_rate.notna().any()
        has_min = math.isfinite(first.f_min)
        gap_name = "final f − f*" if has_min else "final f − f(saddle)"
        header = [
            "optimizer",
            lr_label,
            "success",
            "steps to threshold, median [IQR]",
            f"{gap_name} (median)",
        ]
        header += ["final ‖x − x*‖ (median)"] if has_min else []
        header += ["diverged"]
        header += ["escaped", "steps to escape, median [IQR]"] if saddle else []
        rows = []
        for opt in optimizers:
            if opt not in part.index:
                continue
            r = part.loc[opt]
            gap = (
                r.final_gap_median
                if has_min
                else r.final_gap_median - (first.f_saddle if math.isfinite(first.f_saddle) else 0)
            )
            row = [
                opt,
                _lr(r.lr),
                _pct(r.success_rate),
                _steps(r.steps_median, r.steps_q25, r.steps_q75),
                _sci(gap),
            ]
            row += [_sci(r.final_dist_median)] if has_min else []
            row += [_pct(r.diverged_rate)]
            row += (
                [_pct(r.escape_rate), _steps(r.escape_steps_median, r.escape_steps_q25, r.escape_steps_q75)]
                if saddle
                else []
            )
            rows.append(row)
        lines += [
            f"### {problem}",
            "",
            f"{int(first.dim)}-D; success: {first.criterion}; budget {int(first.budget)} steps; "
            f"{int(part.runs.iloc[0])} runs per row.",
            "",
            *_table(header, rows),
            "",
        ]
    return lines


def _title(runs: pd.DataFrame) -> str:
    saddle = runs.f_saddle.notna()
    if saddle.all():
        return "Escaping saddles"
    if not saddle.any():
        return "Convergence on test functions"
    return "Convergence on test functions and saddles"


def markdown_report(runs: pd.DataFrame, seconds: float | None = None) -> str:
    """The whole convergence.md: provenance, protocol, overview tables, and per-problem tables for the
    tuned lr and for the default hyperparameters."""
    meta = runs.iloc[0].to_dict()
    problems = list(dict.fromkeys(runs.problem))
    optimizers = list(dict.fromkeys(runs.optimizer))
    tune_seeds = runs[runs.stage == "grid"].seed.nunique()
    grid = np.sort(runs[runs.stage == "grid"].lr.unique())
    final = reported_runs(runs, "final")
    default = reported_runs(runs, "default")
    lines = [f"# {_title(runs)}", "", provenance_line(meta), ""]
    timing = f" The sweep took {seconds:.1f} s." if seconds is not None else ""
    if len(grid):
        lines += [
            f"Protocol: for each optimizer and problem, lr on a log grid of {len(grid)} points "
            f"({grid[0]:.0e} to {grid[-1]:.0e}), refined around the best, chosen by the median steps to "
            f"threshold over {tune_seeds} tuning seeds (failures count as never; ties broken by median "
            f"final loss); then {final.seed.nunique()} held-out seeds at the chosen lr (the numbers below). "
            f"The default-hyperparameter tables run each optimizer's default lr on the same held-out "
            f"seeds. Each run stops at success, divergence (non-finite or outside the problem's box) or "
            f"the budget of {int(meta['budget'])} steps; steps are medians [25th–75th percentile] over "
            f"the successful runs; final values are medians over the runs that did not diverge, measured "
            f"where the run stopped; {meta['dtype']}.{timing}",
            "",
        ]
    sections = [("Tuned learning rate", final, "tuned lr"), ("Default hyperparameters", default, "lr")]
    for title, part, lr_label in sections:
        if part.empty:
            continue
        summary = summarize(part)
        summary["has_min"] = summary.problem.map(part.groupby("problem").f_min.first().notna())
        lines += [
            f"## {title}",
            "",
            "Success rate · median steps to threshold (or, with no success, the median final f − f*):",
            "",
            *overview(summary, problems, optimizers),
            "",
        ]
        if lr_label == "tuned lr":
            lines += ["Tuned learning rates:", "", *lr_overview(summary, problems, optimizers), ""]
        lines += per_problem(summary, part, problems, optimizers, lr_label)
    return "\n".join(lines)
