"""python -m benchmarks.convergence [--out results/convergence] [--steps 1000] [--seeds 10]
[--optimizers NAME ...] [--problems NAME ...] [--report-only]"""

from __future__ import annotations

import argparse
import os

from benchmarks import optimizer_specs, problems
from benchmarks.result_set import ResultFileError

from .report import write_report
from .tuning import run_sweep


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.convergence", description=__doc__)
    parser.add_argument("--out", default="results/convergence", help="output folder")
    parser.add_argument("--steps", type=int, default=1000, help="step budget of every run")
    parser.add_argument(
        "--seeds", type=int, default=10, help="tuning seeds, and held-out seeds per reported row"
    )
    parser.add_argument(
        "--optimizers",
        nargs="+",
        metavar="NAME",
        help=f"from {list(optimizer_specs.SPECS)} or 'torch' (default: {list(optimizer_specs.DEFAULT)})",
    )
    parser.add_argument(
        "--problems", nargs="+", metavar="NAME", choices=list(problems.FACTORIES), help="default: all"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: the tensors are small, and extra threads only wait on each other)",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="only rewrite tables and plots from OUT/runs.csv"
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    csv = os.path.join(args.out, "runs.csv")
    if not args.report_only:
        runs = run_sweep(
            args.optimizers,
            args.problems,
            seeds=args.seeds,
            steps=args.steps,
            out_dir=args.out,
            progress=not args.no_progress,
            threads=args.threads,
        )
        print(f"sweep: {len(runs)} runs in {runs.attrs['seconds']:.1f} s")
    try:
        written = write_report(csv, args.out, plots=not args.no_plots)
    except ResultFileError as e:  # a damaged, truncated or mixed result set
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    for path in [csv, *written]:
        print(path)


if __name__ == "__main__":
    main()
