"""Speed tables and plots from the speed CSV alone (nothing is re-run; the columns are documented in
benchmarks.speed.run). Speedups are ratios of medians with their 95% bootstrap interval over the
interleaved rounds (benchmarks.speed.intervals), "parity" when the interval holds 1.0."""

from __future__ import annotations

import math
import os
import textwrap

import pandas as pd

from benchmarks.metadata import png_metadata, provenance_line
from benchmarks.result_set import ResultSet, own_manifest, writing
from benchmarks.resume import atomic_write

from . import intervals
from .cases import is_ours
from .run import speedup_of

# One colour per implementation across every panel and plot (Okabe–Ito, then grey and brown).
COLOURS = {
    "ours": "#0072B2",
    "ours-master": "#56B4E9",
    "torch-fused": "#D55E00",
    "torch-foreach": "#E69F00",
    "torch-forloop": "#F0E442",
    "torch-compiled": "#CC79A7",
    "deepspeed": "#009E73",
    "bitsandbytes": "#999999",
    "pytorch_optimizer": "#8C564B",
}
OVERHEAD_WORKLOADS = ("overhead", "many-small")
"""Workloads of many small tensors, whose time per tensor is tabulated apart."""

TIME_AXIS_SPAN = 3.0
"""The time axis of a panel runs to this many times the slowest of ours, the fastest peer and the
floor (over the panel's rules): slower bars stop at the edge with their time written there."""

SPEEDUP_AXIS_LIMIT = 4.0
"""The speedup axis ends here at the most, so that the ratios near parity stay readable; a larger
ratio's bar stops at the edge with its value written there."""


def _contenders_ms(part: pd.DataFrame) -> float:
    """The slowest, over rules, of ours, the fastest peer and the floor: what a panel must show."""
    scale = 0.0
    for _, group in part.groupby("rule", sort=False):
        mine = group.implementation.map(is_ours)
        peers = group.ms_median[~mine]
        fastest_peer = peers.min() if not peers.empty else 0.0
        scale = max(scale, group.ms_median[mine].max(), fastest_peer, group.floor_ms.max())
    return scale


def _spread(row: pd.Series) -> str:
    if "ms_p20" in row and not pd.isna(row.get("ms_p20")):
        return f"{row.ms_median:.2f} [{row.ms_p20:.2f}–{row.ms_p80:.2f}]"
    return f"{row.ms_median:.2f}"


def _what(rule: str, implementation: str) -> str:
    return rule if implementation == "ours" else f"{rule} ({implementation})"


def _sections(df: pd.DataFrame):
    for device, per_device in df.groupby("device", sort=False):
        meta = per_device.iloc[0].to_dict()
        dtypes = ", ".join(str(d) for d in per_device.dtype.unique()) if "dtype" in per_device else ""
        title = f"### {device}" + (f" · {dtypes} params" if dtypes and dtypes != "float32" else "")
        yield title, meta, per_device


def comparison_table(df: pd.DataFrame) -> list[str]:
    """Ours (and ours-master) against every peer, one line each."""
    lines = [
        "| workload | rule | ours ms | % of floor | peer | peer ms | peer % of floor | speedup (95% CI) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (workload, rule), group in df.groupby(["workload", "rule"], sort=False):
        mine = group.implementation.map(is_ours)
        for _, ours in group[mine].iterrows():
            for _, peer in group[~mine].iterrows():
                lines.append(
                    f"| {workload} | {_what(rule, ours.implementation)} | {_spread(ours)} | "
                    f"{ours.pct_of_floor:.0f}% | {peer.implementation} | {_spread(peer)} | "
                    f"{peer.pct_of_floor:.0f}% | {speedup_of(ours, peer)} |"
                )
    return lines


def best_peer_table(df: pd.DataFrame) -> list[str]:
    """Ours against the fastest peer of each rule and workload."""
    lines = [
        "| workload | rule | ours ms | best peer | its ms | speedup (95% CI) |",
        "|---|---|---|---|---|---|",
    ]
    for (workload, rule), group in df.groupby(["workload", "rule"], sort=False):
        ours = group[group.implementation == "ours"]
        peers = group[~group.implementation.map(is_ours)]
        if ours.empty or peers.empty:
            continue
        ours, best = ours.iloc[0], peers.loc[peers.ms_median.idxmin()]
        lines.append(
            f"| {workload} | {rule} | {_spread(ours)} | {best.implementation} | {_spread(best)} | "
            f"{speedup_of(ours, best)} |"
        )
    return lines


def overhead_table(df: pd.DataFrame) -> list[str]:
    """Time per tensor on the many-tensor workloads: the per-step Python and dispatch overhead
    (on `overhead`, one-element tensors, it is all there is)."""
    if "tensors" not in df:
        return []
    part = df[df.workload.isin(OVERHEAD_WORKLOADS)]
    if part.empty:
        return []
    lines = [
        "| workload | tensors | rule | implementation | ms per step | µs per tensor | ours vs it (95% CI) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (workload, rule), group in part.groupby(["workload", "rule"], sort=False):
        ours = group[group.implementation == "ours"]
        for _, row in group.iterrows():
            versus = "" if ours.empty or row.implementation == "ours" else str(speedup_of(ours.iloc[0], row))
            lines.append(
                f"| {workload} | {int(row.tensors)} | {rule} | {row.implementation} | {_spread(row)} | "
                f"{1e3 * row.ms_median / row.tensors:.2f} | {versus} |"
            )
    return lines


def memory_table(df: pd.DataFrame) -> list[str]:
    """Optimizer state bytes per param, measured from the state tensors, one row per rule and a
    column per implementation, on the workload with the most elements per tensor (where per-tensor
    step counts weigh nothing)."""
    if "state_bytes_per_param" not in df or "tensors" not in df:
        return []
    per_tensor = df.numel / df.tensors
    workload = df.loc[per_tensor.idxmax(), "workload"]
    part = df[df.workload == workload]
    impls = _implementations(part)
    lines = [
        f"State bytes per param after the timed steps, from the optimizer's state tensors (workload "
        f"{workload}; step counts and fp32 master weights included; — where an implementation has "
        "no such rule):",
        "",
        "| rule | " + " | ".join(impls) + " |",
        "|---|" + "---|" * len(impls),
    ]
    for rule, group in part.groupby("rule", sort=False):
        by_impl = dict(zip(group.implementation, group.state_bytes_per_param))
        cells = [f"{by_impl[i]:.2f}" if i in by_impl else "—" for i in impls]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    return lines


def left_out_notes(df: pd.DataFrame) -> list[str]:
    """The peers a run did not measure, with the reason and where."""
    if "left_out" not in df:
        return []
    where: dict[tuple[str, str], list[str]] = {}
    for (workload, rule), group in df.groupby(["workload", "rule"], sort=False):
        texts = [t for t in group.left_out.unique() if isinstance(t, str) and t]
        items = dict.fromkeys(item for text in texts for item in text.split("; "))
        for item in items:
            implementation, _, reason = item.partition(": ")
            where.setdefault((implementation, reason), []).append(f"{rule} on {workload}")
    return [f"- {impl} left out ({reason}): {', '.join(places)}" for (impl, reason), places in where.items()]


def markdown_table(df: pd.DataFrame) -> str:
    """The report's sections: per device (and dtype), ours against each peer, the best peer, the
    per-tensor overhead, the state memory and the peers left out."""
    lines = []
    for title, meta, part in _sections(df):
        rounds = ""
        if "per_round" in meta and not pd.isna(meta.get("per_round")):
            rounds = f" in {int(meta['samples']) // int(meta['per_round'])} interleaved rounds"
        lines += [
            title,
            "",
            provenance_line(meta),
            "",
            "Bandwidth floor: bytes each rule must move ÷ in-place triad bandwidth measured in the "
            f"same run. Times are the median [20th–80th percentile] of {int(meta['samples'])} steps"
            f"{rounds}. Speedup: the peer's median time ÷ ours, with its 95% bootstrap interval "
            f"({intervals.RESAMPLES} resamples of whole rounds, the same rounds for both); *parity* when "
            "the interval holds 1. A kernel at 100% of the floor can be at most (100 ÷ peer's % of "
            "floor)× faster than a peer.",
            "",
            "#### Ours against the fastest peer",
            "",
            *best_peer_table(part),
            "",
            "#### Ours against every peer",
            "",
            *comparison_table(part),
            "",
        ]
        overhead = overhead_table(part)
        if overhead:
            lines += ["#### Per-tensor overhead (many small tensors)", "", *overhead, ""]
        memory = memory_table(part)
        if memory:
            lines += ["#### Optimizer state memory", "", *memory, ""]
        notes = left_out_notes(part)
        if notes:
            lines += ["#### Peers not measured", "", *notes, ""]
    return "\n".join(lines)


def _grid(count: int, columns: int = 2) -> tuple[int, int]:
    columns = min(columns, count)
    return math.ceil(count / columns), columns


def _figure(plt, panels: int, rows_per_panel: list[int]):
    """A grid of panels (two columns where there are two or more), each row as tall as its panel
    with the most bars, under constrained layout: the title, legend and footer get room of their own."""
    rows, cols = _grid(panels)
    row_height = [max(rows_per_panel[r * cols : (r + 1) * cols]) * 0.2 + 1.0 for r in range(rows)]
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(6.2 * cols, sum(row_height) + 2.0),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"height_ratios": row_height},
    )
    for k in range(panels, rows * cols):
        axes[k // cols][k % cols].axis("off")
    return fig, [axes[k // cols][k % cols] for k in range(panels)], cols


def _finish(fig, df: pd.DataFrame, what: str, handles: list, columns: int, path: str) -> None:
    """The title (what; machine, versions, commit; the command) on lines that fit the figure, the
    legend below the panels and outside them (it covers no bar); then saved. Constrained layout
    makes room for both (a footer of its own would overlap the legend)."""
    meta = df.iloc[0]
    dtype = meta.get("dtype", "float32")  # not meta.dtype: that is the Series' own dtype
    params = f", {dtype} params" if dtype != "float32" else ""
    command = textwrap.fill(f"{meta.command} · {meta.threads} threads", width=100 * columns)
    fig.suptitle(
        f"{what}{params}\n{meta.device} · torch {meta.torch_version} · commit {meta.git_commit}\n{command}",
        fontsize=9,
    )
    ncol = 4 if columns > 1 else 2
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.savefig(path, dpi=110, metadata=png_metadata(df.iloc[0].to_dict()))


def _implementations(df: pd.DataFrame) -> list[str]:
    known = [impl for impl in COLOURS if impl in set(df.implementation)]
    return known + sorted(set(df.implementation) - set(known))


def _colour(implementation: str):
    return COLOURS.get(implementation, "#555555")


def _title(workload: str, part: pd.DataFrame) -> str:
    n = int(part.numel.iloc[0])
    size = f"{n / 1e6:.1f}M params" if n >= 100_000 else f"{n:,} params"
    tensors = f", {int(part.tensors.iloc[0])} tensors" if "tensors" in part else ""
    return f"{workload} ({size}{tensors})"


def _bar(ax, y: float, value: float, low: float, high: float, limit: float, colour, label: str) -> None:
    """A horizontal bar with its interval [low, high]; one that runs past the axis' limit stops
    there, its value written at the end."""
    ax.barh(y, min(value, limit), height=0.8, color=colour, edgecolor="white", linewidth=0.4)
    if value > limit:
        ax.text(limit * 0.99, y, f"{label} ▸", ha="right", va="center", fontsize=6.5, color="black")
    elif not (math.isnan(low) or math.isnan(high)):  # NaN: no interval (a table without samples)
        xerr = [[value - low], [min(high, limit) - value]]
        ax.errorbar(value, y, xerr=xerr, fmt="none", ecolor="#333333", lw=0.8, capsize=2)


def time_plot(df: pd.DataFrame, path: str) -> None:
    """Time per step on a linear axis, one panel per workload: a bar per implementation (median)
    with its 20th–80th percentile, grouped by rule, and each rule's byte-count floor."""
    from benchmarks.plotting import pyplot

    plt, _ = pyplot()

    workloads = list(dict.fromkeys(df.workload))
    impls = _implementations(df)
    heights = [len(df[df.workload == w]) + df[df.workload == w].rule.nunique() for w in workloads]
    fig, axes, cols = _figure(plt, len(workloads), heights)
    for ax, workload in zip(axes, workloads):
        part = df[df.workload == workload]
        limit = TIME_AXIS_SPAN * _contenders_ms(part)
        y, ticks, labels = 0.0, [], []
        for rule, group in part.groupby("rule", sort=False):
            group = group.set_index("implementation").reindex(
                [i for i in impls if i in set(group.implementation)]
            )
            top = y
            for impl, row in group.iterrows():
                low, high = row.get("ms_p20", row.ms_median), row.get("ms_p80", row.ms_median)
                _bar(ax, y, row.ms_median, low, high, limit, _colour(impl), f"{row.ms_median:.3g} ms")
                y += 1
            floor = group.floor_ms.iloc[0]
            ax.plot([floor, floor], [top - 0.5, y - 0.5], color="black", ls="--", lw=1.0)
            ticks.append((top + y - 1) / 2)
            labels.append(rule)
            y += 1  # a gap between rules
        _label_panel(ax, ticks, labels, limit, "ms per step (median; line: 20th–80th percentile)")
        ax.set_title(_title(workload, part), fontsize=9)
    floor = "byte-count floor (bytes ÷ triad bandwidth)"
    _legend_and_save(plt, fig, df, "Optimizer step time", impls, floor, cols, path)


def _label_panel(ax, ticks: list, labels: list, right: float, xlabel: str) -> None:
    """One panel's rule labels (top to bottom), its linear x axis from 0 and the axis label."""
    ax.set_yticks(ticks, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, right)
    ax.set_xlabel(xlabel)


def _legend_and_save(plt, fig, df: pd.DataFrame, title: str, impls: list, line: str, cols: int, path: str):
    """The figure's legend (a colour per implementation, the dashed reference line) and the file."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color=_colour(i), label=i) for i in impls]
    handles.append(Line2D([], [], color="black", ls="--", label=line))
    _finish(fig, df, title, handles, cols, path)
    plt.close(fig)


def speedup_plot(df: pd.DataFrame, path: str) -> None:
    """Ours' speedup over each peer (peer's median time ÷ ours) with its 95% bootstrap interval, on a
    linear axis, one panel per workload; the line at 1 is parity."""
    from benchmarks.plotting import pyplot

    plt, _ = pyplot()

    workloads = list(dict.fromkeys(df.workload))
    impls = [i for i in _implementations(df) if not is_ours(i)]
    counts = [
        len(df[(df.workload == w) & ~df.implementation.map(is_ours)]) + df.rule.nunique() for w in workloads
    ]
    fig, axes, cols = _figure(plt, len(workloads), counts)
    for ax, workload in zip(axes, workloads):
        part = df[df.workload == workload]
        y, ticks, labels, right = 0.0, [], [], 1.0
        for rule, group in part.groupby("rule", sort=False):
            ours = group[group.implementation == "ours"]
            peers = group[~group.implementation.map(is_ours)]
            if ours.empty or peers.empty:
                continue
            top = y
            for impl in [i for i in impls if i in set(peers.implementation)]:
                ratio = speedup_of(ours.iloc[0], peers[peers.implementation == impl].iloc[0])
                label = f"{ratio.value:.3g}×"
                _bar(ax, y, ratio.value, ratio.lo, ratio.hi, SPEEDUP_AXIS_LIMIT, _colour(impl), label)
                reach = ratio.hi if ratio.has_interval else ratio.value
                right = max(right, min(reach, SPEEDUP_AXIS_LIMIT))
                y += 1
            ticks.append((top + y - 1) / 2)
            labels.append(rule)
            y += 1
        ax.axvline(1.0, color="black", lw=1.0, ls="--")
        xlabel = "speedup of ours: peer's median time ÷ ours (line: 95% bootstrap interval)"
        _label_panel(ax, ticks, labels, min(right * 1.08, SPEEDUP_AXIS_LIMIT), xlabel)
        ax.set_title(_title(workload, part), fontsize=9)
    _legend_and_save(plt, fig, df, "Speedup of ours over each peer", impls, "parity (1×)", cols, path)


REPORT_COLUMNS = (
    *("command", "git_commit", "package_version", "torch_version", "device", "threads"),
    *("workload", "rule", "implementation", "ms_median", "pct_of_floor"),
)
"""What every speed table must hold (the report refuses a CSV without one of them in one line)."""


def write_speed_csv(df: pd.DataFrame, out_dir: str, name: str) -> str:
    """The speed table `name` in out_dir as its own result set (with <stem>.manifest.json, so that a
    truncated or replaced table is refused by the report); returns its path."""
    with writing(out_dir, own_manifest(name)) as result:
        return result.csv(name, df)


def write_report(csv_path: str, out_dir: str, plots: bool = True) -> list[str]:
    """<stem>.md, <stem>.png (time per step) and <stem>_speedup.png (the CSV's name, in out_dir)
    from the CSV alone (checked against its manifest when it has one); returns the paths written."""
    folder, name = os.path.split(os.path.abspath(csv_path))
    df = ResultSet(folder, own_manifest(name)).csv(name, REPORT_COLUMNS, ("ms_median", "pct_of_floor"))
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(csv_path))[0]
    md = os.path.join(out_dir, f"{stem}.md")
    text = f"# Optimizer step time\n\n{markdown_table(df)}\n".encode()
    atomic_write(md, lambda f: f.write(text))
    if not plots:
        return [md]
    png, speedup_png = os.path.join(out_dir, f"{stem}.png"), os.path.join(out_dir, f"{stem}_speedup.png")
    time_plot(df, png)
    speedup_plot(df, speedup_png)
    return [md, png, speedup_png]
