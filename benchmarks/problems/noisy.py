"""Noisy problems (DeepOBS's stochastic test problems): a deterministic problem whose gradient, as the
optimizer sees it, carries Gaussian noise, as a minibatch gradient does.

The noise of a run is a pure function of (problem name, seed, step, coordinate): each coordinate's two
uniforms come from an integer hash of those four numbers (counter-based, like Philox, with no generator
state) and Box-Muller turns them into a standard normal. So a run's noise never depends on which other
runs share its batch or where it sits in it, a run that stops and a problem that is no longer evaluated
leave nothing to keep in step, and the same seed gives the same noise sequence to every optimizer and lr
(common random numbers, as the start points are). A shared torch.Generator would hand out its draws in
batch-layout order instead.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import Problem, Success, rowwise_matmul

_MASK32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """x * c mod 2^32 for x in [0, 2^32), in two 16-bit halves of c so no int64 product overflows."""
    low = x * (c & 0xFFFF)
    high = ((x * (c >> 16)) & 0xFFFF) << 16
    return (low + high) & _MASK32


def _mix32(x: Tensor) -> Tensor:
    """A bijection of 32-bit integers with low bias: "lowbias32" (C. Wellons, hash-prospector)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def standard_normals(key: int, seeds: Tensor, steps: int | Tensor, dim: int) -> Tensor:
    """Standard normals, a function of (key, seed, step, coordinate) only: float64 of shape
    (len(seeds), dim) for one step, (len(seeds), len(steps), dim) for a 1-D tensor of steps.

    The hash absorbs key, the seed's two 32-bit halves, the step and a counter (2 per coordinate) one
    word at a time; uniforms (h + 1/2) / 2^32 lie in (0, 1), so Box-Muller's log is finite (|z| < 6.7).
    Every operation is elementwise, so a draw is the same bit for bit whatever is drawn beside it."""
    one_step = not isinstance(steps, Tensor)
    steps = torch.as_tensor([steps] if one_step else steps, dtype=torch.int64).reshape(1, -1, 1)
    seeds = seeds.to(torch.int64).reshape(-1, 1, 1)
    h = _mix32(torch.full_like(seeds, key & _MASK32) ^ (seeds & _MASK32))
    h = _mix32(h ^ ((seeds >> 32) & _MASK32))
    h = _mix32(h ^ (steps & _MASK32))
    u = (_mix32(h ^ torch.arange(2 * dim, dtype=torch.int64)).to(torch.float64) + 0.5) * 2.0**-32
    z = torch.sqrt(-2.0 * torch.log(u[..., 0::2])) * torch.cos((2 * math.pi) * u[..., 1::2])
    return z[:, 0] if one_step else z


@dataclass(frozen=True)
class _NoiseChunk:
    """The noise of consecutive steps for one table of run seeds, drawn ahead by `gradient_noise`."""

    seeds: Tensor  # the runs' seeds it was drawn for
    first: int  # its first step
    noise: Tensor  # (distinct seeds, steps, dim), in the gradient's dtype
    inverse: Tensor  # run -> its seed's row


class NoisyGradient(Problem):
    """`base`'s objective, its minimum, starts and boxes, with noise added to every gradient the
    optimizer sees. f stays noise-free: success, thresholds and the final gap and distance measure the
    true objective, so they say how close the noisy optimization came.

    noise: the standard deviation of every coordinate's noise, or a (dim, dim) matrix L: noise z @ L for
    standard normal z (covariance L^T L), e.g. L = s A for a quadratic with Hessian A: the minibatch
    gradient A (x - x* + s z) of DeepOBS's quadratic_deep, whose minibatch minimum moves by s z.
    success: the criterion of the noisy problem (usually looser than the base's: noise sets a floor).
    """

    CHUNK_ELEMENTS = 1 << 20
    """gradient_noise draws up to 64 steps ahead, at most this many numbers at a time."""

    def __init__(
        self,
        base: Problem,
        noise: float | Tensor,
        success: Success,
        name: str | None = None,
        description: str = "",
    ):
        if base.is_saddle:
            raise ValueError(f"{base.name}: noisy saddle problems are not supported")
        name = name or f"noisy-{base.name}"
        super().__init__(
            name,
            base.dim,
            box=base.box,
            start_box=base.start_box,
            default_start=base.default_start,
            minimizers=base.minimizers,
            f_min=base.f_min,
            success=success,
            description=description or f"{base.description}, noisy gradient",
        )
        self.base = base
        self.key = zlib.crc32(name.encode())
        if isinstance(noise, Tensor):
            self.noise_matrix: Tensor | None = noise.to(torch.float64)
            if self.noise_matrix.shape != (base.dim, base.dim):
                raise ValueError(f"{name}: noise matrix of shape {tuple(noise.shape)}, dim {base.dim}")
            self.noise_std = None
        else:
            if not noise > 0:
                raise ValueError(f"{name}: noise std must be positive, got {noise}")
            self.noise_matrix, self.noise_std = None, float(noise)
        self._chunk: _NoiseChunk | None = None

    @property
    def is_noisy(self) -> bool:
        return True

    def value(self, X: Tensor) -> Tensor:
        return self.base.value(X)

    def value_and_grad(self, X: Tensor, grad: Tensor) -> Tensor:
        """The noise-free value and gradient (the runner adds the noise with `gradient_noise`)."""
        return self.base.value_and_grad(X, grad)

    def noise(self, seeds: Tensor, steps: int | Tensor) -> Tensor:
        """Float64 noise of each seed's run at `steps`: (len(seeds), dim) for one step, (len(seeds),
        len(steps), dim) for a 1-D tensor of steps."""
        z = standard_normals(self.key, seeds, steps, self.dim)
        if self.noise_matrix is None:
            return z * self.noise_std
        return rowwise_matmul(z, self.noise_matrix)

    def gradient_noise(self, grad: Tensor, seeds: Tensor, step: int) -> None:
        """Adds each run's noise at `step` to `grad` (runs x dim, any leading shape; possibly a strided
        view); seeds: the runs' seeds, shape grad.shape[:-1]. The noise is drawn once per distinct seed,
        for CHUNK_ELEMENTS worth of steps at a time (a pure function of seed and step, so drawing ahead
        changes nothing but the cost: the runner asks for every step in turn)."""
        chunk = self._chunk
        drawn = chunk is not None and chunk.first <= step < chunk.first + chunk.noise.shape[1]
        if not (drawn and torch.equal(chunk.seeds, seeds)):
            distinct, inverse = torch.unique(seeds, return_inverse=True)
            length = max(1, min(64, self.CHUNK_ELEMENTS // (distinct.numel() * self.dim)))
            steps = torch.arange(step, step + length)
            noise = self.noise(distinct, steps).to(grad.dtype)
            chunk = self._chunk = _NoiseChunk(seeds.clone(), step, noise, inverse)
        grad.add_(chunk.noise[:, step - chunk.first][chunk.inverse])

    def info(self) -> dict:
        """Adds noise_std: the rms standard deviation of a coordinate's noise."""
        if self.noise_matrix is None:
            std = self.noise_std
        else:
            std = float(torch.linalg.matrix_norm(self.noise_matrix) / math.sqrt(self.dim))
        return {**super().info(), "noise_std": std}
