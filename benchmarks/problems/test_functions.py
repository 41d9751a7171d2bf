"""Classic test functions with known minima: Rosenbrock (2-D and N-D), Beale, a rotated ill-conditioned
quadratic, and a narrow curved valley. Each has an analytic batched gradient (checked against autograd
by tests/test_harness_problems.py)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Problem, Success


class Rosenbrock(Problem):
    """f(x) = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; global minimum 0 at (1, ..., 1).
    For dim >= 4 there is also a local minimum near (-1, 1, ..., 1), which counts as a failure."""

    def __init__(self, dim: int = 2, tol: float = 1e-6):
        default = [-1.2, 1.0] if dim == 2 else [-1.2 if i % 2 == 0 else 1.0 for i in range(dim)]
        super().__init__(
            f"rosenbrock-{dim}d",
            dim,
            box=(-5.0, 5.0),
            start_box=(-2.0, 2.0),
            default_start=default,
            minimizers=[1.0] * dim,
            f_min=0.0,
            success=Success("gap", tol),
            description="banana-shaped curved valley (Rosenbrock 1960)",
        )

    def value(self, X: Tensor) -> Tensor:
        x, y = X[..., :-1], X[..., 1:]
        return (100 * (y - x * x) ** 2 + (1 - x) ** 2).sum(-1)

    def value_and_grad(self, X: Tensor, grad: Tensor) -> Tensor:
        x, y = X[..., :-1], X[..., 1:]
        d = torch.addcmul(y, x, x, value=-1.0)  # y - x^2
        e = 1.0 - x
        grad[..., :-1] = torch.addcmul(e.mul(-2.0), x, d, value=-400.0)
        grad[..., -1] = 0.0
        grad[..., 1:].add_(d, alpha=200.0)
        return torch.addcmul(e * e, d, d, value=100.0).sum(-1)


class Beale(Problem):
    """Beale's function: minimum 0 at (3, 0.5), steep walls and a flat plateau near y = 1."""

    C = (1.5, 2.25, 2.625)

    def __init__(self, tol: float = 1e-6):
        super().__init__(
            "beale",
            2,
            box=(-4.5, 4.5),
            start_box=(-2.0, 2.0),
            default_start=[1.0, 1.5],
            minimizers=[3.0, 0.5],
            f_min=0.0,
            success=Success("gap", tol),
            description="Beale (1958): flat plateau, steep walls",
        )

    def value(self, X: Tensor) -> Tensor:
        x, y = X[..., 0], X[..., 1]
        return sum((c - x + x * y**k) ** 2 for k, c in zip((1, 2, 3), self.C, strict=True))

    def value_and_grad(self, X: Tensor, grad: Tensor) -> Tensor:
        x, y = X[..., 0], X[..., 1]
        y2 = y * y
        y3 = y2 * y
        t1 = (y - 1.0) * x + 1.5  # 1.5 - x + x y
        t2 = (y2 - 1.0) * x + 2.25
        t3 = (y3 - 1.0) * x + 2.625
        gx = 2 * (t1 * (y - 1.0) + t2 * (y2 - 1.0) + t3 * (y3 - 1.0))
        gy = 2 * x * (t1 + 2 * t2 * y + 3 * t3 * y2)
        grad[..., 0] = gx
        grad[..., 1] = gy
        return t1 * t1 + t2 * t2 + t3 * t3


def deepobs_like_spectrum(kappa: float, dim: int) -> Tensor:
    """Eigenvalues with largest 1 and smallest 1/kappa, shaped like DeepOBS's quadratic_deep
    (90% of eigenvalues in a low bulk, 10% an order of magnitude or more above it): the top
    ceil(dim/10) spaced evenly in [1/2, 1], the rest log-spaced in [1/kappa, 1/30]."""
    if kappa < 60:
        return torch.logspace(0, -math.log10(kappa), dim, dtype=torch.float64)
    top = max(1, math.ceil(dim / 10))
    high = torch.linspace(1.0, 0.5, top, dtype=torch.float64)
    low = torch.logspace(-math.log10(30), -math.log10(kappa), dim - top, dtype=torch.float64)
    return torch.cat([high, low])


class RotatedQuadratic(Problem):
    """f(x) = 1/2 (x - x*)^T A (x - x*), A = Q diag(lambda) Q^T with a fixed random rotation Q and a
    DeepOBS-like spectrum of condition number kappa (L = 1, mu = 1/kappa). Minimum 0 at x* = (1, ..., 1).

    Success by default: relative distance ||x - x*|| <= tol * ||x0 - x*||, the quantity whose
    gradient-descent step count has the closed form ceil(ln tol / ln(1 - 1/kappa)) at lr = 1/L."""

    def __init__(
        self,
        kappa: float = 100.0,
        dim: int = 20,
        tol: float = 1e-3,
        criterion: str = "rel_dist",
        rotation_seed: int = 0,
    ):
        self.kappa = float(kappa)
        self.eigenvalues = deepobs_like_spectrum(self.kappa, dim)
        gen = torch.Generator().manual_seed(rotation_seed)
        q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        self.eigenvectors = q * torch.sign(torch.diagonal(r))  # columns, matching `eigenvalues`
        self.matrix = (self.eigenvectors * self.eigenvalues) @ self.eigenvectors.T
        self.matrix = 0.5 * (self.matrix + self.matrix.T)
        self.L = float(self.eigenvalues.max())
        self.mu = float(self.eigenvalues.min())
        center = torch.ones(dim, dtype=torch.float64)
        super().__init__(
            f"quadratic-k{self.kappa:.0e}".replace("+0", "").replace("+", ""),
            dim,
            box=(center - 10, center + 10),
            start_box=(center - 2, center + 2),
            default_start=center + 2 * self.eigenvectors[:, -1] + self.eigenvectors[:, 0],
            minimizers=center,
            f_min=0.0,
            success=Success(criterion, tol),
            description=f"rotated quadratic, condition number {self.kappa:g}",
        )

    def value(self, X: Tensor) -> Tensor:
        D = X - self.const("center", self.minimizers[0], X)
        return 0.5 * ((D @ self.const("A", self.matrix, X)) * D).sum(-1)

    def value_and_grad(self, X: Tensor, grad: Tensor) -> Tensor:
        D = X - self.const("center", self.minimizers[0], X)
        AD = D @ self.const("A", self.matrix, X)
        grad.copy_(AD)
        return 0.5 * (AD * D).sum(-1)


class Ravine(Problem):
    """A narrow curved valley: f(x, y) = 1/2 (x - a)^2 + k/2 (y - sin x)^2. The valley floor is the sine
    curve y = sin x, of width ~1/sqrt(k); the unique minimum 0 is at (a, sin a)."""

    def __init__(self, k: float = 100.0, a: float = 2.0, tol: float = 1e-6):
        self.k, self.a = float(k), float(a)
        super().__init__(
            "ravine",
            2,
            box=([-8.0, -6.0], [8.0, 6.0]),
            start_box=([-3.0, -2.0], [3.0, 2.0]),
            default_start=[-2.5, 1.0],
            minimizers=[a, math.sin(a)],
            f_min=0.0,
            success=Success("gap", tol),
            description=f"curved ravine along y = sin x, curvature ratio {k:g}",
        )

    def value(self, X: Tensor) -> Tensor:
        x, y = X[..., 0], X[..., 1]
        return 0.5 * (x - self.a) ** 2 + 0.5 * self.k * (y - torch.sin(x)) ** 2

    def value_and_grad(self, X: Tensor, grad: Tensor) -> Tensor:
        x, y = X[..., 0], X[..., 1]
        dx = x - self.a
        r = y - torch.sin(x)
        kr = r * self.k
        grad[..., 0] = dx - kr * torch.cos(x)
        grad[..., 1] = kr
        return 0.5 * (dx * dx + kr * r)
