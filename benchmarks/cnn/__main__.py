"""python -m benchmarks.cnn [--out results/cnn] [--dataset digits|mnist|fashion-mnist|cifar10 --data-dir DIR]
[--optimizers NAME ...] [--seeds 3] [--epochs N] [--quick] [--report-only]"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks import optimizer_specs

from .data import DATASETS, DataFileError, DataNotFoundError
from .report import write_cnn_report
from .sweep import run_cnn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cnn", description=__doc__)
    parser.add_argument(
        "--out", default="results/cnn", help="output folder (runs/ inside it makes reruns resume)"
    )
    parser.add_argument("--dataset", default="digits", choices=DATASETS)
    parser.add_argument("--data-dir", help="folder with the dataset's files (all but digits)")
    parser.add_argument(
        "--optimizers",
        nargs="+",
        metavar="NAME",
        help=f"from {list(optimizer_specs.SPECS)} or 'torch' (default: {list(optimizer_specs.DEFAULT)})",
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds at the chosen lr")
    parser.add_argument("--epochs", type=int, help="epochs of the reported runs (default: per dataset)")
    parser.add_argument("--quick", action="store_true", help="3 lrs, 3 epochs, at most 5,000 training images")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: 1 on digits, else every core)")
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
                threads=args.threads,
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
