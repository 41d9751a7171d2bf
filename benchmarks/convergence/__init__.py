"""Convergence harness: the fused optimizers on test functions and saddles with known answers.

    from benchmarks.convergence import run_sweep, write_report
    runs = run_sweep(out_dir="results/convergence")          # runs.csv, curves.csv, trajectories.csv
    write_report("results/convergence/runs.csv", "results/convergence")   # convergence.md, *.png

Problems live in benchmarks.problems, optimizer configurations in benchmarks.optimizer_specs; the runner
(runner.py) batches every run of a stage into one optimization, tuning.py holds the protocol, metrics.py
the scoring, tables.py and plots.py read only the CSVs. See README.md for the columns.
"""

from .metrics import headline, select_trial
from .report import write_report
from .runner import BatchResult, Slab, run_batch
from .tuning import TRIALS, run_sweep

__all__ = [
    "TRIALS",
    "BatchResult",
    "Slab",
    "run_batch",
    "run_sweep",
    "headline",
    "select_trial",
    "write_report",
]
