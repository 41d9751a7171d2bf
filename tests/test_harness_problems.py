"""The convergence harness's problems: each states a minimum that is one, and analytic gradients that
match autograd."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks import problems as registry
from benchmarks.problems import (
    DEFAULT_START,
    Branin,
    QuadraticSaddle,
    RotatedQuadratic,
    deepobs_deep_spectrum,
    rowwise_matmul,
)

NAMES = list(registry.FACTORIES)
BOUNDED = [name for name in NAMES if registry.FACTORIES[name]().minimizers is not None]
SADDLES = [name for name in NAMES if registry.FACTORIES[name]().is_saddle]


@pytest.fixture(params=NAMES)
def problem(request):
    return registry.FACTORIES[request.param]()


def _points(problem, n: int = 64) -> torch.Tensor:
    """Random points in the start box plus the default start and the seeds' starts."""
    gen = torch.Generator().manual_seed(0)
    lo, hi = problem.start_box
    box = lo + (hi - lo) * torch.rand(n, problem.dim, generator=gen, dtype=torch.float64)
    return torch.cat([box, problem.starts([0, 1, 2, DEFAULT_START])])


def test_analytic_gradient_matches_autograd(problem):
    X = _points(problem)
    grad = torch.empty_like(X)
    values = problem.value_and_grad(X, grad)
    Xa = X.clone().requires_grad_(True)
    problem.value(Xa).sum().backward()
    torch.testing.assert_close(grad, Xa.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(values, problem.value(X), rtol=1e-12, atol=1e-12)


def test_gradient_written_into_strided_views(problem):
    """The runner hands problems strided views (slabs, seeds, dim) of one big buffer."""
    X = _points(problem, 12).reshape(4, 4, problem.dim)
    big = torch.zeros(4, 4 * problem.dim + 7, dtype=torch.float64)
    Xv = big[:, 3 : 3 + 4 * problem.dim].view(4, 4, problem.dim)
    Xv.copy_(X)
    G = torch.full_like(big, 123.0)
    Gv = G[:, 3 : 3 + 4 * problem.dim].view(4, 4, problem.dim)
    values = problem.value_and_grad(Xv, Gv)
    expected = torch.empty_like(X)
    torch.testing.assert_close(values, problem.value_and_grad(X, expected))
    torch.testing.assert_close(Gv, expected)
    assert (G[:, :3] == 123.0).all() and (G[:, 3 + 4 * problem.dim :] == 123.0).all()


@pytest.mark.parametrize("name", BOUNDED)
def test_stated_minimum_is_a_minimum(name):
    problem = registry.FACTORIES[name]()
    m = problem.minimizers
    grad = torch.empty_like(m)
    values = problem.value_and_grad(m, grad)
    torch.testing.assert_close(values, torch.full_like(values, problem.f_min), rtol=0, atol=1e-12)
    assert grad.abs().max() < 1e-9, grad
    # no point nearby is lower, and the start points are higher
    gen = torch.Generator().manual_seed(1)
    for scale in (1e-4, 1e-2, 1e-1):
        near = m.unsqueeze(1) + scale * torch.randn(
            m.shape[0], 256, problem.dim, generator=gen, dtype=torch.float64
        )
        assert (problem.value(near) >= problem.f_min - 1e-12).all()
    assert (problem.value(_points(problem)) >= problem.f_min).all()
    assert problem.distance(m).abs().max() == 0


@pytest.mark.parametrize("name", SADDLES)
def test_saddle_is_a_stationary_point_with_a_descent_direction(name):
    problem = registry.FACTORIES[name]()
    s = problem.saddle.unsqueeze(0)
    grad = torch.empty_like(s)
    problem.value_and_grad(s, grad)
    assert grad.abs().max() < 1e-12
    # f goes below f(saddle) somewhere on a small sphere around it (and above, elsewhere)
    u = torch.randn(4096, problem.dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ring = problem.value(s + 1e-2 * u / u.norm(dim=1, keepdim=True)) - problem.f_saddle
    assert ring.min() < 0 < ring.max()


def test_starts_are_deterministic_and_where_stated(problem):
    seeds = list(range(20))
    X0 = problem.starts(seeds)
    torch.testing.assert_close(X0, problem.starts(seeds), rtol=0, atol=0)
    assert not torch.equal(X0[0], X0[1])
    torch.testing.assert_close(problem.starts([DEFAULT_START])[0], problem.default_start)
    if problem.is_saddle:
        dist = (X0 - problem.saddle).norm(dim=1)
        torch.testing.assert_close(dist, torch.full_like(dist, problem.start_offset))
    else:
        lo, hi = problem.start_box
        assert ((X0 >= lo) & (X0 <= hi)).all()
    lo, hi = problem.box
    assert ((X0 >= lo) & (X0 <= hi)).all(), "starts must lie inside the divergence box"


@pytest.mark.parametrize("kappa", [1e2, 1e3, 1e4])
def test_quadratic_spectrum_has_the_selected_condition_number(kappa):
    q = RotatedQuadratic(kappa=kappa, dim=20)
    eig = torch.linalg.eigvalsh(q.matrix)
    assert eig.max().item() == pytest.approx(1.0, rel=1e-12)
    assert (eig.max() / eig.min()).item() == pytest.approx(kappa, rel=1e-9)
    # DeepOBS-like: a few large eigenvalues well above a bulk of small ones
    assert (eig > 0.4).sum() == 2 and (eig < 1 / 29).sum() == 18
    torch.testing.assert_close(q.matrix @ q.eigenvectors[:, -1], q.mu * q.eigenvectors[:, -1])


def test_quadratic_saddle_escape_formula():
    p = QuadraticSaddle(a=5.0, c=1.0, offset=1e-3, radius=1.0)
    assert p.escape_steps_gd(0.1) == pytest.approx(math.log(1e3) / math.log(1.2))


def test_branin_minimizers_are_its_global_minima():
    """Branin-Hoo's three minimizers in [-5, 10] x [0, 15] (and the fourth in the divergence box) have
    value 5 / (4 pi) = 0.397887... and zero gradient; the value is the minimum over a fine grid."""
    p = Branin()
    assert p.f_min == pytest.approx(0.397887357729738, abs=1e-15)
    m = p.minimizers
    torch.testing.assert_close(
        m[:3], torch.tensor([[-math.pi, 12.275], [math.pi, 2.275], [3 * math.pi, 2.475]], dtype=torch.float64)
    )
    grad = torch.empty_like(m)
    values = p.value_and_grad(m, grad)
    torch.testing.assert_close(values, torch.full_like(values, 0.397887357729738), rtol=0, atol=1e-14)
    assert grad.abs().max() < 1e-12
    lo, hi = p.box
    xs = torch.linspace(float(lo[0]), float(hi[0]), 1201, dtype=torch.float64)
    ys = torch.linspace(float(lo[1]), float(hi[1]), 1201, dtype=torch.float64)
    grid = torch.cartesian_prod(xs, ys)
    assert p.value(grid).min() >= p.f_min - 1e-12
    # the domain holds exactly the first three
    inside = ((m >= torch.tensor([-5.0, 0.0])) & (m <= torch.tensor([10.0, 15.0]))).all(1)
    assert inside.tolist() == [True, True, True, False]


def test_deepobs_quadratic_spectrum():
    """quadratic_deep's: 90 eigenvalues in (0, 1), 10 in (30, 60); the noisy quadratic's Hessian has it."""
    eig = deepobs_deep_spectrum(100)
    assert ((eig > 30) & (eig < 60)).sum() == 10 and ((eig > 0) & (eig < 1)).sum() == 90
    assert torch.equal(eig, eig.sort(descending=True).values)
    assert torch.equal(eig, deepobs_deep_spectrum(100))  # a fixed property of the problem
    q = registry.get(["noisy-quadratic-100d"])[0]
    torch.testing.assert_close(torch.linalg.eigvalsh(q.base.matrix).flip(0), eig, rtol=1e-10, atol=1e-12)


def test_registry_groups_are_consistent():
    """Deterministic functions, then noisy ones, then saddles; FUNCTIONS and SADDLES split the set."""
    made = {name: registry.FACTORIES[name]() for name in NAMES}
    assert set(registry.SADDLES) == {n for n, p in made.items() if p.is_saddle}
    assert set(registry.NOISY) == {n for n, p in made.items() if p.is_noisy}
    assert list(registry.FUNCTIONS) + list(registry.SADDLES) == NAMES
    kinds = ["saddle" if made[n].is_saddle else "noisy" if made[n].is_noisy else "plain" for n in NAMES]
    assert kinds == sorted(kinds, key=["plain", "noisy", "saddle"].index)


@pytest.mark.parametrize("k,m", [(2, 2), (10, 10), (20, 20), (100, 100), (7, 3)])
def test_rowwise_matmul_rows_do_not_depend_on_the_other_rows(k, m):
    """Each row's product is the same bit for bit alone, among many, at any place in a block, and through a
    strided (slabs, runs, k) view; and it is X @ A."""
    gen = torch.Generator().manual_seed(k)
    A = torch.randn(k, m, dtype=torch.float64, generator=gen)
    X = torch.randn(700, k, dtype=torch.float64, generator=gen)
    alone = torch.cat([rowwise_matmul(X[i : i + 1], A) for i in range(0, 700, 7)])
    for n in (2, 95, 96, 97, 700):
        rows = rowwise_matmul(X[:n], A)
        assert torch.equal(rows[::7], alone[: len(rows[::7])]), n
    shifted = rowwise_matmul(X[3:], A)  # every row at another place in its block
    assert torch.equal(shifted[4::7], alone[1:])
    big = torch.zeros(10, 70 * k + 5, dtype=torch.float64)
    view = big[:, 5:].view(10, 70, k)
    view.copy_(X.view(10, 70, k))
    assert torch.equal(rowwise_matmul(view, A).reshape(700, m)[::7], alone)
    torch.testing.assert_close(rowwise_matmul(X, A), X @ A, rtol=1e-13, atol=1e-13)
