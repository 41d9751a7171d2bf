"""What every optimizer class shares: gathering a group's tensors, input errors,
lazy state, and the choice between the fused kernel and the reference path."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, repeat

import torch
from torch import Tensor

from optimizers import _dtensor, _extension, _step_hooks, _validation, reference

# The defaults torch.optim.Optimizer itself adds (in __setstate__), which are not ours.
_TORCH_DEFAULTS = ("differentiable",)


class FusedOptimizer(torch.optim.Optimizer):
    """Base class: subclasses name their operator and define `_init_state` and `_update`.

    `fused`: True requires the compiled kernel, False always runs the reference
    implementation, None (default) uses the kernel where one exists for the
    params' device and the reference path elsewhere.

    `master_weights`: for bf16/fp16 params, keep a float32 copy of each param
    (state "master_param") that the rule updates, with float32 state; the
    param then receives the master's new value rounded once per step, so
    updates smaller than the param's rounding step are not lost. No effect on
    float32/float64 params.
    """

    op_name: str  # the operator in torch.ops.optimizers and in optimizers.reference

    # torch.amp.GradScaler then sets `grad_scale` and `found_inf` on the optimizer before step():
    # the kernels unscale the grads and skip the step when an inf was found, without a host sync.
    _step_supports_amp_scaling = True

    def __init__(self, params, defaults: dict, fused: bool | None, master_weights: bool = False):
        defaults = dict(defaults, fused=fused, master_weights=master_weights)
        self._validate_group(defaults)
        if fused and not _extension.extension_available():
            raise RuntimeError(_extension.missing_kernel_message(type(self).__name__, torch.device("cpu")))
        super().__init__(params, defaults)  # validates each group in add_param_group

    def _patch_step_function(self) -> None:
        """As torch.optim.Optimizer's (called by its __init__), with a leaner wrapper of the same hooks."""
        self._zero_grad_profile_name = f"Optimizer.zero_grad#{type(self).__name__}.zero_grad"
        if not getattr(type(self).step, "hooked", None):
            type(self).step = _step_hooks.hooked_step(type(self).step)

    def _validate_group(self, group: dict) -> None:
        """The checks of the constructor's arguments, for the defaults and for every param group
        (constructor, add_param_group, load_state_dict): a ValueError showing the bad value."""
        _validation.learning_rate(group["lr"])
        if group["fused"] is not None:
            _validation.flag("fused", group["fused"])
        _validation.flag("master_weights", group["master_weights"])
        self._validate_hyperparameters(group)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        try:
            self._validate_group(self.param_groups[-1])
        except ValueError:
            self.param_groups.pop()  # an invalid group is not kept
            raise

    # How this optimizer runs, not what it computes: kept when a checkpoint is loaded.
    _KEPT_ON_LOAD = ("fused", "master_weights")

    def load_state_dict(self, state_dict: dict) -> None:
        """As torch.optim's, but each group keeps the `fused` and `master_weights` choices this
        optimizer was built with (a torch.optim checkpoint carries its own, unrelated `fused` flag).
        The loaded groups are validated first: an invalid one leaves the optimizer as it was."""
        kept = [{key: group.get(key) for key in self._KEPT_ON_LOAD} for group in self.param_groups]
        for saved, choices in zip(state_dict["param_groups"], kept):
            self._validate_group({**self.defaults, **saved, **choices})
        super().load_state_dict(state_dict)
        self._restore_master_state(state_dict)
        for group, choices in zip(self.param_groups, kept):
            group.update(choices)
            for p in group["params"]:
                state = self.state.get(p)
                if state and "step" in state:
                    # Kept as the kernels read it: a float32 tensor on the param's device, our own
                    # (the kernels advance it in place; torch.optim would share the checkpoint's).
                    step = torch.as_tensor(state["step"], dtype=torch.float32, device=p.device)
                    state["step"] = step.clone()

    def _restore_master_state(self, state_dict: dict) -> None:
        """torch.optim casts every floating-point state tensor to its param's dtype on loading; the
        state of a param with master weights is float32 and is read again from the checkpoint."""
        saved_ids = chain.from_iterable(g["params"] for g in state_dict["param_groups"])
        params = chain.from_iterable(g["params"] for g in self.param_groups)
        for saved_id, p in zip(saved_ids, params):
            saved = state_dict["state"].get(saved_id)
            if not saved or "master_param" not in saved:
                continue
            state = self.state[p]
            for key, value in _float_state(saved):
                state[key] = value.to(device=p.device, dtype=torch.float32)

    def __setstate__(self, state: dict) -> None:
        # A checkpoint of torch.optim (or an older version) may lack our keys. torch's own
        # __setstate__ adds "differentiable" to the defaults: not one of ours, so not put in groups.
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                if key not in _TORCH_DEFAULTS:
                    group.setdefault(key, value)

    # -- to be defined by subclasses -----------------------------------------
    @staticmethod
    def _validate_hyperparameters(group: dict) -> None:
        """The class's own hyperparameters (lr, fused and master_weights are checked here)."""
        raise NotImplementedError

    def _init_state(self, group: dict, p: Tensor, state: dict) -> None:
        raise NotImplementedError

    def _update(
        self,
        group: dict,
        params: list[Tensor],
        grads: list[Tensor],
        states: list[dict],
        kernel: Callable,
        model_params: list[Tensor] | None,
    ) -> None:
        """Calls kernel on the params, their grads and state. Under master weights `params` are the
        float32 masters and `model_params` the bf16/fp16 params to round them into (else None)."""
        raise NotImplementedError

    # -- shared machinery ----------------------------------------------------
    def _kernel(self, group: dict, device: torch.device, distributed: bool) -> Callable:
        """The fused operator for this device, or the reference implementation. `distributed`: the
        params include DTensors (FSDP2, tensor parallelism), whose local shards the operator updates."""
        fused = group.get("fused")
        if fused is False:
            return getattr(reference, self.op_name)
        if _extension.has_kernel(device):
            if distributed:
                return _dtensor.on_local_shards(
                    getattr(torch.ops.optimizers, self.op_name), type(self).__name__
                )
            return _extension.operator(self.op_name)
        if fused:
            raise RuntimeError(_extension.missing_kernel_message(type(self).__name__, device))
        _extension.warn_fallback_once(device)
        return getattr(reference, self.op_name)

    def _check_tensors(
        self,
        group_index: int,
        group: dict,
        params: list[Tensor],
        grads: list[Tensor],
        dtypes: list[torch.dtype],
        params_checked: bool = False,
    ) -> None:
        """Refuses sparse grads and params or grads that are not floating point, on the sets of
        dtypes and layouts (a few per group); param by param only to name the one that is wrong.
        `params_checked`: the params' dtypes passed at the last step (see _GroupPlan), and grads of
        the same dtypes then pass too."""
        if {g.layout for g in grads} == _STRIDED:
            grad_dtypes = [g.dtype for g in grads]
            if params_checked and grad_dtypes == dtypes:
                return
            if all(d.is_floating_point for d in {*dtypes, *grad_dtypes}):
                return
        for p in params:
            if p.grad.is_sparse or not p.is_floating_point() or not p.grad.is_floating_point():
                self._reject(group_index, group, p)

    def _is_operator(self, kernel: Callable) -> bool:
        """True for the compiled operator itself (not the reference path, nor a DTensor wrapper)."""
        return _extension.is_operator(kernel, self.op_name)

    def _reject(self, group_index: int, group: dict, p: Tensor) -> None:
        name = type(self).__name__
        index = next(i for i, q in enumerate(group["params"]) if q is p)
        where = f"param {index} of group {group_index} (shape {tuple(p.shape)})"
        if p.grad.is_sparse:
            raise RuntimeError(f"{name} does not support sparse gradients: {where} has a sparse grad")
        if p.is_complex() or p.grad.is_complex():
            raise RuntimeError(f"{name} does not support complex params or grads: {where} is {p.dtype}")
        raise RuntimeError(f"{name} supports floating-point params only: {where} is {p.dtype}")

    def _scalar_args(self, group: dict, device: torch.device) -> dict:
        """The arguments every operator shares: lr (a float, or a tensor in lr_tensor) and,
        under torch.amp.GradScaler, the loss scale and the found-inf flag."""
        lr = group["lr"]
        if isinstance(lr, Tensor):
            args = {"lr": 0.0, "lr_tensor": lr}
        elif torch.compiler.is_compiling():
            # A float argument of an operator is a constant of the graph: each new lr would
            # recompile. As a tensor made in the graph it is an input (built with add_: torch.tensor
            # and torch.full specialize on the value).
            args = {"lr": 0.0, "lr_tensor": torch.zeros((), dtype=torch.float64, device=device).add_(lr)}
        else:
            args = {"lr": float(lr)}
        grad_scale = getattr(self, "grad_scale", None)
        found_inf = getattr(self, "found_inf", None)
        if grad_scale is not None:
            args["grad_scale"] = grad_scale
        if found_inf is not None:
            args["found_inf"] = found_inf
        return args

    @staticmethod
    def _master_param(group: dict, p: Tensor, state: dict) -> Tensor | None:
        """The float32 copy that the rule updates in place of a bf16/fp16 param under master weights
        (made on first use, also for state loaded from a run without them); None otherwise."""
        if group["master_weights"] and p.dtype in reference.LOW_PRECISION:
            master = state.get("master_param")
            if master is None:
                master = p.detach().to(torch.float32, memory_format=torch.preserve_format, copy=True)
                state["master_param"] = master
                _cast_state(state, torch.float32)
            return master
        if "master_param" in state:  # master weights turned off: go on from the param itself
            del state["master_param"]
            _cast_state(state, p.dtype)
        return None

    @staticmethod
    def _state_list(states: list[dict], params: list[Tensor], name: str) -> list[Tensor]:
        """Each param's state tensor `name`, made (zeros like the param) where an option that needs it
        (amsgrad) was turned on after the state was made."""
        for state, p in zip(states, params):
            if name not in state:
                state[name] = zeros_like(p)
        return [state[name] for state in states]

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
            params = group["params"]
            grads = [p.grad for p in params]  # each p.grad read once: a step costs per param
            if any(map(operator.is_, grads, repeat(None))):
                params = [p for p, g in zip(params, grads) if g is not None]
                grads = [g for g in grads if g is not None]
            if params:
                self._step_group(group_index, group, list(params), grads)
        return loss

    def _step_group(self, group_index: int, group: dict, params: list[Tensor], grads: list[Tensor]) -> None:
        dtypes = [p.dtype for p in params]
        devices = [p.device for p in params]
        plan = self._valid_plan(group_index, group, params, dtypes, devices)
        # Every kernel is found before any state is made: a step that cannot run changes nothing.
        if plan is None:
            distributed = _dtensor.has_dtensor(params)
            kernels = {device: self._kernel(group, device, distributed) for device in set(devices)}
        else:
            kernels = {device: self._kernel(group, device, plan.distributed) for device, _, _ in plan.batches}
        # A planned step of one operator call leaves the grads to the operator, which checks every
        # tensor before it writes any; should it refuse them, the check below names the param.
        checked_by_operator = (
            plan is not None and len(kernels) == 1 and self._is_operator(next(iter(kernels.values())))
        )
        if not checked_by_operator:
            self._check_tensors(group_index, group, params, grads, dtypes, params_checked=plan is not None)
        states = [self.state[p] for p in params]  # made empty for params seen the first time
        fresh = [p for p, state in zip(params, states) if not state]
        try:
            if plan is None:
                for p, state in zip(params, states):
                    self._prepare_state(group, p, state)
                plan = _GroupPlan.of(self, group, params, dtypes, devices, distributed)
            else:
                # As planned, but for params whose state was removed or is kept empty (plain SGD).
                for p in fresh:
                    self._prepare_state(group, p, self.state[p])
            self._run_batches(group, plan, params, grads, states, kernels)
        except Exception:
            for p in fresh:
                self.state.pop(p, None)
            if checked_by_operator:
                self._check_tensors(group_index, group, params, grads, dtypes)
            raise
        for p, state in zip(params, states):
            if not state:  # a rule without state (plain SGD) keeps none, as torch.optim
                del self.state[p]
        self._store_plan(group_index, plan)  # only once the step went through

    def _run_batches(self, group, plan, params, grads, states, kernels) -> None:
        """One kernel call per device, and apart for the params with master weights."""
        for device, with_master, chosen in plan.batches:
            if chosen is None:
                batch, batch_grads, batch_states = params, grads, states
            else:
                batch = [params[i] for i in chosen]
                batch_grads = [grads[i] for i in chosen]
                batch_states = [states[i] for i in chosen]
            kernel = kernels[device]
            if with_master:
                masters = [self._master_param(group, p, s) for p, s in zip(batch, batch_states)]
                self._update(group, masters, batch_grads, batch_states, kernel, model_params=batch)
            else:
                self._update(group, batch, batch_grads, batch_states, kernel, model_params=None)

    def _prepare_state(self, group: dict, p: Tensor, state: dict) -> None:
        """A param's state made (first step) or brought to its param's dtype and master weights."""
        fresh = len(state) == 0
        master = self._master_param(group, p, state)
        target = p if master is None else master
        if fresh:
            self._init_state(group, target, state)
        else:
            _follow_dtype(state, target.dtype)

    def _valid_plan(
        self,
        group_index: int,
        group: dict,
        params: list[Tensor],
        dtypes: list[torch.dtype],
        devices: list[torch.device],
    ) -> _GroupPlan | None:
        """The plan of the group's last step if nothing it depends on has changed since, else None
        (and always None under torch.compile, which traces the full path)."""
        if torch.compiler.is_compiling():
            return None
        plans = self.__dict__.setdefault("_group_plans", {})
        plan = plans.get(group_index)
        if plan is None or not plan.holds(self, group, params, dtypes, devices):
            plans.pop(group_index, None)
            return None
        return plan

    def _store_plan(self, group_index: int, plan: _GroupPlan) -> None:
        if not torch.compiler.is_compiling():
            self.__dict__.setdefault("_group_plans", {})[group_index] = plan


@dataclass(eq=False)
class _GroupPlan:
    """What one group's step found out param by param, kept for the next step while it holds.

    It holds while the group dict, the optimizer's state mapping (load_state_dict replaces it), the
    master_weights choice, the params with a grad (the same objects, in order) and their dtypes and
    devices are all as they were at the last step that went through. Then the params' dtypes are
    floating point, each param's state has its param's dtype and master weights (that step made it
    so), and the kernel calls go by the same batches. No tensor of the step is kept: the grads and
    the state tensors are read again each time; a state tensor replaced by hand with another
    dtype, shape or device is refused by the operator's own checks."""

    group: dict
    state: dict
    master_weights: bool
    params: list[Tensor]
    dtypes: list[torch.dtype]
    devices: list[torch.device]
    distributed: bool  # some params are DTensors
    batches: list[tuple[torch.device, bool, list[int] | None]]  # None: all the params, in order

    @classmethod
    def of(cls, optimizer, group, params, dtypes, devices, distributed) -> _GroupPlan:
        master = group["master_weights"]
        chosen: dict[tuple[torch.device, bool], list[int]] = {}
        for i, (device, dtype) in enumerate(zip(devices, dtypes)):
            chosen.setdefault((device, master and dtype in reference.LOW_PRECISION), []).append(i)
        batches = [
            (device, with_master, None if len(chosen) == 1 else indices)
            for (device, with_master), indices in chosen.items()
        ]
        return cls(group, optimizer.state, master, list(params), dtypes, devices, distributed, batches)

    def holds(self, optimizer, group, params, dtypes, devices) -> bool:
        return (
            self.group is group
            and self.state is optimizer.state
            and self.master_weights == group["master_weights"]
            and len(self.params) == len(params)
            and all(map(operator.is_, self.params, params))
            and self.dtypes == dtypes
            and self.devices == devices
        )


_STRIDED = {torch.strided}


def _float_state(state: dict) -> list[tuple[str, Tensor]]:
    """A param's floating-point state tensors, all but its step count."""
    return [
        (key, value)
        for key, value in state.items()
        if key != "step" and torch.is_tensor(value) and value.is_floating_point()
    ]


def _follow_dtype(state: dict, dtype: torch.dtype) -> None:
    """After model.double() (or .bfloat16()) mid-training the state follows its param's new dtype,
    as in torch.optim, whose state is made and kept in the param's dtype."""
    for key, value in state.items():
        if key != "step" and isinstance(value, Tensor) and value.dtype != dtype and value.is_floating_point():
            state[key] = value.to(dtype)


def _cast_state(state: dict, dtype: torch.dtype) -> None:
    """Casts a param's state tensors (not its step count) to dtype."""
    for key, value in _float_state(state):
        state[key] = value.to(dtype)


def zeros_like(p: Tensor) -> Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


def step_counter(p: Tensor) -> Tensor:
    return torch.zeros((), dtype=torch.float32, device=p.device)
