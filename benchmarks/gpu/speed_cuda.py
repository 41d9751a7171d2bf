"""GPU speed benchmark: our five optimizers against torch.optim's fused and foreach implementations on
one CUDA device, with the device-to-device copy bandwidth measured in the same run.

    python -m benchmarks.gpu.speed_cuda [--out DIR ...] [--rules ...] [--workloads ...]

Built on benchmarks.speed (the one setup factory, CUDA-event timing in interleaved rounds after
warm-up, the byte-count floor); this driver picks the GPU workloads and peers, adds a copy-bandwidth
measurement of its own (a 1 GiB buffer, bytes read plus written), and writes the CSV after every
workload so that a run cut short still leaves its rows. Columns: see benchmarks.speed.run, plus
copy_GBps and floor_copy_ms (bytes each step must move / copy bandwidth). A second table
(speed_cuda_bf16_<device>.csv) times bf16 params, with ours also under fp32 master weights.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

import pandas as pd
import torch

from benchmarks.speed import bandwidth, timing
from benchmarks.speed.cases import MASTER_WEIGHTS
from benchmarks.speed.report import write_report
from benchmarks.speed.rules import RULES
from benchmarks.speed.run import run_speed

PEERS = ["ours", "torch-fused", "torch-foreach"]
# The multi-tensor workload first: it matters most and a run cut short still has it.
WORKLOADS = ["resnet50", "1M", "16M", "64M", "256M"]
COPY_NUMEL = 1 << 28  # fp32 elements: 1 GiB, far beyond the L2 cache
# bf16 params: ours, ours with fp32 master weights, and torch's fused and foreach (for the rules
# torch fuses, variants aside; bytes per element: 2 per value, or 4 for the master and the state with
# master weights).
BF16_RULES = [rule.name for rule in RULES.values() if rule.torch_fused and not rule.variant]
BF16_WORKLOADS = ["resnet50", "64M"]


def copy_bandwidth(device: torch.device, rounds: int = 5, per_round: int = 10) -> float:
    """Device-to-device copy bandwidth in GB/s, counting the bytes read and the bytes written."""
    copy, nbytes = bandwidth.device_copy(COPY_NUMEL, device)
    (seconds,) = timing.interleaved_samples([copy], device, rounds, per_round, warmup=3)
    return nbytes / (timing.summarize(seconds)["ms_median"] * 1e6)


def measure_table(
    jobs: list[tuple[str, str]],
    dtype: torch.dtype,
    implementations: list[str],
    csv_paths: list[str],
    copy_gbps: float,
    args: argparse.Namespace,
) -> None:
    """Times each (workload, rule) job, printing a line and rewriting the CSVs after each one."""
    frames = []
    for workload, rule in jobs:
        begin = time.perf_counter()
        df = run_speed(
            [rule],
            [workload],
            "cuda",
            implementations=implementations,
            rounds=args.rounds,
            per_round=args.per_round,
            progress=False,
            dtype=dtype,
        )
        df["copy_GBps"] = copy_gbps
        if os.environ.get("OPTIMIZERS_GIT_COMMIT") and (df.git_commit == "unknown").all():
            df["git_commit"] = os.environ["OPTIMIZERS_GIT_COMMIT"]  # a copy of the tree without .git
        df["floor_copy_ms"] = df.bytes_per_step / (copy_gbps * 1e6)
        frames.append(df)
        lines = ", ".join(
            f"{r.implementation} {r.ms_median:.3f} ms ({100 * r.floor_copy_ms / r.ms_median:.0f}%)"
            for r in df.itertuples()
        )
        print(f"{workload:>8} {rule:>8} {df.dtype.iloc[0]}: {lines} [{time.perf_counter() - begin:.0f} s]")
        table = pd.concat(frames, ignore_index=True)
        for path in csv_paths:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            table.to_csv(path, index=False)
        torch.cuda.empty_cache()
    for path in csv_paths:
        for written in [path, *write_report(path, os.path.dirname(path) or ".")]:
            print(written)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", nargs="+", default=["results/gpu"], help="folders the CSV and report go to")
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--workloads", nargs="+", default=WORKLOADS)
    parser.add_argument("--bf16-rules", nargs="+", default=BF16_RULES, choices=list(RULES))
    parser.add_argument("--bf16-workloads", nargs="+", default=BF16_WORKLOADS, help="none: no bf16 table")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=5)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("speed_cuda.py needs a CUDA device")

    device = torch.device("cuda")
    name = re.sub(r"[^A-Za-z0-9]+", "-", torch.cuda.get_device_name(device)).strip("-").lower()
    copy_gbps = copy_bandwidth(device)
    print(f"device-to-device copy: {copy_gbps:.0f} GB/s (read + write) on {torch.cuda.get_device_name()}")

    fp32_jobs = [(w, r) for w in args.workloads for r in args.rules]
    fp32_csvs = [os.path.join(o, f"speed_cuda_{name}.csv") for o in args.out]
    measure_table(fp32_jobs, torch.float32, PEERS, fp32_csvs, copy_gbps, args)
    bf16_jobs = [(w, r) for w in args.bf16_workloads if w != "none" for r in args.bf16_rules]
    if bf16_jobs:
        measure_table(
            bf16_jobs,
            torch.bfloat16,
            PEERS + [MASTER_WEIGHTS],
            [os.path.join(o, f"speed_cuda_bf16_{name}.csv") for o in args.out],
            copy_gbps,
            args,
        )


if __name__ == "__main__":
    main()
