"""The report step: cnn.md and the PNG plots from the epochs CSV (nothing is re-run)."""

from __future__ import annotations

import json
import os

import pandas as pd

from benchmarks.resume import atomic_write

from .plots import write_plots
from .tables import markdown_report


def write_cnn_report(csv_path: str, out_dir: str, plots: bool = True) -> list[str]:
    """Reads cnn_epochs.csv (and cnn_run.json beside it, for the last call's wall time, when present)
    and writes cnn.md and the plots into out_dir; returns the paths written."""
    rows = pd.read_csv(csv_path)
    summary = os.path.join(os.path.dirname(os.path.abspath(csv_path)), "cnn_run.json")
    last_call = None
    if os.path.exists(summary):
        with open(summary) as f:
            last_call = json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    md = os.path.join(out_dir, "cnn.md")
    text = (markdown_report(rows, last_call) + "\n").encode()
    atomic_write(md, lambda f: f.write(text))
    return [md, *(write_plots(rows, out_dir) if plots else [])]
