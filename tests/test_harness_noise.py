"""Noisy problems: the gradient noise is a deterministic function of (problem, seed, step), the same
whatever else is computed beside it, standard normal in distribution, of the stated size, and the runner
adds each run's own noise at each step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks import optimizer_specs
from benchmarks import problems as registry
from benchmarks.convergence.runner import Slab, run_batch
from benchmarks.problems import DEFAULT_START, NoisyGradient, Rosenbrock, Success, standard_normals

NOISY = list(registry.NOISY)


def _noise(problem, seeds, step: int) -> torch.Tensor:
    return problem.noise(torch.tensor(seeds, dtype=torch.int64), step)


@pytest.mark.parametrize("name", NOISY)
def test_noise_is_a_function_of_problem_seed_and_step(name):
    problem = registry.get([name])[0]
    seeds = [0, 1, 2, 1008, DEFAULT_START, 2**32 + 1]
    a = _noise(problem, seeds, 7)
    assert a.shape == (len(seeds), problem.dim) and a.dtype == torch.float64
    assert torch.equal(a, _noise(registry.get([name])[0], seeds, 7))  # a fresh instance: the same
    assert not torch.equal(a, _noise(problem, seeds, 8))  # another step
    for i in range(len(seeds)):  # every seed its own noise (2**32 + 1 is not seed 1)
        for j in range(i):
            assert (a[i] != a[j]).all(), (seeds[i], seeds[j])
    steps = torch.stack([_noise(problem, [3], t)[0] for t in range(50)])
    assert len({tuple(row.tolist()) for row in steps}) == 50
    other = NoisyGradient(Rosenbrock(2), 1.0, Success("gap", 1e-2), name="noisy-other")
    elsewhere = standard_normals(other.key, torch.tensor([3]), 0, 2)
    assert not torch.equal(elsewhere, _noise(problem, [3], 0)[:, :2])


@pytest.mark.parametrize("name", NOISY)
def test_a_seeds_noise_does_not_depend_on_the_other_seeds(name):
    """Bit for bit: the hash is integer arithmetic and the float transforms are elementwise."""
    problem = registry.get([name])[0]
    many = list(range(500)) + [1008, DEFAULT_START]
    batch = _noise(problem, many, 11)
    for k in (0, 1, 7, 255, 499, 500, 501):
        assert torch.equal(_noise(problem, [many[k]], 11)[0], batch[k]), many[k]
    assert torch.equal(_noise(problem, many[::-1], 11), batch.flip(0))


def test_gradient_noise_gives_every_run_of_a_seed_the_same_noise():
    """Common random numbers: slabs (optimizers, lrs) sharing a seed get the same noise at each step;
    the hook writes through a strided view and leaves the rest of the buffer alone."""
    problem = registry.get(["noisy-branin"])[0]
    seeds = torch.tensor([[0, 5, 1008], [0, 5, 1008], [5, 1008, 0]])
    buffer = torch.full((3, 3 * 2 + 4), 2.0, dtype=torch.float64)
    grad = buffer[:, 1:7].view(3, 3, 2)
    problem.gradient_noise(grad, seeds, 4)
    noise = grad - 2.0
    assert torch.equal(noise[0], noise[1])
    assert torch.equal(noise[2], noise[0][[1, 2, 0]])
    torch.testing.assert_close(noise[0], _noise(problem, [0, 5, 1008], 4), rtol=0, atol=1e-15)
    assert (buffer[:, 0] == 2.0).all() and (buffer[:, 7:] == 2.0).all()


@pytest.mark.parametrize("name", NOISY)
def test_noise_drawn_ahead_is_the_noise_of_each_step(name):
    """gradient_noise draws chunks of steps at once: bit for bit the one-step noise, across chunk
    boundaries, for steps asked out of order, and after the seeds change."""
    problem = registry.get([name])[0]
    problem.CHUNK_ELEMENTS = 5 * 3 * problem.dim  # chunks of 5 steps for 3 seeds
    for seeds, steps in (([0, 7, 1008], range(12)), ([7, 1008, 0], (3, 2, 11, 10))):
        table = torch.tensor(seeds).expand(2, 3)
        for step in steps:
            grad = torch.zeros(2, 3, problem.dim, dtype=torch.float64)
            problem.gradient_noise(grad, table, step)
            assert torch.equal(grad[1], _noise(problem, seeds, step)), (seeds, step)


def test_standard_normals_are_standard_normal():
    """Over 4096 seeds x 8 steps x 64 coordinates (2M draws, fixed, so no flakiness): mean, variance,
    tails and correlations (between coordinates, steps, seeds) within 4 standard errors."""
    seeds = torch.arange(4096)
    z = torch.stack([standard_normals(12345, seeds, step, 64) for step in range(8)], dim=1)  # seed, step, k
    n = z.numel()
    flat = z.reshape(-1)
    assert abs(flat.mean().item()) < 4 / math.sqrt(n)
    assert abs(flat.var().item() - 1) < 4 * math.sqrt(2 / n)
    for c, p in ((1.0, 0.31731050786), (2.0, 0.04550026390), (3.0, 0.00269979606)):
        share = (flat.abs() > c).double().mean().item()
        assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / n), (c, share, p)
    assert flat.abs().max() < 6.7

    def corr(a, b):
        a, b = a.reshape(-1) - a.mean(), b.reshape(-1) - b.mean()
        return float((a * b).sum() / (a.norm() * b.norm())), a.numel()

    for a, b in (
        (z[..., :-1], z[..., 1:]),  # neighbouring coordinates
        (z[:, :-1], z[:, 1:]),  # consecutive steps
        (z[:-1], z[1:]),  # consecutive seeds
    ):
        r, m = corr(a, b)
        assert abs(r) < 4 / math.sqrt(m), r


@pytest.mark.parametrize("name", [n for n in NOISY if n != "noisy-quadratic-100d"])
def test_isotropic_noise_has_the_stated_std(name):
    problem = registry.get([name])[0]
    noise = _noise(problem, list(range(20000)), 3)
    sigma = problem.noise_std
    assert abs(noise.mean().item()) < 4 * sigma / math.sqrt(noise.numel())
    assert abs(noise.std().item() / sigma - 1) < 4 * math.sqrt(1 / (2 * noise.numel()))


def test_quadratic_noise_is_deepobs_minibatch_noise():
    """noisy-quadratic-100d: gradient A (x - x* + s z), s = 0.6 / sqrt(128): the noise is s A z (covariance
    s^2 A^2), and the start signal-to-noise ratio is DeepOBS's 20."""
    problem = registry.get(["noisy-quadratic-100d"])[0]
    A, s = problem.base.matrix, registry.DEEPOBS_QUADRATIC_NOISE
    seeds = torch.arange(4000)
    noise = problem.noise(seeds, 2)
    z = standard_normals(problem.key, seeds, 2, 100)
    torch.testing.assert_close(noise, z @ (s * A), rtol=1e-12, atol=1e-12)
    covariance = noise.T @ noise / len(seeds)
    expected = s * s * A @ A
    assert abs(torch.trace(covariance) / torch.trace(expected) - 1) < 0.05
    assert torch.linalg.matrix_norm(covariance - expected) < 0.1 * torch.linalg.matrix_norm(expected)
    X0 = problem.starts(range(2000))
    grad = torch.empty_like(X0)
    problem.value_and_grad(X0, grad)
    snr = grad.norm(dim=1).median() / noise.norm(dim=1).pow(2).mean().sqrt()
    assert 18 < snr < 23, snr


@pytest.mark.parametrize("name", [n for n in NOISY if n != "noisy-quadratic-100d"])
def test_two_d_noise_has_the_start_signal_to_noise_ratio_stated(name):
    """sigma = median |grad f(x0)| over the start box / (NOISE_SNR sqrt(2)), to the stated rounding."""
    problem = registry.get([name])[0]
    X0 = problem.starts(range(20000))
    grad = torch.empty_like(X0)
    problem.value_and_grad(X0, grad)
    snr = grad.norm(dim=1).median().item() / (problem.noise_std * math.sqrt(2))
    assert abs(snr / registry.NOISE_SNR - 1) < 0.05, snr


def test_the_runner_adds_each_runs_noise_at_each_step():
    """SGD on noisy Beale from the default start (its path is recorded) follows
    x_{t+1} = x_t - lr (grad f(x_t) + noise(seed, t)) with the run's own seed, not the noise-free path."""
    problem = registry.get(["noisy-beale"])[0]
    lr, steps = 1e-3, 30
    slab = Slab.uniform(
        optimizer_specs.SPECS["SGD"], lr, [problem], (4, 9, DEFAULT_START), record_trajectories=True
    )
    res = run_batch([problem], [slab], steps)
    path = res.trajectories[["x", "y"]].to_numpy()
    x = problem.default_start.clone().unsqueeze(0)
    clean = x.clone()
    grad = torch.empty_like(x)
    expected, noise_free = [x[0].clone()], [x[0].clone()]
    for t in range(steps):
        problem.value_and_grad(x, grad)
        x = x - lr * (grad + _noise(problem, [DEFAULT_START], t))
        problem.value_and_grad(clean, grad)
        clean = clean - lr * grad
        expected.append(x[0].clone())
        noise_free.append(clean[0].clone())
    np.testing.assert_allclose(path, torch.stack(expected).numpy(), rtol=1e-12, atol=1e-14)
    assert np.abs(path[-1] - torch.stack(noise_free).numpy()[-1]).max() > 1e-4


def test_noisy_problem_refuses_a_saddle_and_a_bad_noise():
    with pytest.raises(ValueError, match="saddle"):
        NoisyGradient(registry.get(["monkey-saddle"])[0], 1.0, Success("gap", 1.0))
    with pytest.raises(ValueError, match="positive"):
        NoisyGradient(Rosenbrock(2), 0.0, Success("gap", 1e-2))
    with pytest.raises(ValueError, match="shape"):
        NoisyGradient(Rosenbrock(2), torch.eye(3), Success("gap", 1e-2))
