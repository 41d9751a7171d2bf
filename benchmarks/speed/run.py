"""Runs the speed benchmark: every implementation of each rule on each workload, side by side with the
memory-bandwidth kernel that sets the byte-count floor, in interleaved rounds. One row per
(rule, implementation, workload, device) in a tidy DataFrame."""

from __future__ import annotations

import gc

import pandas as pd
import torch

from benchmarks.metadata import run_metadata
from benchmarks.resume import UnitStore

from . import bandwidth, timing
from .cases import build_case, implementations_of
from .shapes import WORKLOADS, numel

PEERS_OF_NOTE = {
    "momentum": "torch-fused",
    "adam": "torch-fused",
    "adamw": "torch-fused",
    "rmsprop": "torch-foreach",
    "diffgrad": "pytorch_optimizer",
}
"""The peer each rule's target is stated against (issue: >= 1x torch fused, >= 4x foreach RMSprop,
>= 5x pytorch_optimizer's DiffGrad)."""


def measure_workload(
    rule: str,
    workload: str,
    device: torch.device,
    implementations: list[str],
    rounds: int,
    per_round: int,
    dtype: torch.dtype = torch.float32,
) -> list[dict]:
    """Times the implementations of one rule on one workload, and the bandwidth kernel, interleaved."""
    cases = [build_case(rule, impl, workload, device, dtype) for impl in implementations]
    n = numel(WORKLOADS[workload]())
    kernels = [bandwidth.inplace_triad(n, device)]
    if device.type == "cuda":
        kernels.append(bandwidth.device_copy(n, device))
    fns = [c.step for c in cases] + [k for k, _ in kernels]
    samples = timing.interleaved_samples(fns, device, rounds, per_round)
    # The floor uses the fastest of the bandwidth kernels (the most demanding floor).
    gbps = max(
        nbytes / (timing.summarize(s)["ms_median"] * 1e6)
        for (_, nbytes), s in zip(kernels, samples[len(cases) :])
    )
    rows = []
    for case, s in zip(cases, samples):
        row = {
            "rule": rule,
            "implementation": case.implementation,
            "workload": workload,
            "numel": case.numel,
            "dtype": str(case.dtype).removeprefix("torch."),
            **timing.summarize(s),
            "bytes_per_step": case.bytes_per_step,
            "bandwidth_GBps": gbps,
        }
        row["floor_ms"] = case.bytes_per_step / (gbps * 1e6)
        row["pct_of_floor"] = 100.0 * row["floor_ms"] / row["ms_median"]
        rows.append(row)
    del cases, kernels
    gc.collect()
    return rows


def add_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """speedup_vs_best_peer and speedup_vs_target_peer: peer median time / our median time."""
    df = df.copy()
    df["speedup_vs_best_peer"] = float("nan")
    df["speedup_vs_target_peer"] = float("nan")
    for (rule, _, _, _), group in df.groupby(["rule", "workload", "device_type", "dtype"]):
        ours = group[group.implementation == "ours"]
        peers = group[~group.implementation.str.startswith("ours")]  # ours-master is not a peer
        if ours.empty or peers.empty:
            continue
        mine = ours.ms_median.iloc[0]
        index = ours.index[0]
        df.loc[index, "speedup_vs_best_peer"] = peers.ms_median.min() / mine
        target = peers[peers.implementation == PEERS_OF_NOTE[rule]]
        if not target.empty:
            df.loc[index, "speedup_vs_target_peer"] = target.ms_median.iloc[0] / mine
    return df


DEFAULT_WORKLOADS = {
    "cpu": ["1M", "16M", "64M", "resnet18", "resnet50"],
    "cuda": ["1M", "16M", "64M", "256M", "resnet50"],
}
"""The workloads a full run measures, by device type."""


def run_speed(
    rules: list[str],
    workloads: list[str],
    device: str = "cpu",
    implementations: list[str] | None = None,
    rounds: int = 30,
    per_round: int = 1,
    progress: bool = True,
    units_dir: str | None = None,
    resume: bool = True,
    dtype: torch.dtype = torch.float32,
) -> pd.DataFrame:
    """The speed table: see the module docstring. `implementations` None means all of each rule's.

    With units_dir, each (rule, workload) measurement is a unit saved there once it finishes (see
    benchmarks.resume): a rerun with the same settings loads it instead of measuring again, so an
    interrupted run resumes where it stopped; resume=False discards the saved units first. Each row
    carries the provenance of the run that measured it; attrs["units_loaded"] counts the loaded units."""
    from tqdm.auto import tqdm

    device = torch.device(device)
    store = UnitStore(units_dir, fresh=not resume) if units_dir is not None else None
    jobs = [(r, w) for r in rules for w in workloads]
    rows = []
    bar = tqdm(jobs, desc="speed", unit="measurement", disable=not progress)
    for rule, workload in bar:
        bar.set_postfix_str(f"{rule} on {workload}")
        candidates = implementations_of(rule, dtype)
        impls = [i for i in candidates if implementations is None or i in implementations]

        def measure(rule=rule, workload=workload, impls=impls) -> list[dict]:
            meta = run_metadata(device)
            measured = measure_workload(rule, workload, device, impls, rounds, per_round, dtype)
            return [{**row, "device_type": device.type, **meta} for row in measured]

        if store is None:
            rows += measure()
        else:
            key = {
                "rule": rule,
                "workload": workload,
                "device": str(device),
                "implementations": impls,
                "rounds": rounds,
                "per_round": per_round,
                "torch_version": torch.__version__,
            }
            name = f"{device.type}-{rule}-{workload}"
            if dtype != torch.float32:
                key["dtype"] = str(dtype)
                name += f"-{str(dtype).removeprefix('torch.')}"
            unit, _ = store.get_or_compute(name, key, measure)
            rows += unit
    df = add_ratios(pd.DataFrame(rows))
    df.attrs["units"] = len(jobs)
    df.attrs["units_loaded"] = store.loaded if store is not None else 0
    return df
