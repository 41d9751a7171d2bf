"""The convergence runner reports what the analytic solutions say, keeps runs apart, and reports
divergence instead of crashing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import optimizer_specs
from benchmarks.convergence.metrics import select_trial
from benchmarks.convergence.runner import Slab, run_batch
from benchmarks.problems import QuadraticSaddle, Rosenbrock, RotatedQuadratic

SGD = optimizer_specs.SPECS["SGD"]


def _one(runs: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(runs), dtype=bool)
    for key, value in where.items():
        mask &= runs[key].to_numpy() == value
    assert mask.sum() == 1, where
    return runs[mask].iloc[0]


@pytest.mark.parametrize("kappa", [1e2, 1e3])
@pytest.mark.parametrize("tol", [1e-2, 1e-3])
def test_gradient_descent_on_quadratic_takes_the_analytic_steps(kappa, tol):
    """GD at lr = 1/L from x* + v_min contracts the error by (1 - 1/kappa) per step, so the relative
    distance reaches tol after ceil(ln tol / ln(1 - 1/kappa)) steps."""
    q = RotatedQuadratic(kappa=kappa, dim=20, tol=tol, criterion="rel_dist")
    expected = math.ceil(math.log(tol) / math.log(1 - 1 / kappa))
    start = q.minimizers[0] + 3.0 * q.eigenvectors[:, -1]
    res = run_batch(
        [q], [Slab.uniform(SGD, 1.0 / q.L, [q], [0])], steps=expected + 50, starts={q.name: start[None]}
    )
    run = res.runs.iloc[0]
    assert run.status == "success"
    assert abs(run.steps_to_threshold - expected) <= 1, (run.steps_to_threshold, expected)
    assert run.final_dist <= tol * 3.0 * (1 + 1e-9)
    assert res.steps_run < expected + 50  # stopped early once the only run was done


def _heavy_ball_steps(lam: float, lr: float, beta: float, tol: float, limit: int) -> int:
    """Steps until |e_t| <= tol |e_0| for heavy ball on f = lam e^2 / 2 as torch.optim.SGD runs it
    (the first step is plain GD: its buffer starts at the gradient), by the scalar recurrence."""
    e_prev, e = 1.0, 1.0 - lr * lam
    for t in range(1, limit):
        if abs(e) <= tol:
            return t
        e_prev, e = e, (1 + beta - lr * lam) * e - beta * e_prev
    raise AssertionError("did not converge")


@pytest.mark.parametrize("kappa", [1e2, 1e3])
@pytest.mark.parametrize("direction", ["slowest", "fastest"])
def test_polyak_heavy_ball_on_quadratic_takes_the_analytic_steps(kappa, direction):
    """Heavy ball with Polyak's optimal lr = 4/(sqrt L + sqrt mu)^2 and beta = ((sqrt k - 1)/(sqrt k + 1))^2,
    started along an extreme eigenvector, takes the steps of the scalar recurrence on that eigenvalue,
    and converges at Polyak's rate (sqrt k - 1)/(sqrt k + 1) per step: far fewer steps than GD's."""
    q = RotatedQuadratic(kappa=kappa, dim=20, tol=1e-3, criterion="rel_dist")
    root = math.sqrt(kappa)
    lr = 4 / (math.sqrt(q.L) + math.sqrt(q.mu)) ** 2
    beta = ((root - 1) / (root + 1)) ** 2
    column = 0 if direction == "slowest" else -1
    lam = float(q.eigenvalues[column])
    expected = _heavy_ball_steps(lam, lr, beta, 1e-3, 100_000)
    start = q.minimizers[0] + 0.3 * q.eigenvectors[:, column]  # the transient stays in the box
    spec = optimizer_specs.SPECS["Momentum"]
    slab = Slab(spec, {q.name: lr}, (0,), hypers={q.name: {"momentum": beta}})
    res = run_batch([q], [slab], steps=expected + 50, starts={q.name: start[None]})
    run = res.runs.iloc[0]
    assert run.status == "success"
    assert abs(run.steps_to_threshold - expected) <= 1, (run.steps_to_threshold, expected)
    rate = (root - 1) / (root + 1)
    # A double root: |e_t| ~ (a + b t) rate^t, so the count is within a log factor of ln tol / ln rate.
    assert math.log(1e-3) / math.log(rate) <= expected <= 3 * math.log(1e-3) / math.log(rate)
    assert expected < math.log(1e-3) / math.log(1 - 1 / kappa) / 5  # GD at 1/L on the slowest direction


@pytest.mark.parametrize("a,c", [(5.0, 1.0), (1.0, 1.0), (5.0, 2.0)])
@pytest.mark.parametrize("lr", [0.01, 0.1])
def test_gradient_descent_escapes_quadratic_saddle_in_analytic_time(a, c, lr):
    """From (0, delta) GD multiplies y by (1 + 2 c lr) per step: it leaves radius r after
    ln(r / delta) / ln(1 + 2 c lr) steps."""
    delta, r = 1e-3, 1.0
    p = QuadraticSaddle(a=a, c=c, offset=delta, radius=r)
    expected = math.log(r / delta) / math.log(1 + 2 * c * lr)
    starts = torch.tensor([[0.0, delta], [0.0, -delta]], dtype=torch.float64)
    res = run_batch(
        [p], [Slab.uniform(SGD, lr, [p], [0, 1])], steps=int(expected) + 20, starts={p.name: starts}
    )
    for run in res.runs.itertuples():
        assert run.escaped == 1.0 and run.success
        assert abs(run.steps_to_escape - expected) <= 1, (run.steps_to_escape, expected)
        assert run.steps_to_threshold == run.steps_to_escape


def test_escape_is_tracked_on_the_way_to_a_minimum():
    from benchmarks.problems import QuarticSaddle

    p = QuarticSaddle()
    res = run_batch([p], [Slab.uniform(SGD, 0.05, [p], range(4))], steps=2000)
    for run in res.runs.itertuples():
        assert run.success and run.escaped == 1.0
        assert 0 < run.steps_to_escape < run.steps_to_threshold
        assert run.final_dist < 1e-2


def test_diverging_run_is_reported_and_does_not_touch_the_others():
    """lr = 3/L > 2/L makes GD blow up on the quadratic; NaN starts and Adam at a huge lr on Rosenbrock
    diverge too. The sweep goes on, and a converging slab's records are the same as when it runs alone."""
    q, rosen = RotatedQuadratic(kappa=1e2, dim=20), Rosenbrock(2)
    probs = [q, rosen]
    good = Slab(SGD, {q.name: 1.0, rosen.name: 1e-3}, (0, 1, 2), tags={"slab": "good"})
    bad = Slab(SGD, {q.name: 3.0, rosen.name: 3.0}, (0, 1, 2), tags={"slab": "bad"})
    huge = Slab(
        optimizer_specs.SPECS["Adam"], {q.name: 1e3, rosen.name: 1e3}, (0, 1, 2), tags={"slab": "huge"}
    )
    alone = run_batch(probs, [good], steps=400).runs
    together = run_batch(probs, [bad, good, huge], steps=400).runs
    for name in ("bad", "huge"):
        rows = together[together.slab == name]
        assert rows.diverged.all() and not rows.success.any()
        assert (rows.status == "diverged").all() and (rows.stop_step < 400).all()
    mine = together[together.slab == "good"]
    cols = ["problem", "seed", "status", "stop_step", "steps_to_threshold", "final_loss", "final_dist"]
    pd.testing.assert_frame_equal(mine[cols].reset_index(drop=True), alone[cols].reset_index(drop=True))


def test_non_finite_start_is_diverged_at_step_zero():
    q = RotatedQuadratic(kappa=1e2, dim=20)
    starts = q.starts([0, 1, 2])
    starts[1, 5] = float("nan")
    res = run_batch([q], [Slab.uniform(SGD, 1.0, [q], [0, 1, 2])], steps=1000, starts={q.name: starts})
    runs = res.runs
    assert runs.status.tolist() == ["success", "diverged", "success"]
    assert runs.stop_step[1] == 0


def test_records_do_not_depend_on_the_batch():
    """Stopped runs are frozen, so a run's row is the same whatever else ran beside it."""
    q, rosen = RotatedQuadratic(kappa=1e2, dim=20), Rosenbrock(2)
    adam = optimizer_specs.SPECS["Adam"]
    slab = Slab.uniform(adam, 0.05, [q, rosen], range(5))
    alone = run_batch([q, rosen], [slab], steps=300).runs
    others = [Slab.uniform(adam, lr, [q, rosen], range(5)) for lr in (1e-3, 0.5)]
    mixed = run_batch([q, rosen], [others[0], slab, others[1]], steps=300).runs
    mixed = mixed[mixed.lr == 0.05].reset_index(drop=True)
    cols = ["problem", "seed", "status", "stop_step", "final_loss"]
    pd.testing.assert_frame_equal(mixed[cols], alone[cols])


def test_curves_and_trajectories_are_recorded():
    from benchmarks.problems import DEFAULT_START

    rosen = Rosenbrock(2)
    slab = Slab.uniform(SGD, 1e-3, [rosen], [0, DEFAULT_START], record_curves=True, record_trajectories=True)
    res = run_batch([rosen], [slab], steps=50, record_steps=[0, 10, 50])
    assert sorted(res.curves.step.unique()) == [0, 10, 50]
    start_run = res.runs[res.runs.start == "default"].iloc[0]
    path = res.trajectories[res.trajectories.run == start_run.run]
    assert len(path) == 51
    np.testing.assert_allclose(path[["x", "y"]].iloc[0], rosen.default_start.numpy())
    at0 = res.curves[(res.curves.run == start_run.run) & (res.curves.step == 0)].loss.iloc[0]
    assert at0 == pytest.approx(float(rosen.value(rosen.default_start)))


def test_torch_counterpart_reports_the_same():
    """Our SGD and torch.optim.SGD on the same runs: the same steps (the rules are the same)."""
    q = RotatedQuadratic(kappa=1e2, dim=20)
    slabs = [Slab.uniform(optimizer_specs.SPECS[n], 0.5, [q], range(4)) for n in ("SGD", "torch SGD")]
    runs = run_batch([q], slabs, steps=2000).runs
    ours, theirs = runs[runs.optimizer == "SGD"], runs[runs.optimizer == "torch SGD"]
    np.testing.assert_array_equal(ours.steps_to_threshold, theirs.steps_to_threshold)


def test_select_trial_prefers_the_surest_success_then_steps_then_loss():
    """The rule: the highest Wilson lower bound of the success rate first (a trial at the edge of
    divergence loses to a slower one that always succeeds), then median steps (failures as never),
    then the median final loss."""

    def rows(lr, steps, losses, hyper="{}"):
        return [
            {
                "optimizer": "o",
                "problem": "p",
                "lr": lr,
                "hyperparams": hyper,
                "success": s is not None,
                "diverged": s is None,
                "steps_to_threshold": s,
                "final_loss": f,
            }
            for s, f in zip(steps, losses, strict=True)
        ]

    runs = pd.DataFrame(
        rows(0.1, [10, 12, 14, 16], [0.0] * 4)  # 4/4 succeed, median 13
        + rows(0.2, [3, 4, 5, None], [0.0, 0.0, 0.0, 1.0])  # faster, but one diverges
        + rows(0.05, [20, 22, 24, 26], [0.0] * 4)  # 4/4, slower
    )
    assert select_trial(runs).lr.item() == 0.1
    tie = pd.DataFrame(
        rows(0.1, [10, 11], [1e-3, 1e-3], '{"a": 1}') + rows(0.1, [10, 11], [1e-4, 1e-4], '{"a": 2}')
    )
    assert select_trial(tie).hyperparams.item() == '{"a": 2}'  # same lr: trials differ by hyperparameters


def test_growth_along_positive_curvature_is_divergence_not_escape():
    """SGD on 5x² − y² at lr 0.215, past the stability limit 2/L_x = 0.2: |x| grows by 1.15 per step
    while y leaves the saddle. That run was thrown out, not led out: it counts as diverged and never as
    an escape. Just below the limit (x shrinks) the same start escapes."""
    p = QuadraticSaddle()
    start = torch.tensor([[1e-3, 1e-3]], dtype=torch.float64) / math.sqrt(2)
    results = {}
    for lr in (0.215, 0.19):
        res = run_batch([p], [Slab.uniform(SGD, lr, [p], [0])], steps=200, starts={p.name: start})
        results[lr] = res.runs.iloc[0]
    unstable, stable = results[0.215], results[0.19]
    assert unstable.status == "diverged" and not unstable.success and unstable.escaped == 0.0
    assert unstable.stop_step < 19  # flagged before y reached the escape radius (about 19 steps)
    assert stable.status == "success" and stable.escaped == 1.0
