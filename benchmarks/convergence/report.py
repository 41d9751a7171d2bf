"""The report step: convergence.md and the PNG plots from the CSVs of a sweep (nothing is re-run)."""

from __future__ import annotations

import json
import os

import pandas as pd

from benchmarks.resume import write_text

from .plots import write_plots
from .tables import markdown_report


def write_report(csv_path: str, out_dir: str, plots: bool = True) -> list[str]:
    """Reads runs.csv (and curves.csv, trajectories.csv, sweep.json beside it, when present) and writes
    convergence.md and the plots into out_dir; returns the paths written."""
    runs = pd.read_csv(csv_path)
    here = os.path.dirname(os.path.abspath(csv_path))

    def sibling(name: str) -> pd.DataFrame | None:
        path = os.path.join(here, name)
        return pd.read_csv(path) if os.path.exists(path) else None

    seconds = None
    if os.path.exists(os.path.join(here, "sweep.json")):
        with open(os.path.join(here, "sweep.json")) as f:
            seconds = json.load(f).get("seconds")
    os.makedirs(out_dir, exist_ok=True)
    md = os.path.join(out_dir, "convergence.md")
    write_text(md, markdown_report(runs, seconds) + "\n")
    written = [md]
    if plots:
        written += write_plots(runs, sibling("curves.csv"), sibling("trajectories.csv"), out_dir)
    return written
