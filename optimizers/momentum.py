"""SGD with heavy-ball or Nesterov momentum."""

from __future__ import annotations

from optimizers import _validation
from optimizers._base import FusedOptimizer, zeros_like


class Momentum(FusedOptimizer):
    r"""SGD with heavy-ball or Nesterov momentum, with the semantics of ``torch.optim.SGD``.

    .. math::
        g &\leftarrow \pm g + \lambda p \\
        b &\leftarrow g \text{ (first step)}, \quad b \leftarrow \rho b + (1 - \tau) g \text{ (later)} \\
        d &= g + \rho b \text{ (Nesterov)}, \quad d = b \text{ (heavy ball)} \\
        p &\leftarrow p - \eta d

    ``dampening=momentum`` gives the moving-average form :math:`m = \rho m + (1-\rho) g`;
    ``momentum=0`` is plain gradient descent (no state).

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (float or 0-dim tensor).
        momentum: :math:`\rho` (default 0.9).
        dampening: :math:`\tau` (default 0).
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening = 0``).
        weight_decay: L2 penalty :math:`\lambda` added to the gradient.
        maximize: maximize the objective instead of minimizing.
        fused: True: compiled kernel (error if unavailable); False: reference path;
            None: the kernel where one exists for the params' device.
        master_weights: keep a float32 copy of each bf16/fp16 param that the rule updates,
            with float32 state; the param receives it rounded once per step (default False).

    State: ``momentum_buffer``; ``master_param`` for bf16/fp16 params with master weights.
    """

    op_name = "momentum_"

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.9,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        *,
        maximize=False,
        fused=None,
        master_weights=False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults, fused, master_weights)

    @staticmethod
    def _validate_hyperparameters(group):
        momentum, dampening = group["momentum"], group["dampening"]
        _validation.non_negative("momentum", momentum)
        _validation.finite("momentum", momentum)
        _validation.finite("dampening", dampening)
        _validation.non_negative("weight_decay", group["weight_decay"])
        _validation.flag("nesterov", group["nesterov"])
        _validation.flag("maximize", group["maximize"])
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"Nesterov momentum requires momentum > 0 and dampening = 0, got "
                f"momentum={momentum!r}, dampening={dampening!r}"
            )

    def _init_state(self, group, p, state):
        pass  # the buffer is made on the first step, from the gradient

    def _update(self, group, params, grads, states, kernel, model_params):
        momentum = group["momentum"]
        hyper = dict(
            momentum=momentum,
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
            **self._scalar_args(group, params[0].device),
        )
        if momentum == 0:
            kernel(params, grads, [], first_step=False, model_params=model_params, **hyper)
            return
        # Params seen for the first time start their buffer at g (undampened), the others continue.
        buffers = [s.get("momentum_buffer") for s in states]
        is_new = [b is None for b in buffers]  # not `None in buffers`: that compares tensors with ==
        if not any(is_new):  # the usual step: one call on the lists as they are
            kernel(params, grads, buffers, first_step=False, model_params=model_params, **hyper)
            return
        if self._first_step_skipped(group):
            return  # the whole step is skipped; new params keep waiting for their first real step
        for first_step in (True, False):
            chosen = [i for i, new in enumerate(is_new) if new == first_step]
            if not chosen:
                continue
            if first_step:
                for i in chosen:
                    states[i]["momentum_buffer"] = zeros_like(params[i])
            kernel(
                [params[i] for i in chosen],
                [grads[i] for i in chosen],
                [states[i]["momentum_buffer"] for i in chosen],
                first_step=first_step,
                model_params=None if model_params is None else [model_params[i] for i in chosen],
                **hyper,
            )

    def _first_step_skipped(self, group) -> bool:
        """True when GradScaler skips this step and a first step's buffer would be wrong afterwards.

        A buffer created for a skipped step would make the next step dampen g. With dampening 0 the
        later-step rule from a zero buffer gives exactly g, so only dampened momentum needs to look at
        found_inf (a host read, on the first steps only)."""
        found_inf = getattr(self, "found_inf", None)
        return found_inf is not None and group["dampening"] != 0 and bool(found_inf.item())
