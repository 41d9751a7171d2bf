"""Loads the compiled kernels (optimizers._C) and says which devices they serve."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

try:
    from optimizers import _C  # noqa: F401  (importing registers torch.ops.optimizers.*)

    LOAD_ERROR: Exception | None = None
except ImportError as error:  # not built, or built against another torch
    _C = None
    LOAD_ERROR = error


def _registered_operators() -> tuple[str, ...]:
    """The operators that loading optimizers._C defined (the schemas of csrc/ops.cpp), as the
    dispatcher lists them ('optimizers::adam_' is 'adam_'): no hand-kept list to fall behind."""
    prefix = "optimizers::"
    names = torch._C._dispatch_get_all_op_names()
    return tuple(sorted(name.removeprefix(prefix) for name in names if name.startswith(prefix)))


OPERATORS = _registered_operators() if _C is not None else ()
_SCALARS = ("lr_tensor", "grad_scale", "found_inf")

_warned: set[str] = set()  # device types whose fallback to the reference path was reported


def _fake_kernel(name: str):
    """The operator under fake tensors (torch.compile, opcheck) and on the meta device: it only
    mutates its inputs, so it computes nothing, but checks that every tensor lies on the params'
    device. Without that check a single meta tensor among CPU ones would send the call here, and
    the step would silently do nothing."""

    def fake(*lists, model_params=None, **kwargs):
        if not lists[0]:
            return
        device = lists[0][0].device
        schema = getattr(torch.ops.optimizers, name).default._schema
        named = [(arg.name, lst) for arg, lst in zip(schema.arguments, lists)]
        named.append(("model_params", model_params or []))
        for where, tensors in named:
            for i, t in enumerate(tensors):
                if t.device != device:
                    raise RuntimeError(
                        f"optimizers::{name}: {where}[{i}] is on {t.device} but params[0] is on {device}"
                    )
        for key in _SCALARS:
            t = kwargs.get(key)
            if t is not None and t.device not in (device, torch.device("cpu")):
                raise RuntimeError(f"optimizers::{name}: {key} is on {t.device} but params are on {device}")

    return fake


if _C is not None:
    for _name in OPERATORS:
        torch.library.register_fake(f"optimizers::{_name}")(_fake_kernel(_name))


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


def operator(name: str) -> Callable:
    """The operator `name` as a step calls it: its direct call (_C.direct, typed, without the
    boxing of torch.ops: 2 µs a call instead of 7), the same dispatch to the same kernel. Under
    torch.compile, and while a TorchFunctionMode is active, torch.ops.optimizers.<name> itself, which
    those trace or intercept."""
    if torch.compiler.is_compiling() or torch._C._is_torch_function_mode_enabled():
        return getattr(torch.ops.optimizers, name)
    return getattr(_C.direct, name)


def is_operator(kernel: Callable, name: str) -> bool:
    """True for the compiled operator `name`, called either way (not the reference path, nor a
    DTensor wrapper)."""
    return _C is not None and (
        kernel is getattr(_C.direct, name) or kernel is getattr(torch.ops.optimizers, name)
    )


def record_function_observed() -> bool:
    """True while a profiler or another RecordFunction observer is active (or, without the
    extension to ask, always)."""
    return _C is None or _C.record_function_observed()


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


def warn_fallback_once(device: torch.device) -> None:
    """With fused=None and no kernel for the params' device, say once per device type that the
    (slower) reference path runs, and why."""
    if device.type in _warned:
        return
    _warned.add(device.type)
    if _C is None:
        why = (
            f"optimizers._C could not be loaded ({LOAD_ERROR}); build the extension with "
            "`pip install --no-build-isolation .`"
        )
    else:
        why = f"this build of optimizers._C has no kernel for '{device.type}' params"
    warnings.warn(
        f"{why}. Using the slower reference implementation for '{device.type}' params.",
        RuntimeWarning,
        stacklevel=4,
    )
