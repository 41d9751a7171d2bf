"""python -m benchmarks.speed [--rules ...] [--workloads ...] [--device cpu|cuda] [--out results/speed]"""

from __future__ import annotations

import argparse
import os

from .report import write_report, write_speed_csv
from .rules import RULES
from .run import run_speed
from .shapes import DEFAULT_WORKLOADS, WORKLOADS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__)
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--rounds",
        type=int,
        default=30,
        help="rounds of interleaved steps (each implementation steps --per-round times a round)",
    )
    parser.add_argument("--per-round", type=int, default=1)
    parser.add_argument("--out", default="results/speed")
    args = parser.parse_args(argv)
    workloads = args.workloads or DEFAULT_WORKLOADS["cuda" if args.device.startswith("cuda") else "cpu"]
    df = run_speed(
        args.rules,
        workloads,
        args.device,
        rounds=args.rounds,
        per_round=args.per_round,
        units_dir=os.path.join(args.out, "units"),
    )
    csv = write_speed_csv(df, args.out, f"speed_{df.device_type.iloc[0]}.csv")
    for path in [csv, *write_report(csv, args.out)]:
        print(path)


if __name__ == "__main__":
    main()
