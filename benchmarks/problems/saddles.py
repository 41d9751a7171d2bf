"""Saddle points, each started at an explicit offset from the saddle: a quadratic saddle a x^2 - c y^2,
the monkey saddle x^3 - 3 x y^2 (degenerate: zero Hessian), and an N-D strict saddle made bounded below
by a quartic term, with known minima."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Problem, Success, rowwise_matmul


class QuadraticSaddle(Problem):
    """f(x, y) = a x^2 - c y^2 (default 5x^2 - y^2): saddle at 0, unbounded below, so success = escape.
    Gradient descent with lr eta from (0, delta) leaves radius r after ln(r/delta) / ln(1 + 2 c eta) steps."""

    def __init__(self, a: float = 5.0, c: float = 1.0, offset: float = 1e-3, radius: float = 1.0):
        self.a, self.c = float(a), float(c)
        super().__init__(
            f"saddle-{a:g}x2-{c:g}y2".replace("-1y2", "-y2"),
            2,
            box=(-10.0, 10.0),
            default_start=None,
            saddle=[0.0, 0.0],
            escape_radius=radius,
            escape_drop=0.5 * c * radius**2,  # half of what leaving along y alone gives
            start_offset=offset,
            default_direction=[1.0, 1.0],
            success=Success("escape", radius),
            description=f"{a:g}x² − {c:g}y², started {offset:g} from the saddle",
        )
        self.positive_directions = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
        self.positive_curvatures = (2 * self.a,)

    def value(self, X: Tensor) -> Tensor:
        x, y = X[..., 0], X[..., 1]
        return self.a * x * x - self.c * y * y

    def value_and_grad(self, X: Tensor, grad: Tensor) -> Tensor:
        x, y = X[..., 0], X[..., 1]
        grad[..., 0] = x * (2 * self.a)
        grad[..., 1] = y * (-2 * self.c)
        return self.a * x * x - self.c * y * y

    def escape_steps_gd(self, lr: float, offset: float | None = None) -> float:
        """Analytic steps for gradient descent started at (0, offset) to reach radius r: y grows by
        (1 + 2 c lr) per step."""
        delta = self.start_offset if offset is None else offset
        return math.log(self.escape_radius / delta) / math.log(1 + 2 * self.c * lr)


class MonkeySaddle(Problem):
    """f(x, y) = x^3 - 3 x y^2: a degenerate saddle (gradient and Hessian vanish at 0) with three
    descending valleys; unbounded below, so success = escape."""

    def __init__(self, offset: float = 1e-2, radius: float = 1.0):
        super().__init__(
            "monkey-saddle",
            2,
            box=(-10.0, 10.0),
            default_start=None,
            saddle=[0.0, 0.0],
            escape_radius=radius,
            escape_drop=0.5 * radius**3,  # half of a valley's floor at that radius (-r^3)
            start_offset=offset,
            default_direction=[1.0, 1.0],
            success=Success("escape", radius),
            description=f"x³ − 3xy², started {offset:g} from the saddle",
        )

    def value(self, X: Tensor) -> Tensor:
        x, y = X[..., 0], X[..., 1]
        return x**3 - 3 * x * y * y

    def value_and_grad(self, X: Tensor, grad: Tensor) -> Tensor:
        x, y = X[..., 0], X[..., 1]
        x2, y2 = x * x, y * y
        grad[..., 0] = (x2 - y2) * 3.0
        grad[..., 1] = x * y * -6.0
        return x * (x2 - 3.0 * y2)


class QuarticSaddle(Problem):
    """f(x) = sum_i lambda_i z_i^2 / 2 + z_i^4 / 4 with z = Q^T x (fixed random rotation Q): a strict
    saddle at 0 with `negative` directions of curvature -1 and -1/2, the others positive (log-spaced in
    [1, 10]). Minima at z_i = +-sqrt(-lambda_i) on the negative directions and 0 elsewhere (2^negative of
    them), value -sum lambda_i^2 / 4. Success: reaching a minimum (gap); escape is tracked on the way."""

    def __init__(
        self,
        dim: int = 10,
        negative: int = 2,
        offset: float = 1e-3,
        radius: float = 0.5,
        tol: float = 1e-6,
        rotation_seed: int = 1,
    ):
        neg = -torch.linspace(1.0, 0.5, negative, dtype=torch.float64)
        pos = torch.logspace(0, 1, dim - negative, dtype=torch.float64)
        self.eigenvalues = torch.cat([neg, pos])
        gen = torch.Generator().manual_seed(rotation_seed)
        q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        self.rotation = q * torch.sign(torch.diagonal(r))
        signs = torch.cartesian_prod(*[torch.tensor([1.0, -1.0], dtype=torch.float64)] * negative)
        signs = signs.reshape(-1, negative)
        z_min = torch.zeros(signs.shape[0], dim, dtype=torch.float64)
        z_min[:, :negative] = signs * torch.sqrt(-neg)
        super().__init__(
            f"quartic-saddle-{dim}d",
            dim,
            box=(-5.0, 5.0),
            default_start=None,
            saddle=torch.zeros(dim),
            escape_radius=radius,
            start_offset=offset,
            minimizers=z_min @ self.rotation.T,
            f_min=float(-(neg**2).sum() / 4),
            success=Success("gap", tol),
            escape_drop=0.02,  # leaving along the steepest negative direction to r gives about -0.047
            description=f"{dim}-D strict saddle with {negative} negative curvatures and a quartic "
            f"term, started {offset:g} from the saddle",
        )
        self.positive_directions = self.rotation[:, negative:].T.contiguous()
        self.positive_curvatures = tuple(float(x) for x in pos)

    def value(self, X: Tensor) -> Tensor:
        Z = rowwise_matmul(X, self.const("Q", self.rotation, X))
        Z2 = Z * Z
        return (Z2 * (0.5 * self.const("lam", self.eigenvalues, X) + 0.25 * Z2)).sum(-1)

    def value_and_grad(self, X: Tensor, grad: Tensor) -> Tensor:
        Z = rowwise_matmul(X, self.const("Q", self.rotation, X))
        Z2 = Z * Z
        lam = self.const("lam", self.eigenvalues, X)
        grad.copy_(rowwise_matmul((Z2 + lam) * Z, self.const("QT", self.rotation.T.contiguous(), X)))
        return (Z2 * (0.5 * lam + 0.25 * Z2)).sum(-1)
