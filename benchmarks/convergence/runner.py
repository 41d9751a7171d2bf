"""Runs many independent optimizations as one batch.

A batch is a list of *slabs*. A slab is one optimizer configuration (spec, one lr per problem) run from
`len(seeds)` start points on every problem. All runs of a batch live in one tensor X of shape
(slabs, elements): each slab is a row, laid out problem by problem, run by run, so that

- every problem sees all of its runs (across slabs, lrs and seeds) as one strided view (slabs, seeds, dim)
  and computes values and analytic gradients for all of them with one chain of tensor ops;
- every optimizer gets one param group per distinct lr, whose params are contiguous pieces of its slab
  rows, so one `step()` per optimizer advances every run of that optimizer.

Each run stops at its first success, divergence (non-finite or outside the problem's box), or the
budget: from then on its parameters are frozen (restored after every step), so what is recorded for it,
and its final point, never depend on which other runs shared the batch. A diverged run can hold NaN or
inf, but every rule is elementwise and every objective is per run, so it cannot reach another run.
Noisy problems get each run's seed and the step after every evaluation and add that run's gradient
noise, a function of (problem, seed, step) only: the same seed sees the same noise under every optimizer
and lr, whatever else is in the batch.
Every `check_every` steps the runner looks at which runs are still going: a param whose runs have all
stopped loses its grad (optimizers skip such params, so finished work costs no more steps), a problem
whose runs have all stopped is no longer evaluated, and the batch ends once no run is active.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from benchmarks.optimizer_specs import OptimizerSpec
from benchmarks.problems import DEFAULT_START, Problem

SUCCESS, DIVERGED, BUDGET = "success", "diverged", "budget"
_STATUS_NAMES = np.array([BUDGET, SUCCESS, DIVERGED])  # indexed by the codes below
_RUNNING, _SUCCEEDED, _DIVERGED = 0, 1, 2


@dataclass(frozen=True, eq=False)
class Slab:
    """One optimizer configuration on every problem of a batch.

    lrs: problem name -> learning rate. hypers: problem name -> constructor arguments of that problem's
    runs (a tuning trial; default: the spec's). seeds: one run per seed and problem (DEFAULT_START for the
    problem's default start point). tags: extra columns copied into each of its result rows.
    record_curves: record its losses at the batch's record steps. record_trajectories: record the full
    path of its DEFAULT_START runs on 2-D problems.
    """

    spec: OptimizerSpec
    lrs: Mapping[str, float]
    seeds: tuple[int, ...]
    tags: Mapping[str, object] = field(default_factory=dict)
    hypers: Mapping[str, dict] = field(default_factory=dict)
    record_curves: bool = False
    record_trajectories: bool = False

    @classmethod
    def uniform(
        cls, spec: OptimizerSpec, lr: float, problems: Sequence[Problem], seeds: Sequence[int], **kwargs
    ) -> Slab:
        """The same lr on every problem."""
        return cls(spec, {p.name: float(lr) for p in problems}, tuple(seeds), **kwargs)

    def hyper(self, problem: str) -> dict:
        """The constructor arguments of this slab's runs on `problem`."""
        return self.hypers.get(problem, self.spec.hyper)

    def hyper_json(self, problem: str) -> str:
        return json.dumps(self.hyper(problem), sort_keys=True)


@dataclass
class BatchResult:
    """runs: one row per run (see README.md for the columns); `run` indexes runs within the batch.
    curves: (run, step, loss) at the record steps for slabs with record_curves.
    trajectories: (run, step, x, y) at every step for DEFAULT_START runs of 2-D problems in slabs with
    record_trajectories. steps_run: the steps the batch executed (< budget after an early stop)."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    trajectories: pd.DataFrame
    steps_run: int
    seconds: float


def log_record_steps(steps: int, points: int = 60) -> list[int]:
    """0, then about `points` steps log-spaced up to `steps` (where loss curves are recorded)."""
    grid = np.unique(np.round(np.geomspace(1, steps, points)).astype(int)) if steps >= 1 else []
    return [0, *[int(s) for s in grid]]


class _Layout:
    """Where each (slab, problem, run) lives in X and in the per-run buffers."""

    def __init__(self, problems: Sequence[Problem], n_slabs: int, runs: int):
        self.P, self.N, self.R = len(problems), n_slabs, runs
        self.dims = [p.dim for p in problems]
        self.el_off = np.concatenate([[0], np.cumsum([runs * d for d in self.dims])]).tolist()
        self.S = self.el_off[-1]  # elements per slab
        self.M = self.P * runs  # runs per slab

    def elements(self, i: int) -> slice:
        return slice(self.el_off[i], self.el_off[i + 1])

    def runs_of(self, i: int) -> slice:
        return slice(i * self.R, (i + 1) * self.R)

    def run_of_element(self) -> Tensor:
        """For each element of X (flattened), the index of its run in the flattened (N, M) buffers."""
        per_slab = torch.cat(
            [torch.arange(i * self.R, (i + 1) * self.R).repeat_interleave(d) for i, d in enumerate(self.dims)]
        )
        return (per_slab + self.M * torch.arange(self.N).unsqueeze(1)).reshape(-1)


@dataclass
class _Piece:
    """A contiguous piece of one slab row that is one param of an optimizer: problems [first, last]."""

    param: Tensor
    grad: Tensor
    slab: int
    runs: slice  # its runs in the slab's row of the per-run buffers


def _build_optimizers(
    slabs: Sequence[Slab], problems: Sequence[Problem], layout: _Layout, X: Tensor, G: Tensor
) -> tuple[list[torch.optim.Optimizer], list[_Piece]]:
    """One optimizer per spec; one param group per distinct (lr, hyperparameters), holding contiguous
    pieces of slab rows (consecutive problems with the same lr and hyperparameters share a piece)."""
    by_spec: dict[str, tuple[OptimizerSpec, dict[tuple, tuple[dict, list[Tensor]]]]] = {}
    pieces = []
    for j, slab in enumerate(slabs):
        spec, groups = by_spec.setdefault(slab.spec.name, (slab.spec, {}))
        if spec is not slab.spec:
            raise ValueError(f"two different specs named {spec.name!r} in one batch")

        settings = [(float(slab.lrs[p.name]), slab.hyper_json(p.name)) for p in problems]
        i = 0
        while i < layout.P:
            key = settings[i]
            k = i
            while k + 1 < layout.P and settings[k + 1] == key:
                k += 1
            lo, hi = layout.el_off[i], layout.el_off[k + 1]
            piece = _Piece(X[j, lo:hi], G[j, lo:hi], j, slice(i * layout.R, (k + 1) * layout.R))
            piece.param.grad = piece.grad
            group = {"lr": key[0], **slab.hyper(problems[i].name)}
            groups.setdefault(key, (group, []))[1].append(piece.param)
            pieces.append(piece)
            i = k + 1
    opts = [
        spec.build([{**group, "params": params} for group, params in groups.values()])
        for spec, groups in by_spec.values()
    ]
    return opts, pieces


def _retire_finished(pieces: list[_Piece], active: np.ndarray) -> list[_Piece]:
    """Takes the grad away from every piece whose runs have all stopped: optimizers skip params without a
    grad, so finished work costs nothing more (the runs are frozen either way). Returns the live pieces."""
    live = []
    for piece in pieces:
        if active[piece.slab, piece.runs].any():
            live.append(piece)
        else:
            piece.param.grad = None
    return live


def run_batch(
    problems: Sequence[Problem],
    slabs: Sequence[Slab],
    steps: int,
    *,
    dtype: torch.dtype = torch.float64,
    starts: Mapping[str, Tensor] | None = None,
    record_steps: Sequence[int] | None = None,
    progress=None,
    check_every: int = 10,
) -> BatchResult:
    """Runs every slab on every problem for at most `steps` steps.

    starts: optional problem name -> (runs, dim) start points used for every slab instead of the seeds'.
    record_steps: steps at which losses are recorded for slabs with record_curves (default: log-spaced).
    progress: a tqdm-like object; `update(n)` is called as steps complete (and for the skipped ones).
    """
    if not slabs:
        raise ValueError("run_batch needs at least one slab")
    R = len(slabs[0].seeds)
    if any(len(s.seeds) != R for s in slabs):
        raise ValueError("every slab of a batch needs the same number of seeds")
    names = [p.name for p in problems]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate problem names {names}")
    for s in slabs:
        missing = [n for n in names if n not in s.lrs]
        if missing:
            raise ValueError(f"slab {s.spec.name} has no lr for {missing}")
    started = time.perf_counter()
    lay = _Layout(problems, len(slabs), R)
    N, M, P = lay.N, lay.M, lay.P

    # -- state: parameters, gradients, and per-run bookkeeping ---------------------------------------
    X = torch.empty(N, lay.S, dtype=dtype)
    start_cache: dict[tuple[str, tuple[int, ...]], Tensor] = {}
    for j, slab in enumerate(slabs):
        for i, prob in enumerate(problems):
            if starts is not None and prob.name in starts:
                X0 = torch.as_tensor(starts[prob.name], dtype=torch.float64).reshape(R, prob.dim)
            else:
                key = (prob.name, slab.seeds)
                if key not in start_cache:
                    start_cache[key] = prob.starts(slab.seeds)
                X0 = start_cache[key]
            X[j, lay.elements(i)] = X0.reshape(-1).to(dtype)
    G = torch.zeros_like(X)
    Xprev = torch.empty_like(X)
    Xv = [X[:, lay.elements(i)].view(N, R, d) for i, d in enumerate(lay.dims)]
    Gv = [G[:, lay.elements(i)].view(N, R, d) for i, d in enumerate(lay.dims)]
    lo = torch.cat([p.box[0].repeat(R) for p in problems]).to(dtype)
    hi = torch.cat([p.box[1].repeat(R) for p in problems]).to(dtype)
    run_of_element = lay.run_of_element()

    loss = torch.empty(N, M, dtype=dtype)
    score = torch.empty(N, M, dtype=dtype)  # success once score <= threshold
    threshold = torch.empty(N, M, dtype=dtype)
    escape = torch.full((N, M), float("inf"), dtype=dtype)  # escaped once <= 0 (saddle problems only)
    for i, prob in enumerate(problems):
        threshold[:, lay.runs_of(i)] = prob.thresholds(Xv[i])
    in_box = torch.empty(N, lay.S, dtype=torch.bool)
    in_box_hi = torch.empty(N, lay.S, dtype=torch.bool)
    ok = torch.empty(N, M, dtype=torch.bool)
    active = torch.ones(N, M, dtype=torch.bool)
    active_elements = torch.empty(N, lay.S, dtype=torch.bool)
    escaped = torch.zeros(N, M, dtype=torch.bool)
    status = torch.zeros(N, M, dtype=torch.int8)
    stop_step = torch.full((N, M), steps, dtype=torch.int64)
    escape_step = torch.full((N, M), -1, dtype=torch.int64)
    saddles = [i for i, p in enumerate(problems) if p.is_saddle]  # escape is tracked for these
    # Each saddle run's start displacement along positive curvature (see Problem.thrown_out).
    thrown_start = {
        i: problems[i].positive_displacement(Xv[i])
        for i in saddles
        if problems[i].positive_directions is not None
    }
    seeds = torch.tensor([s.seeds for s in slabs], dtype=torch.int64)  # (N, R): noisy problems' noise

    # -- recording -----------------------------------------------------------------------------------
    curve_slabs = [j for j, s in enumerate(slabs) if s.record_curves]
    if record_steps is None:
        record_steps = log_record_steps(steps)
    record_steps = sorted({s for s in record_steps if 0 <= s <= steps})
    record_at = {s: k for k, s in enumerate(record_steps)} if curve_slabs else {}
    curve_rows = torch.tensor(curve_slabs, dtype=torch.long)
    curves = torch.empty(len(record_at), len(curve_slabs), M, dtype=dtype)
    traj_runs, traj_idx = [], []
    for j, slab in enumerate(slabs):
        if not slab.record_trajectories:
            continue
        for i, prob in enumerate(problems):
            if prob.dim != 2:
                continue
            for r, seed in enumerate(slab.seeds):
                if seed == DEFAULT_START:
                    traj_runs.append(j * M + i * R + r)
                    base = j * lay.S + lay.el_off[i] + 2 * r
                    traj_idx += [base, base + 1]
    traj_idx_t = torch.tensor(traj_idx, dtype=torch.long)
    traj = torch.empty(steps + 1, len(traj_idx), dtype=dtype) if traj_idx else None

    opts, pieces = _build_optimizers(slabs, problems, lay, X, G)
    live_problems = list(range(P))
    X_flat, active_flat = X.view(-1), active.view(-1)
    lv = [loss[:, lay.runs_of(i)] for i in range(P)]
    sv = [score[:, lay.runs_of(i)] for i in range(P)]
    ev = [escape[:, lay.runs_of(i)] for i in range(P)]
    okv = [ok[:, lay.runs_of(i)] for i in range(P)]
    boxv = [in_box[:, lay.elements(i)].view(N, R, d) for i, d in enumerate(lay.dims)]

    # -- the loop: evaluate at X_t, update the runs' status, step ------------------------------------
    t = 0
    reported = 0
    for t in range(steps + 1):
        for i in live_problems:
            prob = problems[i]
            values = prob.value_and_grad(Xv[i], Gv[i])
            if prob.is_noisy:
                prob.gradient_noise(Gv[i], seeds, t)
            lv[i].copy_(values)
            sv[i].copy_(prob.success_score(Xv[i], values))
            if prob.is_saddle:
                ev[i].copy_(prob.escape_score(Xv[i], values))
        if traj is not None:
            torch.index_select(X_flat, 0, traj_idx_t, out=traj[t])
        k = record_at.get(t)
        if k is not None:
            torch.index_select(loss, 0, curve_rows, out=curves[k])

        # NaN compares false, so non-finite values fall out of the box too.
        torch.ge(X, lo, out=in_box)
        torch.le(X, hi, out=in_box_hi)
        in_box.logical_and_(in_box_hi)
        for i in range(P):
            torch.all(boxv[i], dim=-1, out=okv[i])
        for i, start in thrown_start.items():  # saddles: thrown out along positive curvature
            if t == 1:  # the reference: where the first step left it (its length is the lr's doing)
                torch.maximum(start, problems[i].positive_displacement(Xv[i]), out=start)
            thrown = problems[i].thrown_out(Xv[i], start)
            okv[i].logical_and_(~(thrown & ~escaped[:, lay.runs_of(i)]))
        now = active & ~ok  # diverged at t
        status.masked_fill_(now, _DIVERGED)
        stop_step.masked_fill_(now, t)
        active.logical_and_(ok)
        if saddles:
            now = (escape <= 0) & active & ~escaped
            escaped.logical_or_(now)
            escape_step.masked_fill_(now, t)
        now = (score <= threshold) & active  # succeeded at t
        status.masked_fill_(now, _SUCCEEDED)
        stop_step.masked_fill_(now, t)
        active.logical_and_(~now)

        if t == steps:
            break
        if t % check_every == check_every - 1:
            if progress is not None:
                progress.update(t + 1 - reported)
                reported = t + 1
            still = active.numpy()
            if not still.any():
                break
            pieces = _retire_finished(pieces, still)
            live_problems = [i for i in live_problems if still[:, lay.runs_of(i)].any()]
        Xprev.copy_(X)
        for opt in opts:
            opt.step()
        torch.index_select(active_flat, 0, run_of_element, out=active_elements.view(-1))
        torch.where(active_elements, X, Xprev, out=X)  # stopped runs stay where they stopped
    steps_run = t
    if progress is not None:
        progress.update(steps - reported)
    for s, k in record_at.items():  # after an early stop every run is frozen: its loss stays the same
        if s > steps_run:
            curves[k] = loss[curve_rows]
    if traj is not None and steps_run < steps:
        traj[steps_run + 1 :] = traj[steps_run]

    # -- results -------------------------------------------------------------------------------------
    final_dist = torch.full((N, M), float("nan"), dtype=dtype)
    for i, prob in enumerate(problems):
        d = prob.distance(Xv[i])
        if d is not None:
            final_dist[:, lay.runs_of(i)] = d
    runs = _runs_frame(
        problems,
        slabs,
        lay,
        status,
        stop_step,
        loss,
        final_dist,
        threshold,
        escaped,
        escape_step,
        steps,
        dtype,
    )
    curve_frame = _curves_frame(curves, record_at, curve_slabs, M)
    traj_frame = _trajectory_frame(traj, traj_runs, stop_step.view(-1))
    return BatchResult(runs, curve_frame, traj_frame, steps_run, time.perf_counter() - started)


def _runs_frame(
    problems,
    slabs,
    lay: _Layout,
    status,
    stop_step,
    loss,
    final_dist,
    threshold,
    escaped,
    escape_step,
    steps: int,
    dtype,
) -> pd.DataFrame:
    N, M, R, P = lay.N, lay.M, lay.R, lay.P
    j = np.repeat(np.arange(N), M)
    i = np.tile(np.repeat(np.arange(P), R), N)
    r = np.tile(np.arange(R), N * P)
    seeds = np.array([s.seeds for s in slabs], dtype=np.int64)[j, r]
    lrs = np.array([[float(s.lrs[p.name]) for p in problems] for s in slabs])[j, i]
    code = status.view(-1).numpy().astype(np.int64)
    stop = stop_step.view(-1).numpy()
    final_loss = loss.view(-1).numpy().astype(np.float64)
    f_min = np.array([np.nan if p.f_min is None else p.f_min for p in problems])[i]
    is_saddle = np.array([p.is_saddle for p in problems])[i]
    esc = escaped.view(-1).numpy()
    esc_step = escape_step.view(-1).numpy()
    frame = pd.DataFrame(
        {
            "run": np.arange(N * M),
            "optimizer": np.array([s.spec.name for s in slabs], dtype=object)[j],
            "hyperparams": np.array([[s.hyper_json(p.name) for p in problems] for s in slabs], dtype=object)[
                j, i
            ],
            "problem": np.array([p.name for p in problems], dtype=object)[i],
            "dim": np.array([p.dim for p in problems])[i],
            "criterion": np.array([p.success.describe() for p in problems], dtype=object)[i],
            "f_min": f_min,
            "f_saddle": np.array([np.nan if p.f_saddle is None else p.f_saddle for p in problems])[i],
            "lr": lrs,
            "seed": seeds,
            "start": np.where(seeds == DEFAULT_START, "default", "random"),
            "status": _STATUS_NAMES[code],
            "success": code == _SUCCEEDED,
            "diverged": code == _DIVERGED,
            "steps_to_threshold": np.where(code == _SUCCEEDED, stop, np.nan),
            "stop_step": stop,
            "final_loss": final_loss,
            "final_gap": final_loss - f_min,
            "final_dist": final_dist.view(-1).numpy().astype(np.float64),
            "threshold": threshold.view(-1).numpy().astype(np.float64),
            "escaped": np.where(is_saddle, esc, np.nan),
            "steps_to_escape": np.where(is_saddle & esc, esc_step, np.nan),
            "budget": steps,
            "dtype": str(dtype).removeprefix("torch."),
        }
    )
    for key in dict.fromkeys(k for s in slabs for k in s.tags):
        frame[key] = np.array([s.tags.get(key) for s in slabs], dtype=object)[j]
    return frame


def _curves_frame(curves: Tensor, record_at: dict[int, int], curve_slabs: list[int], M: int) -> pd.DataFrame:
    if not record_at or not curve_slabs:
        return pd.DataFrame(
            {
                "run": pd.Series(dtype=np.int64),
                "step": pd.Series(dtype=np.int64),
                "loss": pd.Series(dtype=np.float64),
            }
        )
    K, C = curves.shape[0], len(curve_slabs)
    runs = (np.array(curve_slabs)[:, None] * M + np.arange(M)[None, :]).reshape(-1)
    steps = np.array(sorted(record_at, key=record_at.get))
    return pd.DataFrame(
        {
            "run": np.tile(runs, K),
            "step": np.repeat(steps, C * M),
            "loss": curves.reshape(K, -1).numpy().reshape(-1).astype(np.float64),
        }
    )


def _trajectory_frame(traj: Tensor | None, traj_runs: list[int], stop_step: Tensor) -> pd.DataFrame:
    columns = {
        "run": [np.empty(0, np.int64)],
        "step": [np.empty(0, np.int64)],
        "x": [np.empty(0)],
        "y": [np.empty(0)],
    }
    if traj is not None:
        path = traj.numpy().astype(np.float64)
        for n, run in enumerate(traj_runs):
            last = int(stop_step[run]) + 1  # the path up to where the run stopped
            columns["run"].append(np.full(last, run, dtype=np.int64))
            columns["step"].append(np.arange(last, dtype=np.int64))
            columns["x"].append(path[:last, 2 * n])
            columns["y"].append(path[:last, 2 * n + 1])
    return pd.DataFrame({k: np.concatenate(v) for k, v in columns.items()})
