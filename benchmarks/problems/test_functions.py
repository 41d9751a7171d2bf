"""Classic test functions with known minima: Rosenbrock (2-D and N-D), Beale, Branin-Hoo, a rotated
ill-conditioned quadratic, and a narrow curved valley. Each has an analytic batched gradient (checked
against autograd by tests/test_harness_problems.py)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Problem, Success, rowwise_matmul


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


class Branin(Problem):
    """Branin-Hoo: f(x, y) = a (y - b x^2 + c x - r)^2 + s (1 - t) cos x + s with the standard constants
    a = 1, b = 5.1 / (4 pi^2), c = 5 / pi, r = 6, s = 10, t = 1 / (8 pi). Every point of the valley
    y = b x^2 - c x + r where cos x = -1 is a global minimum, value s t = 5 / (4 pi) = 0.397887...: three
    in the usual domain [-5, 10] x [0, 15], at (-pi, 12.275), (pi, 2.275) and (3 pi, 2.475), where starts
    are drawn. About one descent path in ten from the domain leaves it, to the fourth minimum at
    (5 pi, 12.875), so the divergence box [-10, 20] x [-5, 25] is wider than the domain, and that
    minimum is listed too; the next ones, (-3 pi, 32.475) and (7 pi, 33.4), lie outside the box."""

    A, B, C, R, S, T = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)

    def __init__(self, tol: float = 1e-6):
        super().__init__(
            "branin",
            2,
            box=([-10.0, -5.0], [20.0, 25.0]),
            start_box=([-5.0, 0.0], [10.0, 15.0]),
            default_start=[2.5, 12.5],  # DeepOBS's two_d_branin
            minimizers=[[-math.pi, 12.275], [math.pi, 2.275], [3 * math.pi, 2.475], [5 * math.pi, 12.875]],
            f_min=self.S * self.T,
            success=Success("gap", tol),
            description="Branin-Hoo: three global minima in its domain",
        )

    def value(self, X: Tensor) -> Tensor:
        x, y = X[..., 0], X[..., 1]
        h = y - self.B * x * x + self.C * x - self.R
        return self.A * h * h + self.S * (1 - self.T) * torch.cos(x) + self.S

    def value_and_grad(self, X: Tensor, grad: Tensor) -> Tensor:
        x, y = X[..., 0], X[..., 1]
        h = y - self.B * x * x + self.C * x - self.R
        ah2 = h * (2 * self.A)
        grad[..., 0] = ah2 * (self.C - 2 * self.B * x) - self.S * (1 - self.T) * torch.sin(x)
        grad[..., 1] = ah2
        return self.A * h * h + self.S * (1 - self.T) * torch.cos(x) + self.S


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


def deepobs_deep_spectrum(dim: int = 100, seed: int = 42) -> Tensor:
    """The spectrum of DeepOBS's quadratic_deep: 90% of the eigenvalues uniform in (0, 1), 10% uniform in
    (30, 60), after the Hessian spectra reported for deep nets (Chaudhari et al. 2017,
    arXiv:1611.01838). Drawn once from a fixed generator (a property of the problem), in descending
    order."""
    gen = torch.Generator().manual_seed(seed)
    top = dim // 10
    high = 30.0 + 30.0 * torch.rand(top, generator=gen, dtype=torch.float64)
    low = torch.rand(dim - top, generator=gen, dtype=torch.float64)
    return torch.cat([high, low]).sort(descending=True).values


class RotatedQuadratic(Problem):
    """f(x) = 1/2 (x - x*)^T A (x - x*), A = Q diag(lambda) Q^T with a fixed random rotation Q and a
    DeepOBS-like spectrum of condition number kappa (L = 1, mu = 1/kappa), or the given `spectrum` (then
    `name` is needed, dim is the spectrum's length and kappa its condition number). Minimum 0 at
    x* = (1, ..., 1).

    Success by default: relative distance ||x - x*|| <= tol * ||x0 - x*||, the quantity whose
    gradient-descent step count has the closed form ceil(ln tol / ln(1 - 1/kappa)) at lr = 1/L."""

    def __init__(
        self,
        kappa: float = 100.0,
        dim: int = 20,
        tol: float = 1e-3,
        criterion: str = "rel_dist",
        rotation_seed: int = 0,
        *,
        spectrum: Tensor | None = None,
        name: str | None = None,
        description: str | None = None,
    ):
        if spectrum is None:
            self.kappa = float(kappa)
            self.eigenvalues = deepobs_like_spectrum(self.kappa, dim)
        else:
            if name is None:
                raise ValueError("a quadratic with a given spectrum needs a name")
            self.eigenvalues = torch.as_tensor(spectrum, dtype=torch.float64)
            dim = self.eigenvalues.numel()
            self.kappa = float(self.eigenvalues.max() / self.eigenvalues.min())
        gen = torch.Generator().manual_seed(rotation_seed)
        q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        self.eigenvectors = q * torch.sign(torch.diagonal(r))  # columns, matching `eigenvalues`
        self.matrix = (self.eigenvectors * self.eigenvalues) @ self.eigenvectors.T
        self.matrix = 0.5 * (self.matrix + self.matrix.T)
        self.L = float(self.eigenvalues.max())
        self.mu = float(self.eigenvalues.min())
        center = torch.ones(dim, dtype=torch.float64)
        super().__init__(
            name or f"quadratic-k{self.kappa:.0e}".replace("+0", "").replace("+", ""),
            dim,
            box=(center - 10, center + 10),
            start_box=(center - 2, center + 2),
            default_start=center + 2 * self.eigenvectors[:, -1] + self.eigenvectors[:, 0],
            minimizers=center,
            f_min=0.0,
            success=Success(criterion, tol),
            description=description or f"rotated quadratic, condition number {self.kappa:g}",
        )

    def value(self, X: Tensor) -> Tensor:
        D = X - self.const("center", self.minimizers[0], X)
        return 0.5 * (rowwise_matmul(D, self.const("A", self.matrix, X)) * D).sum(-1)

    def value_and_grad(self, X: Tensor, grad: Tensor) -> Tensor:
        D = X - self.const("center", self.minimizers[0], X)
        AD = rowwise_matmul(D, self.const("A", self.matrix, X))
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
