"""What every optimizer class shares: gathering a group's tensors, input errors,
lazy state, and the choice between the fused kernel and the reference path."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch
from torch import Tensor

from optimizers import _extension, _validation, reference


class FusedOptimizer(torch.optim.Optimizer):
    """Base class: subclasses name their operator and define `_init_state` and `_update`.

    `fused`: True requires the compiled kernel, False always runs the reference
    implementation, None (default) uses the kernel where one exists for the
    params' device and the reference path elsewhere.
    """

    op_name: str  # the operator in torch.ops.optimizers and in optimizers.reference

    # torch.amp.GradScaler then sets `grad_scale` and `found_inf` on the optimizer before step():
    # the kernels unscale the grads and skip the step when an inf was found, without a host sync.
    _step_supports_amp_scaling = True

    def __init__(self, params, defaults: dict, fused: bool | None):
        if fused is not None:
            _validation.flag("fused", fused)
        if fused and not _extension.extension_available():
            raise RuntimeError(_extension.missing_kernel_message(type(self).__name__, torch.device("cpu")))
        defaults = dict(defaults, fused=fused)
        super().__init__(params, defaults)

    def load_state_dict(self, state_dict: dict) -> None:
        """As torch.optim's, but each group keeps the `fused` choice this optimizer was built with
        (a torch.optim checkpoint carries its own, unrelated `fused` flag)."""
        fused = [group.get("fused") for group in self.param_groups]
        super().load_state_dict(state_dict)
        for group, choice in zip(self.param_groups, fused):
            group["fused"] = choice
            for p in group["params"]:
                state = self.state.get(p)
                if state and "step" in state:
                    # Kept as the kernels read it: a float32 tensor on the param's device.
                    state["step"] = torch.as_tensor(state["step"], dtype=torch.float32, device=p.device)

    def __setstate__(self, state: dict) -> None:
        # A checkpoint of torch.optim (or an older version) may lack our keys.
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    # -- to be defined by subclasses -----------------------------------------
    def _init_state(self, group: dict, p: Tensor, state: dict) -> None:
        raise NotImplementedError

    def _update(
        self, group: dict, params: list[Tensor], grads: list[Tensor], states: list[dict], kernel: Callable
    ) -> None:
        raise NotImplementedError

    # -- shared machinery ----------------------------------------------------
    def _kernel(self, group: dict, device: torch.device) -> Callable:
        fused = group.get("fused")
        if fused is False:
            return getattr(reference, self.op_name)
        if _extension.has_kernel(device):
            return getattr(torch.ops.optimizers, self.op_name)
        if fused:
            raise RuntimeError(_extension.missing_kernel_message(type(self).__name__, device))
        _extension.warn_fallback_once()
        return getattr(reference, self.op_name)

    def _params_with_grad(self, group_index: int, group: dict) -> list[Tensor]:
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            if p.grad.is_sparse or not p.is_floating_point() or not p.grad.is_floating_point():
                self._reject(group_index, group, p)
        return params

    def _reject(self, group_index: int, group: dict, p: Tensor) -> None:
        name = type(self).__name__
        index = next(i for i, q in enumerate(group["params"]) if q is p)
        where = f"param {index} of group {group_index} (shape {tuple(p.shape)})"
        if p.grad.is_sparse:
            raise RuntimeError(f"{name} does not support sparse gradients: {where} has a sparse grad")
        if p.is_complex() or p.grad.is_complex():
            raise RuntimeError(f"{name} does not support complex params or grads: {where} is {p.dtype}")
        raise RuntimeError(f"{name} supports floating-point params only: {where} is {p.dtype}")

    def _scalar_args(self, group: dict) -> dict:
        """The arguments every operator shares: lr (a float, or a tensor in lr_tensor) and,
        under torch.amp.GradScaler, the loss scale and the found-inf flag."""
        lr = group["lr"]
        args = {"lr": 0.0, "lr_tensor": lr} if isinstance(lr, Tensor) else {"lr": float(lr)}
        grad_scale = getattr(self, "grad_scale", None)
        found_inf = getattr(self, "found_inf", None)
        if grad_scale is not None:
            args["grad_scale"] = grad_scale
        if found_inf is not None:
            args["found_inf"] = found_inf
        return args

    @staticmethod
    def _steps(states: list[dict]) -> list[Tensor]:
        """The float32 step counts, which the operators advance (unless GradScaler skips the step)."""
        return [state["step"] for state in states]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group_index, group in enumerate(self.param_groups):
            by_device: dict[torch.device, list[Tensor]] = defaultdict(list)
            for p in self._params_with_grad(group_index, group):
                by_device[p.device].append(p)
            for device, params in by_device.items():
                states = []
                for p in params:
                    state = self.state[p]
                    if len(state) == 0:
                        self._init_state(group, p, state)
                    states.append(state)
                grads = [p.grad for p in params]
                self._update(group, params, grads, states, self._kernel(group, device))
        return loss


def zeros_like(p: Tensor) -> Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


def step_counter(p: Tensor) -> Tensor:
    return torch.zeros((), dtype=torch.float32, device=p.device)
