"""Memory bandwidth, measured in the same run as the optimizers it is the floor for."""

from __future__ import annotations

import pathlib
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


FALLBACK_CACHE_BYTES = 32 << 20
"""The last-level cache assumed where the machine does not say (a 2-core EPYC VM's L3)."""


def last_level_cache_bytes(device: torch.device) -> int:
    """The largest cache between the cores and memory: the GPU's L2, or the CPU's largest cache as
    Linux lists it (sysfs), else FALLBACK_CACHE_BYTES."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).L2_cache_size
    sizes = []
    for entry in pathlib.Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = entry.read_text().strip()
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        sizes.append(int(text.rstrip("KMG")) * scale)
    return max(sizes, default=FALLBACK_CACHE_BYTES)


def cache_flusher(device: torch.device) -> Callable[[], None]:
    """A kernel that reads twice the last-level cache, run before each timed step so that every
    implementation starts from the same cold cache. Without it, the implementation timed after
    another one found the grads they share still cached (1M params: 12 MB a step, in a 32 MB L3),
    and the first of each round paid for them. It reads rather than writes: the lines it leaves
    are clean, so a step does not write the junk back either, and with a 480 MB L3 a read took 41
    ms against a write's 61, most of a default speed run."""
    junk = torch.ones(2 * last_level_cache_bytes(device) // 4, device=device)
    return lambda: junk.sum()
