"""Memory bandwidth, measured in the same run as the optimizers it is the floor for."""

from __future__ import annotations

from collections.abc import Callable

import torch


def inplace_triad(numel: int, device: torch.device) -> tuple[Callable[[], None], int]:
    """a += s*b: a STREAM-triad-like kernel with the optimizers' read-modify-write access pattern
    (reads a and b, writes a: 12 bytes per fp32 element, no write-allocate traffic).
    Returns the kernel and the bytes it moves."""
    a = torch.rand(numel, device=device)
    b = torch.rand(numel, device=device)
    return (lambda: a.add_(b, alpha=1e-7)), 3 * 4 * numel


def device_copy(numel: int, device: torch.device) -> tuple[Callable[[], None], int]:
    """dst = src: device-to-device copy (8 bytes per fp32 element), the GPU reference of the issue."""
    src = torch.rand(numel, device=device)
    dst = torch.empty_like(src)
    return (lambda: dst.copy_(src)), 2 * 4 * numel
