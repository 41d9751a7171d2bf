"""Plots from the sweep's CSVs alone: nothing is re-run. (The contour plots evaluate each problem's
objective on a grid, by name from benchmarks.problems, to draw the landscape under the recorded paths.)"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from benchmarks import plotting
from benchmarks import problems as problem_registry
from benchmarks.metadata import png_metadata
from benchmarks.resume import atomic_write

from .metrics import escape_curve, profile, trial_scores


def _subplots(plt, n: int, ncols: int = 4, size: tuple[float, float] = (4.0, 3.2)):
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _legend_below(fig, handles, labels, ncol: int = 4) -> None:
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, fontsize=9)


def _finish(plt, fig, runs: pd.DataFrame, path: str, legend: tuple[list, list], rect: tuple, dpi: int):
    """A figure's legend below it, the provenance caption, the layout within `rect`, the PNG; closed."""
    _legend_below(fig, *legend)
    fig.text(0.01, 0.005, _caption(runs), fontsize=7, color="grey")
    fig.tight_layout(rect=rect)
    _save(fig, path, runs, dpi)
    plt.close(fig)


def _by_palette(palette: dict, handles: dict) -> tuple[list, list]:
    """(handles, labels) of the optimizers drawn, in palette order."""
    order = [o for o in palette if o in handles]
    return [handles[o] for o in order], order


def _caption(runs: pd.DataFrame) -> str:
    m = runs.iloc[0]
    return (
        f"torch {m.torch_version}, optimizers {m.package_version}, commit {m.git_commit}, {m.threads} threads"
    )


def _save(fig, path: str, runs: pd.DataFrame, dpi: int) -> None:
    """The figure as a PNG whose text chunks carry the provenance of the runs it shows (command, versions,
    commit, device, threads; the visible caption has the short form)."""
    meta = png_metadata(runs.iloc[0].to_dict())
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, metadata=meta))


# -- trajectories -----------------------------------------------------------------------------------
def _window(problem, points: np.ndarray) -> tuple[float, float, float, float]:
    """Plot limits: the recorded points that lie in the problem's box, the start, the minimizers (and the
    escape circle of a saddle), with a margin; never beyond the box."""
    lo, hi = problem.box[0].numpy(), problem.box[1].numpy()
    inside = points[np.all((points >= lo) & (points <= hi) & np.isfinite(points), axis=1)]
    extra = [problem.default_start.numpy()[None]]
    if problem.minimizers is not None:
        extra.append(problem.minimizers.numpy())
    if problem.saddle is not None:
        s, r = problem.saddle.numpy(), 1.3 * problem.escape_radius
        extra.append(np.array([s - r, s + r]))
    allp = np.concatenate([inside, *extra])
    a, b = allp.min(0), allp.max(0)
    pad = 0.08 * (b - a).max()
    a, b = np.maximum(a - pad, lo), np.minimum(b + pad, hi)
    return float(a[0]), float(b[0]), float(a[1]), float(b[1])


def trajectory_plot(
    problem, runs: pd.DataFrame, trajectories: pd.DataFrame, path: str, palette: dict[str, tuple]
) -> None:
    """The recorded paths (final stage, default start, tuned lr) over the contours of the objective."""
    plt, _ = plotting.pyplot()
    paths = trajectories.merge(runs[["run_id", "optimizer", "lr", "status", "stop_step"]], on="run_id")
    x0, x1, y0, y1 = _window(problem, paths[["x", "y"]].to_numpy())
    gx, gy = np.meshgrid(np.linspace(x0, x1, 400), np.linspace(y0, y1, 400))
    import torch

    F = problem.value(torch.as_tensor(np.stack([gx, gy], -1))).numpy()
    fig, ax = plt.subplots(figsize=(8.0, 8.0))
    if problem.f_min is not None:
        G = np.log10(np.maximum(F - problem.f_min, 1e-12))
        top = np.quantile(G, 0.98)
        levels = np.arange(np.floor(max(G.min(), top - 7)), np.ceil(top) + 0.01, 0.5)
        cs = ax.contourf(gx, gy, G, levels=levels, cmap="Greys_r", alpha=0.55, extend="both")
        ax.contour(gx, gy, G, levels=levels, colors="grey", linewidths=0.3)
        fig.colorbar(cs, ax=ax, label="log10(f − f*)", shrink=0.7)
    else:
        from matplotlib.ticker import MaxNLocator

        lim = np.quantile(np.abs(F), 0.98)
        levels = MaxNLocator(24, symmetric=True).tick_values(-lim, lim)
        cs = ax.contourf(gx, gy, F, levels=levels, cmap="RdBu_r", alpha=0.45, extend="both")
        ax.contour(gx, gy, F, levels=[0.0], colors="grey", linewidths=0.8)
        fig.colorbar(cs, ax=ax, label="f", shrink=0.7)
    for opt, part in paths.groupby("optimizer", sort=False):
        part = part.sort_values("step")
        r = part.iloc[0]
        label = f"{opt} (lr {r.lr:.2g}): {r.status} at step {int(r.stop_step)}"
        ax.plot(part.x, part.y, "-", lw=1.3, color=palette[opt], label=label, alpha=0.9)
        ax.plot(part.x.iloc[-1], part.y.iloc[-1], "o", ms=4, color=palette[opt])
    start = problem.default_start.numpy()
    ax.plot(*start, "ks", ms=6, label="start")
    if problem.minimizers is not None:
        m = problem.minimizers.numpy()
        ax.plot(m[:, 0], m[:, 1], "*", color="gold", mec="black", ms=14, label="minimizer")
    if problem.saddle is not None:
        s = problem.saddle.numpy()
        ax.plot(*s, "kx", ms=8, label="saddle")
        ax.add_patch(plt.Circle(tuple(s), problem.escape_radius, fill=False, ls="--", color="black", lw=0.8))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{problem.name}: paths from the default start at each optimizer's tuned lr")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    fig.text(0.01, 0.01, _caption(runs), fontsize=7, color="grey")
    fig.tight_layout()
    _save(fig, path, runs, 110)
    plt.close(fig)


# -- loss curves --------------------------------------------------------------------------------------
def curve_quantiles(runs: pd.DataFrame, curves: pd.DataFrame, stage: str) -> pd.DataFrame:
    """Per (problem, optimizer, step): median and IQR over the random-start runs of a stage of
    f - f* (or f - f(saddle) where f* is unknown). A diverged run counts as +inf from where it stopped."""
    part = runs[(runs.stage == stage) & (runs.start == "random")]
    part = part[["run_id", "optimizer", "problem", "diverged", "stop_step", "f_min", "f_saddle"]]
    c = curves.merge(part, on="run_id")
    ref = c.f_min.where(c.f_min.notna(), c.f_saddle).fillna(0.0)
    value = (c.loss - ref).where(~(c.diverged & (c.step >= c.stop_step)), np.inf)
    c = c.assign(value=value.where(value.notna(), np.inf))
    grouped = c.groupby(["problem", "optimizer", "step"], sort=False).value
    q = pd.DataFrame(
        {
            "median": grouped.quantile(0.5, interpolation="nearest"),
            "q25": grouped.quantile(0.25, interpolation="nearest"),
            "q75": grouped.quantile(0.75, interpolation="nearest"),
        }
    ).reset_index()
    return q


def loss_curve_plot(
    runs: pd.DataFrame, curves: pd.DataFrame, stage: str, path: str, palette: dict[str, tuple]
) -> None:
    plt, _ = plotting.pyplot()
    q = curve_quantiles(runs, curves, stage)
    problems = list(dict.fromkeys(runs.problem))
    fig, axes = _subplots(plt, len(problems))
    handles = {}
    for ax, problem in zip(axes, problems, strict=False):
        first = runs[runs.problem == problem].iloc[0]
        bounded = np.isfinite(first.f_min)
        for opt, part in q[q.problem == problem].groupby("optimizer", sort=False):
            part = part.sort_values("step")
            lo, med, hi = part.q25.to_numpy(), part["median"].to_numpy(), part.q75.to_numpy()
            if bounded:
                lo, med, hi = (np.maximum(v, 1e-12) for v in (lo, med, hi))
            (line,) = ax.plot(part.step, med, color=palette[opt], lw=1.3)
            ax.fill_between(
                part.step, lo, np.where(np.isfinite(hi), hi, np.nan), color=palette[opt], alpha=0.15, lw=0
            )
            handles[opt] = line
        ax.set_xscale("symlog", linthresh=1)
        if bounded:
            ax.set_yscale("log")
            if first.criterion.startswith("f − f*"):
                ax.axhline(float(first.threshold), color="black", lw=0.7, ls="--")
            ax.set_ylabel("f − f*")
        else:
            ax.set_yscale("symlog", linthresh=1e-6)
            ticks = [-1e2, -1, -1e-2, -1e-4, 0, 1e-4, 1e-2, 1, 1e2]
            lo, hi = ax.get_ylim()
            ax.set_yticks([t for t in ticks if lo <= t <= hi])
            ax.set_ylabel("f − f(saddle)")
        ax.set_title(f"{problem}", fontsize=10)
        ax.set_xlabel("step")
    what = "tuned lr" if stage == "final" else "default hyperparameters"
    seeds = runs[(runs.stage == stage) & (runs.start == "random")].seed.nunique()
    fig.suptitle(
        f"Loss vs step at the {what}: median and IQR over {seeds} seeds "
        f"(dashed: success threshold; diverged runs count as +inf)",
        fontsize=11,
    )
    _finish(plt, fig, runs, path, _by_palette(palette, handles), (0, 0.05, 1, 0.96), 100)


# -- lr sensitivity -----------------------------------------------------------------------------------
def lr_sensitivity_plot(runs: pd.DataFrame, path: str, palette: dict[str, tuple]) -> None:
    """Median steps to threshold (top of each pair) and success rate against lr, one point per tuning
    trial (search and refine; the other hyperparameters vary between points), chosen trial marked."""
    plt, _ = plotting.pyplot()
    tuning = runs[runs.stage.isin(["search", "refine"])]
    if tuning.empty:
        return
    scores = trial_scores(tuning).sort_values("lr")
    scores["success_rate"] = scores.successes / scores.runs
    chosen = runs[runs.stage == "final"].groupby(["optimizer", "problem"])[["lr", "hyperparams"]].first()
    problems = list(dict.fromkeys(runs.problem))
    ncols = 4
    nrows = 2 * math.ceil(len(problems) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 2.6 * nrows), squeeze=False)
    handles = {}
    budget = int(runs.budget.iloc[0])
    lr_range = (scores.lr.min() / 1.3, scores.lr.max() * 1.3)
    for k in range(nrows // 2 * ncols):
        ax_steps, ax_rate = axes[2 * (k // ncols)][k % ncols], axes[2 * (k // ncols) + 1][k % ncols]
        if k >= len(problems):
            ax_steps.set_visible(False)
            ax_rate.set_visible(False)
            continue
        problem = problems[k]
        for opt, part in scores[scores.problem == problem].groupby("optimizer", sort=False):
            steps = part.median_steps.where(np.isfinite(part.median_steps))
            line = ax_steps.scatter(part.lr, steps, s=6, color=palette[opt], alpha=0.7)
            ax_rate.scatter(part.lr, part.success_rate, s=6, color=palette[opt], alpha=0.7)
            handles[opt] = line
            if (opt, problem) in chosen.index:
                pick = chosen.loc[(opt, problem)]
                row = part[(part.lr == pick.lr) & (part.hyperparams == pick.hyperparams)]
                if len(row) and np.isfinite(row.median_steps.iloc[0]):
                    ax_steps.plot(
                        pick.lr, row.median_steps.iloc[0], "*", ms=9, color=palette[opt], mec="black", mew=0.4
                    )
        for ax in (ax_steps, ax_rate):
            ax.set_xscale("log")
            ax.set_xlim(*lr_range)
        ax_steps.set_yscale("log")
        ax_steps.set_ylim(0.8, budget * 1.1)
        ax_steps.set_title(problem, fontsize=10)
        ax_steps.set_ylabel("median steps")
        ax_rate.set_ylabel("success rate")
        ax_rate.set_ylim(-0.05, 1.05)
        ax_rate.set_xlabel("lr")
    fig.suptitle(
        "Sensitivity over the tuning seeds, one point per trial: median steps to threshold (missing: "
        "half or more failed; ★ chosen) and success rate, against lr",
        fontsize=11,
    )
    _finish(plt, fig, runs, path, _by_palette(palette, handles), (0, 0.04, 1, 0.97), 90)


# -- escape against lr (saddles) -----------------------------------------------------------------------
def escape_curve_plot(runs: pd.DataFrame, path: str, palette: dict[str, tuple]) -> None:
    """Median steps to escape (failures as never) against lr with its bootstrap 95% band, per saddle,
    and gradient descent's stability limit 2/L+ on the positive-curvature directions."""
    plt, _ = plotting.pyplot()
    part = runs[(runs.stage == "lr-curve") & (runs.start == "random")]
    curve = escape_curve(part)
    problems = list(dict.fromkeys(part.problem))
    fig, axes = _subplots(plt, len(problems), ncols=min(3, len(problems)), size=(4.6, 3.4))
    handles = {}
    budget = int(part.budget.iloc[0])
    for ax, problem in zip(axes, problems, strict=False):
        for opt, c in curve[curve.problem == problem].groupby("optimizer", sort=False):
            c = c.sort_values("lr")
            med = c.steps_median.where(np.isfinite(c.steps_median))
            hi = c.steps_hi.where(np.isfinite(c.steps_hi), budget)
            (line,) = ax.plot(c.lr, med, marker=".", ms=4, lw=1.2, color=palette[opt])
            ax.fill_between(
                c.lr, c.steps_lo.where(np.isfinite(c.steps_lo)), hi, color=palette[opt], alpha=0.12, lw=0
            )
            handles[opt] = line
        factory = problem_registry.FACTORIES.get(problem)
        curvatures = getattr(factory(), "positive_curvatures", None) if factory else None
        if curvatures:
            ax.axvline(2.0 / max(curvatures), color="black", lw=0.8, ls="--")
            ax.text(2.0 / max(curvatures), budget, " 2/L+", fontsize=7, va="top")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(0.8, budget * 1.2)
        lrs = curve[curve.problem == problem].lr
        if not np.isfinite(curve[curve.problem == problem].steps_median).any():  # no point to autoscale on
            ax.set_xlim(lrs.min() / 1.5, lrs.max() * 1.5)
        ax.set_title(problem, fontsize=10)
        ax.set_xlabel("lr")
        ax.set_ylabel("median steps to escape")
    fig.suptitle(
        f"Escape against lr: median over {part.seed.nunique()} seeds, failures as never (gaps), "
        "95% bootstrap band",
        fontsize=10,
    )
    _finish(plt, fig, runs, path, _by_palette(palette, handles), (0, 0.08, 1, 0.95), 100)


# -- performance profiles ----------------------------------------------------------------------------
PROFILE_TAUS = np.geomspace(1, 16, 200)


def profile_plot(runs: pd.DataFrame, stage: str, path: str, palette: dict[str, tuple]) -> None:
    """rho(tau) for each optimizer over the problems of the report (tau from 1 to 16, log scale)."""
    plt, _ = plotting.pyplot()
    part = runs[(runs.stage == stage) & (runs.start == "random")]
    rho = profile(part, PROFILE_TAUS)
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    dashes = ["-", "--", "-.", ":"]  # lines with equal values would hide one another
    for k, (opt, values) in enumerate(rho.items()):
        ax.step(PROFILE_TAUS, values, where="post", color=palette[opt], lw=1.6, ls=dashes[k % 4], label=opt)
    ax.set_xscale("log")
    ax.set_xlim(1, PROFILE_TAUS[-1])
    ax.set_xticks([1, 1.5, 2, 4, 8, 16], labels=["1", "1.5", "2", "4", "8", "16"])
    ax.set_ylim(-0.02, 1.02)
    ax.axvline(4, color="grey", lw=0.7, ls=":")
    ax.set_xlabel("τ (steps within τ × the best optimizer's)")
    ax.set_ylabel("share of problems ρ(τ)")
    seeds = part.seed.nunique()
    what = "tuned hyperparameters" if stage == "final" else "default hyperparameters"
    ax.set_title(
        f"Performance profile over {part.problem.nunique()} problems, {what}\n"
        f"cost: median steps over {seeds} held-out seeds, failures as never",
        fontsize=9,
    )
    handles, labels = ax.get_legend_handles_labels()
    _finish(plt, fig, runs, path, (handles, labels), (0, 0.1, 1, 1), 110)


def write_plots(
    runs: pd.DataFrame, curves: pd.DataFrame | None, trajectories: pd.DataFrame | None, out_dir: str
) -> list[str]:
    """Every plot the data allows; returns the paths written."""
    written = []
    palette = plotting.palette(list(dict.fromkeys(runs.optimizer)))
    if trajectories is not None and not trajectories.empty:
        shown = "final" if (runs.stage == "final").any() else "default"  # saddles: no tuned stage
        final = runs[(runs.stage == shown) & (runs.start == "default")]
        traj = trajectories.merge(final[["run_id", "problem"]], on="run_id")
        for problem_name, part in traj.groupby("problem", sort=False):
            factory = problem_registry.FACTORIES.get(problem_name)
            if factory is None:
                continue
            path = os.path.join(out_dir, f"trajectories_{problem_name}.png")
            trajectory_plot(factory(), final, part, path, palette)
            written.append(path)
    if curves is not None and not curves.empty:
        for stage in ("final", "default"):
            if (runs.stage == stage).any():
                path = os.path.join(out_dir, f"loss_curves_{'tuned' if stage == 'final' else 'default'}.png")
                loss_curve_plot(runs, curves, stage, path, palette)
                written.append(path)
    if runs.stage.isin(["search", "refine"]).any():
        path = os.path.join(out_dir, "lr_sensitivity.png")
        lr_sensitivity_plot(runs, path, palette)
        written.append(path)
    if (runs.stage == "lr-curve").any():
        path = os.path.join(out_dir, "escape_vs_lr.png")
        escape_curve_plot(runs, path, palette)
        written.append(path)
    if runs.problem.nunique() > 1 and not runs.f_saddle.notna().all():
        for stage, name in (("final", "tuned"), ("default", "default")):
            if (runs.stage == stage).any():
                path = os.path.join(out_dir, f"performance_profile_{name}.png")
                profile_plot(runs, stage, path, palette)
                written.append(path)
    return written
