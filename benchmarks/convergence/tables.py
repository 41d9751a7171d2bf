"""Markdown convergence tables from the runs CSV alone (nothing is re-run)."""

from __future__ import annotations

import json
import math

import pandas as pd

from benchmarks import problems as problem_registry
from benchmarks.metadata import provenance_line

from .metrics import escape_curve, headline, paired_best, profile


def _lr(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _pct(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.0f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


TAUS = (1.0, 1.5, 2.0, 4.0, 10.0)
"""The performance-profile points tabulated (AlgoPerf reads up to tau = 4)."""


def reported_runs(runs: pd.DataFrame, stage: str) -> pd.DataFrame:
    """The runs a table reports: one stage, random starts only (the default-start runs of the final
    stage exist for the trajectory plots)."""
    return runs[(runs.stage == stage) & (runs.start == "random")]


def _steps_cell(r) -> str:
    if not math.isfinite(r.steps_median):
        return "—"
    hi = "∞" if not math.isfinite(r.steps_hi) else f"{r.steps_hi:.0f}"
    return f"{r.steps_median:.0f} [{r.steps_lo:.0f}–{hi}]"


def _success_cell(r) -> str:
    return f"{_pct(r.success_rate)} [{_pct(r.success_lo)}–{_pct(r.success_hi)}]"


def _hyper_cell(r) -> str:
    """The tuned values: lr (with † at an edge of the search range) and the searched hyperparameters."""
    hyper = json.loads(r.hyperparams)
    parts = [f"lr {_lr(r.lr)}{' †' if r.lr_at_edge else ''}"]
    if "betas" in hyper:
        parts.append(f"β {hyper['betas'][0]:.3g}, {hyper['betas'][1]:.4g}")
    for name, label in (("momentum", "μ"), ("alpha", "α"), ("weight_decay", "wd")):
        if name in hyper and not (name == "momentum" and hyper[name] == 0):
            parts.append(f"{label} {hyper[name]:.3g}")
    return ", ".join(parts)


def overview(summary: pd.DataFrame, problems: list[str], optimizers: list[str]) -> list[str]:
    """optimizer x problem: median steps to threshold (failures as never) · success rate."""

    def cell(r) -> str:
        return f"{_steps_cell(r)} · {_success_cell(r)}"

    cells = {(r.optimizer, r.problem): cell(r) for r in summary.itertuples()}
    rows = [[opt, *[cells.get((opt, p), "") for p in problems]] for opt in optimizers]
    return _table(["optimizer", *problems], rows)


def per_problem(
    summary: pd.DataFrame, runs: pd.DataFrame, problems: list[str], optimizers: list[str], tuned: bool
):
    """One table per problem: a row per optimizer with its hyperparameters, success, steps, divergence,
    and escape for saddles."""
    lines = []
    for problem in problems:
        part = summary[summary.problem == problem].set_index("optimizer")
        first = runs[runs.problem == problem].iloc[0]
        saddle = part.escape_rate.notna().any()
        header = ["optimizer", "tuned hyperparameters" if tuned else "hyperparameters (defaults)"]
        header += ["success [95% CI]", "steps to threshold, median [95% CI]", "diverged"]
        header += ["escaped"] if saddle else []
        rows = []
        for opt in optimizers:
            if opt not in part.index:
                continue
            r = part.loc[opt]
            row = [opt, _hyper_cell(r) if tuned else f"lr {_lr(r.lr)}", _success_cell(r), _steps_cell(r)]
            row += [_pct(r.diverged_rate)]
            row += [_pct(r.escape_rate)] if saddle else []
            rows.append(row)
        lines += [
            f"### {problem}",
            "",
            f"{int(first.dim)}-D; success: {first.criterion}; budget {int(first.budget)} steps; "
            f"n = {int(part.runs.iloc[0])} held-out seeds per row. Success: rate with its Wilson 95% "
            "interval. Steps: median over all n runs with failures counted as never (— when half or more "
            "failed), with its bootstrap 95% interval (∞: the interval reaches never).",
            "",
            *_table(header, rows),
            "",
        ]
    return lines


def profile_table(part: pd.DataFrame, optimizers: list[str]) -> list[str]:
    rho = profile(part, TAUS)
    rows = [[opt, *[f"{x:.2f}" for x in rho[opt]]] for opt in optimizers if opt in rho]
    return _table(["optimizer", *[f"ρ({tau:g})" for tau in TAUS]], rows)


def paired_table(part: pd.DataFrame) -> list[str]:
    rows = [
        [r.problem, r.best, r.runner_up, f"{r.wins}–{r.losses}", f"{r.p:.2g}"]
        for r in paired_best(part).itertuples()
    ]
    return _table(["problem", "fastest", "runner-up", "seeds won–lost", "sign test p"], rows)


def _title(runs: pd.DataFrame) -> str:
    saddle = runs.f_saddle.notna()
    if saddle.all():
        return "Escaping saddles"
    if not saddle.any():
        return "Convergence on test functions"
    return "Convergence on test functions and saddles"


def _protocol(runs: pd.DataFrame, meta: dict, timing: str) -> str:
    search = runs[runs.stage == "search"]
    trials = search.groupby(["optimizer", "problem"]).hyperparams.nunique().max()
    refine = runs[runs.stage == "refine"].groupby(["optimizer", "problem"]).hyperparams.nunique().max()
    return (
        f"Protocol: every optimizer gets the same budget over its own hyperparameters: {trials} "
        f"quasi-random (scrambled Sobol) trials of lr in [1e-5, 1e2] and momentum, β1, β2, α or AdamW's "
        f"weight decay (0, 1e-4, 1e-3, 1e-2), then {int(refine) if refine == refine else 0} trials around "
        f"the best (the lr may leave the range there), each on {search.seed.nunique()} tuning seeds. The "
        f"selection takes the trial with the highest Wilson lower bound of the success rate, then the "
        f"fewest median steps (failures as never); it never reads the held-out seeds, on which the "
        f"tables below are measured. † marks an lr within 5% of the range's ends (in log scale) or past "
        f"them. Starts: the same for every optimizer. Each run stops at success, divergence (non-finite "
        f"or outside the problem's box) or the budget of {int(meta['budget'])} steps; {meta['dtype']}."
        f"{timing}"
    )


def _stable_limit(problem: str) -> float:
    """Gradient descent's stability limit 2/L+ on the saddle's positive-curvature directions (inf when it
    has none)."""
    factory = problem_registry.FACTORIES.get(problem)
    curvatures = getattr(factory(), "positive_curvatures", None) if factory else None
    return 2.0 / max(curvatures) if curvatures else math.inf


def lr_curve_tables(part: pd.DataFrame, problems: list[str], optimizers: list[str]) -> list[str]:
    curve = escape_curve(part)
    lrs = sorted(curve.lr.unique())
    lines = []
    for problem in problems:
        here = curve[curve.problem == problem]
        limit = _stable_limit(problem)
        first = part[part.problem == problem].iloc[0]

        cells = {}
        for r in here.itertuples():
            steps = "—" if not math.isfinite(r.steps_median) else f"{r.steps_median:.0f}"
            cells[r.optimizer, r.lr] = f"{steps} · {_pct(r.escape_rate)}"
        header = ["optimizer", *[f"lr {lr:.3g}{' ⚠' if lr >= limit else ''}" for lr in lrs]]
        rows = [[opt, *[cells.get((opt, lr), "") for lr in lrs]] for opt in optimizers]
        stable = f"2/L+ = {limit:.3g}" if math.isfinite(limit) else "none (no positive curvature)"
        lines += [
            f"### {problem}",
            "",
            f"{int(first.dim)}-D; budget {int(first.budget)} steps; n = {int(here.runs.iloc[0])} held-out "
            f"seeds per cell. Cells: median steps to escape over all n runs, failures as never (— when half "
            f"or more did not escape) · escape rate. Gradient descent's stability limit on the positive-"
            f"curvature directions: {stable}; ⚠ marks lrs at or above it.",
            "",
            *_table(header, rows),
            "",
        ]
    return lines


def _lr_curve_protocol(meta: dict) -> str:
    return (
        "Escape is measured against the lr, not at one tuned value: every optimizer runs at its default "
        "hyperparameters but the lr, at each lr of the table, on the same held-out starts (a small random "
        "offset from the saddle). A run has escaped once it is at least the escape radius from the saddle "
        "and f has dropped below f(saddle) by the problem's margin; a run whose displacement along the "
        "saddle's positive-curvature directions grows past twice its start is counted as diverged: it was "
        "thrown out, not led out downhill, and never counts as an escape. "
        f"Each run stops at success, divergence or the budget of {int(meta['budget'])} steps; "
        f"{meta['dtype']}."
    )


def markdown_report(runs: pd.DataFrame, seconds: float | None = None) -> str:
    """The whole convergence.md: provenance, protocol, overview, performance profiles, paired tests, and
    per-problem tables for the tuned hyperparameters and for the defaults."""
    meta = runs.iloc[0].to_dict()
    problems = list(dict.fromkeys(runs.problem))
    optimizers = list(dict.fromkeys(runs.optimizer))
    lines = [f"# {_title(runs)}", "", provenance_line(meta), ""]
    timing = f" The sweep took {seconds:.1f} s." if seconds is not None else ""
    if (runs.stage == "search").any():
        lines += [_protocol(runs, meta, timing), ""]
    if (runs.stage == "lr-curve").any():
        lines += [_lr_curve_protocol(meta) + timing, "", "## Escape against lr", ""]
        lines += lr_curve_tables(reported_runs(runs, "lr-curve"), problems, optimizers)
    default_title = "Default hyperparameters"
    if (runs.stage == "lr-curve").any():  # at one lr per optimizer a saddle table ranks first steps
        default_title += " (on saddles this measures mostly how long the first steps are)"
    sections = [("Tuned hyperparameters", "final", True), (default_title, "default", False)]
    for title, stage, tuned in sections:
        part = reported_runs(runs, stage)
        if part.empty:
            continue
        summary = headline(part)
        n = int(summary.runs.iloc[0])
        lines += [
            f"## {title}",
            "",
            f"Median steps to threshold over n = {n} held-out seeds, failures counted as never (— when "
            "half or more failed), [bootstrap 95% interval; ∞: it reaches never] · success rate [Wilson "
            "95% interval]:",
            "",
            *overview(summary, problems, optimizers),
            "",
        ]
        if len(problems) > 1:
            lines += [
                f"Performance profile over the {len(problems)} problems: ρ(τ) is the share of problems on "
                "which an optimizer's median steps (failures as never) are within τ times the best "
                "optimizer's (AlgoPerf); performance_profile_"
                f"{'tuned' if tuned else 'default'}.png draws it.",
                "",
                *profile_table(part, optimizers),
                "",
            ]
        lines += [
            "Fastest two per problem, compared seed by seed (same starts; failures as never): seeds on which "
            "the fastest took fewer steps, and the exact two-sided sign-test p-value over the untied seeds.",
            "",
            *paired_table(part),
            "",
        ]
        lines += per_problem(summary, part, problems, optimizers, tuned)
    return "\n".join(lines)
