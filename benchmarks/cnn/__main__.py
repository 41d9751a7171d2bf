"""python -m benchmarks.cnn [--out results/cnn] [--dataset mnist1d|digits|mnist|fashion-mnist|cifar10
[--data-dir DIR]] [--optimizers NAME ...] [--seeds N] [--epochs N] [--schedule constant|step|cosine]
[--jobs N] [--quick] [--report-only]"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks import optimizer_specs

from .data import DATASETS, DataFileError, DataNotFoundError
from .report import write_cnn_report
from .schedules import SCHEDULES
from .sweep import run_cnn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cnn", description=__doc__)
    parser.add_argument(
        "--out", default="results/cnn", help="output folder (runs/ inside it makes reruns resume)"
    )
    parser.add_argument("--dataset", default="mnist1d", choices=DATASETS)
    parser.add_argument("--data-dir", help="folder with the dataset's files (mnist, fashion-mnist, cifar10)")
    parser.add_argument(
        "--optimizers",
        nargs="+",
        metavar="NAME",
        help=f"from {list(optimizer_specs.SPECS)} or 'torch' (default: {list(optimizer_specs.DEFAULT)})",
    )
    parser.add_argument("--seeds", type=int, help="held-out seeds at the chosen lr (default: per dataset)")
    parser.add_argument("--epochs", type=int, help="epochs of every run (default: per dataset)")
    parser.add_argument("--schedule", default="constant", choices=SCHEDULES)
    parser.add_argument("--quick", action="store_true", help="3 + 1 lrs, 3 epochs, at most 1,000 inputs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, help="runs at once (default: per dataset)")
    parser.add_argument("--threads", type=int, help="torch threads per run (default: per dataset)")
    parser.add_argument(
        "--report-only", action="store_true", help="only rewrite cnn.md and plots from the CSV"
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        optimizer_specs.get(args.optimizers)
    except ValueError as e:
        parser.error(str(e))
    csv = os.path.join(args.out, "cnn_epochs.csv")
    if not args.report_only:
        try:
            rows = run_cnn(
                args.optimizers,
                args.seeds,
                args.epochs,
                args.dataset,
                args.data_dir,
                args.out,
                device=args.device,
                quick=args.quick,
                progress=not args.no_progress,
                schedule=args.schedule,
                threads=args.threads,
                jobs=args.jobs,
            )
        except (DataNotFoundError, DataFileError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        a = rows.attrs
        print(f"cnn: {len(a['ran'])} runs trained, {len(a['loaded'])} loaded, {a['seconds']:.1f} s")
    for path in [csv, *write_cnn_report(csv, args.out, plots=not args.no_plots)]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
