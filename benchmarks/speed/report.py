"""Speed tables and plots from the speed CSV alone (nothing is re-run)."""

from __future__ import annotations

import os

import pandas as pd

from benchmarks.metadata import png_metadata, provenance_line
from benchmarks.resume import atomic_write


def markdown_table(df: pd.DataFrame) -> str:
    """One row per (device, workload, rule): our time, % of floor, and each peer's time and our speedup."""
    lines = []
    for device, per_device in df.groupby("device", sort=False):
        meta = per_device.iloc[0].to_dict()
        dtypes = ", ".join(str(d) for d in per_device.dtype.unique()) if "dtype" in per_device else ""
        lines += [
            f"### {device}" + (f" · {dtypes} params" if dtypes and dtypes != "float32" else ""),
            "",
            provenance_line(meta),
            "",
            f"Bandwidth floor: bytes each rule must move ÷ in-place triad bandwidth measured in the "
            f"same run. Times are the median [20th–80th percentile] of {int(meta['samples'])} steps. "
            "A kernel at 100% of the floor can be at most (100 ÷ peer's % of floor)× faster than a peer.",
            "",
            "| workload | rule | ours ms | % of floor | peer | peer ms | peer % of floor | speedup |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for (workload, rule), group in per_device.groupby(["workload", "rule"], sort=False):
            is_ours = group.implementation.str.startswith("ours")
            # ours, then (bf16/fp16) ours-master (master weights), each against every peer
            for _, ours in group[is_ours].iterrows():
                what = rule if ours.implementation == "ours" else f"{rule} ({ours.implementation})"
                ours_cell = f"{ours.ms_median:.2f} [{ours.ms_p20:.2f}–{ours.ms_p80:.2f}]"
                for _, peer in group[~is_ours].iterrows():
                    lines.append(
                        f"| {workload} | {what} | {ours_cell} | {ours.pct_of_floor:.0f}% | "
                        f"{peer.implementation} | {peer.ms_median:.2f} | {peer.pct_of_floor:.0f}% | "
                        f"{peer.ms_median / ours.ms_median:.2f}× |"
                    )
        lines.append("")
    return "\n".join(lines)


def bar_plot(df: pd.DataFrame, path: str) -> None:
    """Time per step (log scale) of every implementation, one panel per workload, and % of floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    workloads = list(dict.fromkeys(df.workload))
    fig, axes = plt.subplots(2, len(workloads), figsize=(max(4.2 * len(workloads), 8.4), 7.5), squeeze=False)
    for col, workload in enumerate(workloads):
        part = df[df.workload == workload]
        ax = axes[0][col]
        sns.barplot(data=part, x="rule", y="ms_median", hue="implementation", ax=ax)
        ax.set_yscale("log")  # after drawing: seaborn 0.13's log_scale=True leaves the bars invisible
        ax.set_title(f"{workload} ({part.numel.iloc[0] / 1e6:.1f}M params)")
        ax.set_ylabel("ms per step (median)")
        ax.legend(fontsize=7)
        ax = axes[1][col]
        ours = part[part.implementation == "ours"]
        sns.barplot(data=ours, x="rule", y="pct_of_floor", ax=ax, color="tab:blue")
        ax.axhline(100, color="black", lw=0.8)
        ax.axhline(85, color="tab:red", lw=0.8, ls="--")
        ax.set_ylabel("ours: % of byte-count floor")
    meta = df.iloc[0]
    dtype = meta.get("dtype", "float32")  # not meta.dtype: that is the Series' own dtype
    params = f", {dtype} params" if dtype != "float32" else ""
    fig.suptitle(
        f"Optimizer step time on {meta.device}{params}, torch {meta.torch_version}, commit {meta.git_commit}"
    )
    fig.text(0.01, 0.005, f"{meta.command} · {meta.threads} threads", fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110, metadata=png_metadata(meta.to_dict()))
    plt.close(fig)


def write_report(csv_path: str, out_dir: str, plots: bool = True) -> list[str]:
    """<stem>.md and <stem>.png (the CSV's name, in out_dir) from the CSV alone; returns the paths
    written."""
    df = pd.read_csv(csv_path)
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(csv_path))[0]
    md, png = os.path.join(out_dir, f"{stem}.md"), os.path.join(out_dir, f"{stem}.png")
    text = f"# Optimizer step time\n\n{markdown_table(df)}\n".encode()
    atomic_write(md, lambda f: f.write(text))
    if not plots:
        return [md]
    bar_plot(df, png)
    return [md, png]
