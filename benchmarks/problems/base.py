"""A test problem: a batched objective with a known answer, kept apart from the runner and from scoring.

`X` always has the problem's dimension last and any number of leading run dimensions: `value(X)` has
shape `X.shape[:-1]`, so thousands of independent runs are evaluated by one chain of tensor ops. Each
run's value and gradient must be the same bit for bit whatever else is in X (elementwise ops, sums over
the last dimension, and `rowwise_matmul` for products with a matrix), so that a run's record never
depends on its batch.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

DEFAULT_START = -1
"""The seed value that stands for the problem's default start point instead of a random one."""

ROW_BLOCK = 96
"""Rows per matrix product in `rowwise_matmul`: a multiple of the usual GEMM register tiles (8, 12, 16,
24, 32, 48 rows), so every row of a block goes through the same full tile."""


def rowwise_matmul(X: Tensor, A: Tensor) -> Tensor:
    """X @ A for X of shape (..., k) and A (k, m), with each row's result independent of the other rows.

    A BLAS chooses its kernel, and so the order of each row's sums, from the shape of the product: one
    run alone (1 x k) and the same run among thousands (n x k), or inside a strided (slabs, runs, k)
    view, can differ in the last bits, which a trajectory then amplifies. Here every product has one
    shape, (ROW_BLOCK x k) @ (k x m): the rows are copied into zero-padded blocks, multiplied block by
    block in one batched product, and each row's result is that of its block, whatever the block's other
    rows hold."""
    lead, k = X.shape[:-1], X.shape[-1]
    n = X.numel() // k if k else 0
    blocks = -(-n // ROW_BLOCK)
    padded = X.new_empty(blocks * ROW_BLOCK, k)
    padded[:n].view(*lead, k).copy_(X)
    padded[n:].zero_()
    out = torch.bmm(padded.view(blocks, ROW_BLOCK, k), A.expand(blocks, *A.shape))
    return out.view(blocks * ROW_BLOCK, A.shape[-1])[:n].view(*lead, A.shape[-1])


@dataclass(frozen=True)
class Success:
    """When a run has succeeded (and stops).

    kind: "gap" f(x) - f_min <= tol; "dist" distance to the nearest minimizer <= tol; "rel_dist" that
    distance <= tol times its value at the start; "escape" the run left the saddle (see Problem).
    """

    kind: str
    tol: float

    def __post_init__(self):
        if self.kind not in ("gap", "dist", "rel_dist", "escape"):
            raise ValueError(f"unknown success kind {self.kind!r}")

    def describe(self) -> str:
        return {
            "gap": f"f − f* ≤ {self.tol:g}",
            "dist": f"‖x − x*‖ ≤ {self.tol:g}",
            "rel_dist": f"‖x − x*‖ ≤ {self.tol:g}·‖x₀ − x*‖",
            "escape": "escaped the saddle",
        }[self.kind]


def _as_box(lo, hi, dim: int) -> tuple[Tensor, Tensor]:
    lo = torch.as_tensor(lo, dtype=torch.float64).expand(dim).clone()
    hi = torch.as_tensor(hi, dtype=torch.float64).expand(dim).clone()
    if not bool((lo < hi).all()):
        raise ValueError(f"empty box: lo={lo.tolist()} hi={hi.tolist()}")
    return lo, hi


class Problem:
    """Base class. Subclasses define `value(X)` (plain tensor ops, so autograd can check the gradient)
    and `value_and_grad(X, grad)`, which writes the analytic gradient into `grad` (same shape as X,
    possibly a strided view) and returns the values.

    Args:
        name: identifier used in result tables.
        dim: dimension of x.
        box: (lo, hi), scalars or per-coordinate: a run that leaves it (or turns non-finite) has diverged.
        start_box: (lo, hi) random starts are drawn from uniformly (default: `box`).
        default_start: the canonical start point (e.g. (-1.2, 1) for Rosenbrock).
        minimizers: (k, dim) known global minimizers, or None (unbounded below).
        f_min: the minimum value, or None.
        success: the success criterion of a run.
        saddle, escape_radius, escape_drop: for saddle problems. A run has escaped once it is at least
            `escape_radius` from the saddle *and* f(x) <= f(saddle) - escape_drop (it left downhill).
        start_offset: saddle problems start at saddle + start_offset * u, u a unit vector (random per
            seed; `default_direction` for the default start).
    """

    def __init__(
        self,
        name: str,
        dim: int,
        *,
        box,
        default_start,
        success: Success,
        start_box=None,
        minimizers=None,
        f_min: float | None = None,
        saddle=None,
        escape_radius: float | None = None,
        escape_drop: float = 0.0,
        start_offset: float | None = None,
        default_direction=None,
        description: str = "",
    ):
        self.name = name
        self.dim = dim
        self.description = description
        self.box = _as_box(*box, dim)
        self.start_box = _as_box(*start_box, dim) if start_box is not None else self.box
        self.minimizers = (
            None if minimizers is None else torch.as_tensor(minimizers, dtype=torch.float64).reshape(-1, dim)
        )
        self.f_min = f_min
        self.success = success
        self.saddle = None if saddle is None else torch.as_tensor(saddle, dtype=torch.float64).reshape(dim)
        self.escape_radius = escape_radius
        self.escape_drop = escape_drop
        self.start_offset = start_offset
        if self.saddle is not None:
            if escape_radius is None or start_offset is None:
                raise ValueError(f"{name}: a saddle problem needs escape_radius and start_offset")
            direction = (
                torch.ones(dim, dtype=torch.float64)
                if default_direction is None
                else torch.as_tensor(default_direction, dtype=torch.float64)
            )
            default_start = self.saddle + start_offset * direction / direction.norm()
        self.default_start = torch.as_tensor(default_start, dtype=torch.float64).reshape(dim)
        if success.kind in ("dist", "rel_dist") and self.minimizers is None:
            raise ValueError(f"{name}: a distance criterion needs minimizers")
        if success.kind == "gap" and f_min is None:
            raise ValueError(f"{name}: a gap criterion needs f_min")
        if success.kind == "escape" and self.saddle is None:
            raise ValueError(f"{name}: an escape criterion needs a saddle")
        self._consts: dict = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim})"

    # -- the objective (subclasses) ---------------------------------------------------------------
    def value(self, X: Tensor) -> Tensor:
        raise NotImplementedError

    def value_and_grad(self, X: Tensor, grad: Tensor) -> Tensor:
        raise NotImplementedError

    def const(self, key: str, tensor: Tensor, like: Tensor) -> Tensor:
        """A constant tensor in X's dtype and device, converted once (the runner calls this every step)."""
        cache_key = (key, like.dtype, like.device)
        cached = self._consts.get(cache_key)
        if cached is None:
            cached = self._consts[cache_key] = tensor.to(dtype=like.dtype, device=like.device)
        return cached

    # -- what the runner and scoring ask ------------------------------------------------------------
    @property
    def is_saddle(self) -> bool:
        return self.saddle is not None

    @property
    def is_noisy(self) -> bool:
        """Noisy problems (see benchmarks.problems.noisy) add noise to the gradient the optimizer sees:
        the runner calls their `gradient_noise(grad, seeds, step)` after `value_and_grad`. The value,
        and so success and every final measure, stays the noise-free objective."""
        return False

    @cached_property
    def f_saddle(self) -> float | None:
        return None if self.saddle is None else float(self.value(self.saddle))

    def starts(self, seeds: Sequence[int]) -> Tensor:
        """(len(seeds), dim) float64 start points: the same seed gives the same point to every optimizer
        and lr (common random numbers); DEFAULT_START gives `default_start`."""
        out = torch.empty(len(seeds), self.dim, dtype=torch.float64)
        for i, seed in enumerate(seeds):
            if seed == DEFAULT_START:
                out[i] = self.default_start
                continue
            gen = torch.Generator().manual_seed(zlib.crc32(self.name.encode()) * 100_003 + int(seed))
            if self.saddle is not None:
                u = torch.randn(self.dim, generator=gen, dtype=torch.float64)
                out[i] = self.saddle + self.start_offset * u / u.norm()
            else:
                lo, hi = self.start_box
                out[i] = lo + (hi - lo) * torch.rand(self.dim, generator=gen, dtype=torch.float64)
        return out

    def distance(self, X: Tensor) -> Tensor | None:
        """Distance to the nearest known minimizer, shape X.shape[:-1]; None without minimizers."""
        if self.minimizers is None:
            return None
        m = self.const("minimizers", self.minimizers, X)
        if m.shape[0] == 1:
            return torch.linalg.vector_norm(X - m[0], dim=-1)
        return torch.linalg.vector_norm(X.unsqueeze(-2) - m, dim=-1).amin(-1)

    # Saddles with positive curvature set these (rows: unit Hessian eigenvectors at the saddle with
    # positive eigenvalues, and those eigenvalues); a degenerate saddle has none.
    positive_directions: Tensor | None = None
    positive_curvatures: tuple[float, ...] = ()

    def positive_displacement(self, X: Tensor) -> Tensor | None:
        """||P+ (x - saddle)||: how far a run lies from the saddle along its positive-curvature
        directions, shape X.shape[:-1]; None for problems without them."""
        if self.positive_directions is None:
            return None
        D = self.const("positive_directions", self.positive_directions.T.contiguous(), X)
        return torch.linalg.vector_norm(rowwise_matmul(X - self.const("saddle", self.saddle, X), D), dim=-1)

    def thrown_out(self, X: Tensor, reference: Tensor) -> Tensor | None:
        """True where a run's positive-curvature displacement has grown past twice its reference (the
        larger of its start's and its first step's; plus a tenth of the start offset, for starts that
        lie almost on the negative directions): growth along a direction that curves up, an unstable
        step size, which the runner counts as divergence until the run has escaped. None for problems
        without positive curvature."""
        now = self.positive_displacement(X)
        if now is None:
            return None
        return now > 2 * reference + 0.1 * self.start_offset

    def escape_score(self, X: Tensor, values: Tensor) -> Tensor:
        """<= 0 once a run has escaped: max(r - ||x - saddle||, f(x) - (f(saddle) - drop))."""
        s = self.const("saddle", self.saddle, X)
        far = self.escape_radius - torch.linalg.vector_norm(X - s, dim=-1)
        down = values - (self.f_saddle - self.escape_drop)
        return torch.maximum(far, down)

    def success_score(self, X: Tensor, values: Tensor) -> Tensor:
        """The quantity compared with `thresholds(...)`: success once score <= threshold."""
        kind = self.success.kind
        if kind == "gap":
            return values - self.f_min
        if kind == "escape":
            return self.escape_score(X, values)
        return self.distance(X)

    def thresholds(self, X0: Tensor) -> Tensor:
        """Per-run thresholds for start points X0 (rel_dist depends on the start)."""
        tol = self.success.tol
        if self.success.kind == "rel_dist":
            return tol * self.distance(X0)
        if self.success.kind == "escape":
            return torch.zeros(X0.shape[:-1], dtype=X0.dtype)
        return torch.full(X0.shape[:-1], tol, dtype=X0.dtype)

    def info(self) -> dict:
        """Plain-data description, for tables and for the CSV."""
        return {
            "problem": self.name,
            "dim": self.dim,
            "f_min": self.f_min,
            "success_kind": self.success.kind,
            "success_tol": self.success.tol,
            "criterion": self.success.describe(),
        }
