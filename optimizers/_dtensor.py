"""The fused kernels on DTensor params (FSDP2's fully_shard, tensor parallelism).

Every rule is elementwise, so the operator can update the local shards directly.
That is sound when a param, its grad and each of its state tensors lie on one
mesh with one placement: their local shards then hold the same elements. No
placement may be Partial, since a Partial tensor's local values are not its own
values. Anything else is refused with an error naming the tensors, rather than
letting a mismatch go unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

try:
    from torch.distributed.tensor import DTensor, Partial, Replicate
except ImportError:  # a torch built without distributed support has no DTensor
    DTensor = None


def has_dtensor(params: list[Tensor]) -> bool:
    return DTensor is not None and any(isinstance(p, DTensor) for p in params)


def on_local_shards(kernel, optimizer: str) -> Callable:
    """`kernel` (a torch.ops.optimizers operator) called on the local shards of its DTensor arguments."""
    names = [arg.name for arg in kernel.default._schema.arguments]

    def call(*lists, model_params=None, **kwargs):
        params = lists[0]
        local = [_local_list(optimizer, names[k], lst, params) for k, lst in enumerate(lists)]
        if model_params is not None:
            model_params = _local_list(optimizer, "model_params", model_params, params)
        for key, value in kwargs.items():
            if DTensor is not None and isinstance(value, DTensor):
                kwargs[key] = _replicated_local(optimizer, key, value)
        kernel(*local, model_params=model_params, **kwargs)

    return call


def _local_list(optimizer: str, name: str, tensors: list[Tensor], params: list[Tensor]) -> list[Tensor]:
    return [_local(optimizer, name, i, t, p) for i, (t, p) in enumerate(zip(tensors, params))]


def _local(optimizer: str, name: str, i: int, t: Tensor, p: Tensor) -> Tensor:
    if not isinstance(p, DTensor):
        if isinstance(t, DTensor):
            raise RuntimeError(f"{optimizer}: {name}[{i}] is a DTensor but its param is a plain tensor")
        return t
    if not isinstance(t, DTensor):
        if t.dim() == 0:  # a step count, the same on every rank
            return t
        raise RuntimeError(f"{optimizer}: param {i} is a DTensor but its {name} is a plain tensor")
    if t.device_mesh != p.device_mesh or tuple(t.placements) != tuple(p.placements):
        raise RuntimeError(
            f"{optimizer}: {name}[{i}] lies on {t.device_mesh} as {t.placements} but its param on "
            f"{p.device_mesh} as {p.placements}; the fused step needs one mesh and one placement"
        )
    if any(isinstance(placement, Partial) for placement in t.placements):
        raise RuntimeError(
            f"{optimizer}: {name}[{i}] has a Partial placement {t.placements}; reduce it before the step"
        )
    return t._local_tensor  # to_local() is an autograd call per tensor, slower by far and no different


def _replicated_local(optimizer: str, name: str, t: Tensor) -> Tensor:
    if not all(isinstance(placement, Replicate) for placement in t.placements):
        raise RuntimeError(
            f"{optimizer}: {name} is a DTensor placed as {t.placements}; it must be replicated"
        )
    return t._local_tensor
