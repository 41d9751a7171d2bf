"""Runs the speed benchmark: every implementation of each rule on each workload, side by side with the
memory-bandwidth kernel that sets the byte-count floor, in interleaved rounds. One row per
(rule, implementation, workload, device) in a tidy DataFrame.

Columns beside the provenance (benchmarks.metadata): rule, implementation, workload, numel,
tensors, dtype; ms_median, ms_p20, ms_p80, samples (benchmarks.speed.timing); samples_ms (every
timed step in milliseconds, in order, space-separated) and per_round, from which the speedups'
bootstrap intervals are computed (benchmarks.speed.intervals); bytes_per_step, bandwidth_GBps,
floor_ms, pct_of_floor; state_bytes and state_bytes_per_param (the optimizer's state tensors after
the timed steps); left_out (the peers of this rule not measured here, and why); on ours' row,
speedup_vs_best_peer and speedup_vs_target_peer with their _lo and _hi bounds, and best_peer.
"""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pandas as pd
import torch

from benchmarks.metadata import run_metadata
from benchmarks.resume import UnitStore

from . import bandwidth, intervals, timing
from .cases import build_case, implementations_of, is_ours, left_out_reason, make_grads, make_params
from .rules import RULES
from .shapes import WORKLOADS, default_rounds, numel


def measure_workload(
    rule: str,
    workload: str,
    device: torch.device,
    implementations: list[str],
    rounds: int,
    per_round: int,
    dtype: torch.dtype = torch.float32,
) -> list[dict]:
    """Times the implementations of one rule on one workload, and the bandwidth kernel, interleaved.
    A peer that is left out (left_out_reason) or fails to build is named in every row's left_out."""
    grads, initial = make_grads(workload, device, dtype), make_params(workload, device, dtype)
    cases, left_out = [], {}
    for impl in implementations:
        reason = None if is_ours(impl) else left_out_reason(impl, workload, device)
        if reason is None:
            try:
                cases.append(build_case(rule, impl, workload, device, dtype, grads=grads, initial=initial))
                continue
            except Exception as error:  # a peer's package that cannot build or run here
                if is_ours(impl):
                    raise
                reason = f"failed to build: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
                warnings.warn(f"{impl} left out of {rule} on {workload}: {reason}", stacklevel=2)
        left_out[impl] = reason
    n = numel(WORKLOADS[workload]())
    kernels = [bandwidth.inplace_triad(n, device)]
    if device.type == "cuda":
        kernels.append(bandwidth.device_copy(n, device))
    fns = [c.step for c in cases] + [k for k, _ in kernels]
    samples = timing.interleaved_samples(
        fns, device, rounds, per_round, before_each=bandwidth.cache_flusher(device)
    )
    # The floor uses the fastest of the bandwidth kernels (the most demanding floor).
    gbps = max(
        nbytes / (timing.summarize(s)["ms_median"] * 1e6)
        for (_, nbytes), s in zip(kernels, samples[len(cases) :])
    )
    left_out_text = "; ".join(f"{impl}: {why}" for impl, why in left_out.items())
    rows = []
    for case, s in zip(cases, samples):
        row = {
            "rule": rule,
            "implementation": case.implementation,
            "workload": workload,
            "numel": case.numel,
            "tensors": case.tensors,
            "dtype": str(case.dtype).removeprefix("torch."),
            **timing.summarize(s),
            "per_round": per_round,
            "samples_ms": intervals.encode_samples(s),
            "bytes_per_step": case.bytes_per_step,
            "bandwidth_GBps": gbps,
            "state_bytes": case.state_bytes,
            "state_bytes_per_param": case.state_bytes / case.numel,
            "left_out": left_out_text,
        }
        row["floor_ms"] = case.bytes_per_step / (gbps * 1e6)
        row["pct_of_floor"] = 100.0 * row["floor_ms"] / row["ms_median"]
        rows.append(row)
    del cases, kernels, grads, initial
    gc.collect()
    return rows


def samples_of(row: pd.Series) -> np.ndarray:
    """A row's samples as (rounds, per_round) milliseconds."""
    return intervals.rounds_of(intervals.decode_samples(row.samples_ms), int(row.per_round))


def speedup_of(ours: pd.Series, peer: pd.Series) -> intervals.Ratio:
    """The peer's median time over ours, with its bootstrap interval over the shared rounds (no
    interval when the rows carry no samples: a table made before they were kept)."""
    if "samples_ms" not in ours or pd.isna(ours.samples_ms) or pd.isna(peer.samples_ms):
        return intervals.Ratio.without_interval(peer.ms_median / ours.ms_median)
    return intervals.speedup(samples_of(ours), samples_of(peer))


def add_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """On ours' row of each measurement: speedup_vs_best_peer (the fastest peer's median time over
    ours; that peer in best_peer) and speedup_vs_target_peer (the rule's target_peer), each with _lo
    and _hi, the bounds of its 95% bootstrap interval."""
    df = df.copy()
    for name in ("speedup_vs_best_peer", "speedup_vs_target_peer"):
        for suffix in ("", "_lo", "_hi"):
            df[name + suffix] = float("nan")
    df["best_peer"] = ""
    for (rule, _, _, _), group in df.groupby(["rule", "workload", "device_type", "dtype"]):
        ours = group[group.implementation == "ours"]
        peers = group[~group.implementation.map(is_ours)]  # ours-master is not a peer
        if ours.empty or peers.empty:
            continue
        mine, index = ours.iloc[0], ours.index[0]
        best = peers.loc[peers.ms_median.idxmin()]
        df.loc[index, "best_peer"] = best.implementation
        targets = peers[peers.implementation == (RULES[rule].target_peer if rule in RULES else None)]
        for name, peer in (("speedup_vs_best_peer", best), ("speedup_vs_target_peer", targets)):
            if isinstance(peer, pd.DataFrame):
                if peer.empty:
                    continue
                peer = peer.iloc[0]
            ratio = speedup_of(mine, peer)
            df.loc[index, [name, name + "_lo", name + "_hi"]] = [ratio.value, ratio.lo, ratio.hi]
    return df


UNIT_COLUMNS = 2
"""The version of the rows a unit holds (2: samples_ms, state bytes, left_out): units saved with
other columns are measured again."""


def run_speed(
    rules: list[str],
    workloads: list[str],
    device: str = "cpu",
    implementations: list[str] | None = None,
    rounds: int | None = None,
    per_round: int = 1,
    progress: bool = True,
    units_dir: str | None = None,
    resume: bool = True,
    dtype: torch.dtype = torch.float32,
) -> pd.DataFrame:
    """The speed table: see the module docstring. `implementations` None means all of each rule's;
    `rounds` None, each workload's default (shapes.default_rounds).

    With units_dir, each (rule, workload) measurement is a unit saved there once it finishes (see
    benchmarks.resume): a rerun with the same settings loads it instead of measuring again, so an
    interrupted run resumes where it stopped; resume=False discards the saved units first. Each row
    carries the provenance of the run that measured it; attrs["units_loaded"] counts the loaded units."""
    from tqdm.auto import tqdm

    device = torch.device(device)

    def rounds_of(workload: str) -> int:
        return default_rounds(workload) if rounds is None else rounds

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
            measured = measure_workload(rule, workload, device, impls, rounds_of(workload), per_round, dtype)
            return [{**row, "device_type": device.type, **meta} for row in measured]

        if store is None:
            rows += measure()
        else:
            key = {
                "rule": rule,
                "workload": workload,
                "device": str(device),
                "implementations": impls,
                "rounds": rounds_of(workload),
                "per_round": per_round,
                "torch_version": torch.__version__,
                "columns": UNIT_COLUMNS,
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
