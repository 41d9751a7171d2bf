"""The report step: cnn.md and the PNG plots from the epochs CSV (nothing is re-run)."""

from __future__ import annotations

import os

from benchmarks.result_set import ResultSet
from benchmarks.resume import write_text

from .plots import write_plots
from .tables import markdown_report

REPORT_COLUMNS = (
    *("command", "git_commit", "package_version", "torch_version", "device", "threads"),
    *("stage", "dataset", "optimizer", "lr", "seed", "schedule", "model", "batch_size", "epochs_budget"),
    *("train_size", "val_size", "test_size", "loss_target", "accuracy_target"),
    *("selection_epochs", "lr_extra"),
    *("epoch", "train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "diverged"),
    *("train_seconds", "eval_seconds", "elapsed_seconds", "step_ms"),
)
"""What the tables and plots read: a CSV without one of them is refused in one line."""
NUMERIC = ("lr", "seed", "epoch", "train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy")


def write_cnn_report(csv_path: str, out_dir: str, plots: bool = True) -> list[str]:
    """Reads cnn_epochs.csv (checked against the manifest.json beside it when there is one, see
    benchmarks/result_set.py) and cnn_run.json (for the last call's wall time, when present) and writes
    cnn.md and the plots into out_dir; returns the paths written. A damaged or incomplete set raises
    ResultFileError."""
    folder, name = os.path.split(os.path.abspath(csv_path))
    results = ResultSet(folder)
    rows = results.csv(name, REPORT_COLUMNS, NUMERIC)
    last_call = results.json("cnn_run.json") if results.has("cnn_run.json") else None
    os.makedirs(out_dir, exist_ok=True)
    md = os.path.join(out_dir, "cnn.md")
    write_text(md, markdown_report(rows, last_call) + "\n")
    return [md, *(write_plots(rows, out_dir) if plots else [])]
