"""The report step: convergence.md and the PNG plots from the CSVs of a sweep (nothing is re-run).

The CSVs and sweep.json are one result set (benchmarks.result_set): each is checked against the set's
manifest and for the columns the tables and plots read, so a damaged, truncated or mixed set is refused
with a ResultFileError that names the file, never tabulated."""

from __future__ import annotations

import os

from benchmarks.result_set import ResultFileError, ResultSet
from benchmarks.resume import write_text

from .plots import write_plots
from .tables import markdown_report

RUNS_COLUMNS = (
    "run_id",
    "optimizer",
    "hyperparams",
    "problem",
    "dim",
    "criterion",
    "f_min",
    "f_saddle",
    "lr",
    "seed",
    "start",
    "status",
    "success",
    "diverged",
    "steps_to_threshold",
    "stop_step",
    "final_loss",
    "threshold",
    "escaped",
    "steps_to_escape",
    "budget",
    "dtype",
    "stage",
    "command",
    "package_version",
    "torch_version",
    "git_commit",
    "device",
    "threads",
)
"""The columns of runs.csv that the tables and plots read (the sweep writes more: README.md)."""
RUNS_NUMERIC = (
    "run_id",
    "dim",
    "f_min",
    "f_saddle",
    "lr",
    "seed",
    "steps_to_threshold",
    "stop_step",
    "final_loss",
    "threshold",
    "steps_to_escape",
    "budget",
    "threads",
)
CURVES_COLUMNS = ("run_id", "step", "loss")
TRAJECTORY_COLUMNS = ("run_id", "step", "x", "y")


def read_sweep(folder: str) -> tuple:
    """(runs, curves, trajectories, seconds) of the sweep in `folder`; curves and trajectories are None
    (and seconds None) when the set holds no such file. ResultFileError for a damaged set."""
    results = ResultSet(folder)
    runs = results.csv("runs.csv", RUNS_COLUMNS, RUNS_NUMERIC)

    def table(name: str, columns: tuple[str, ...]):
        return results.csv(name, columns, columns) if results.has(name) else None

    seconds = None
    if results.has("sweep.json"):
        seconds = results.json("sweep.json", ("seconds",))["seconds"]
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise ResultFileError(
                results.path("sweep.json"), f"'seconds' must be a number of seconds, got {seconds!r}"
            )
    return runs, table("curves.csv", CURVES_COLUMNS), table("trajectories.csv", TRAJECTORY_COLUMNS), seconds


def write_report(csv_path: str, out_dir: str, plots: bool = True) -> list[str]:
    """Reads runs.csv (and curves.csv, trajectories.csv, sweep.json of its set, when it holds them) and
    writes convergence.md and the plots into out_dir; returns the paths written."""
    if os.path.basename(csv_path) != "runs.csv":
        raise ValueError(f"expected the path of a sweep's runs.csv, got {csv_path!r}")
    runs, curves, trajectories, seconds = read_sweep(os.path.dirname(csv_path) or ".")
    os.makedirs(out_dir, exist_ok=True)
    md = os.path.join(out_dir, "convergence.md")
    write_text(md, markdown_report(runs, seconds) + "\n")
    written = [md]
    if plots:
        written += write_plots(runs, curves, trajectories, out_dir)
    return written
