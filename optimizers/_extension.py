"""Loads the compiled kernels (optimizers._C) and says which devices they serve."""

from __future__ import annotations

import warnings

import torch

try:
    from optimizers import _C  # noqa: F401  (importing registers torch.ops.optimizers.*)

    LOAD_ERROR: Exception | None = None
except ImportError as error:  # not built, or built against another torch
    _C = None
    LOAD_ERROR = error

_warned = False

if _C is not None:
    # The operators only mutate their inputs, so under fake tensors (torch.compile, opcheck) they do nothing.
    for _name in ("momentum_", "rmsprop_", "adam_", "diffgrad_"):
        torch.library.register_fake(f"optimizers::{_name}")(lambda *args, **kwargs: None)


def extension_available() -> bool:
    """True when the compiled extension optimizers._C is loaded."""
    return _C is not None


def has_kernel(device: torch.device) -> bool:
    """True when a fused kernel is compiled for this device type."""
    if _C is None:
        return False
    if device.type == "cpu":
        return True
    return device.type == "cuda" and bool(_C.with_cuda)


def missing_kernel_message(optimizer: str, device: torch.device) -> str:
    if _C is None:
        return (
            f"{optimizer}(fused=True): the compiled extension optimizers._C could not be loaded "
            f"({LOAD_ERROR}). Build it with `pip install --no-build-isolation .` after installing "
            "torch, or pass fused=False to use the reference implementation."
        )
    return (
        f"{optimizer}(fused=True): no fused kernel for device '{device.type}' in this build "
        f"(CUDA kernels compiled: {bool(_C.with_cuda)}). Pass fused=False to use the "
        "reference implementation."
    )


def warn_fallback_once() -> None:
    """With fused=None and no extension, say once that the reference path runs."""
    global _warned
    if not _warned and _C is None:
        _warned = True
        warnings.warn(
            f"optimizers._C could not be loaded ({LOAD_ERROR}); using the slower reference "
            "implementation. Build the extension with `pip install --no-build-isolation .`.",
            RuntimeWarning,
            stacklevel=3,
        )
