"""RMSProp (Tieleman and Hinton, 2012)."""

from __future__ import annotations

from optimizers import _validation
from optimizers._base import FusedOptimizer, step_counter, zeros_like


class RMSProp(FusedOptimizer):
    r"""RMSProp, with the semantics of ``torch.optim.RMSprop``.

    .. math::
        g &\leftarrow \pm g + \lambda p \\
        v &\leftarrow \alpha v + (1-\alpha) g^2 \\
        \bar g &\leftarrow \alpha \bar g + (1-\alpha) g, \quad
            a = \sqrt{v - \bar g^2} + \epsilon \text{ (centered)}, \quad
            a = \sqrt{v} + \epsilon \text{ (else)} \\
        b &\leftarrow \mu b + g / a, \quad p \leftarrow p - \eta b \text{ (momentum > 0)}, \quad
            p \leftarrow p - \eta g / a \text{ (else)}

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default 1e-2; float or 0-dim tensor).
        alpha: smoothing constant :math:`\alpha` (default 0.99).
        eps: :math:`\epsilon` added to the denominator (default 1e-8).
        weight_decay: L2 penalty :math:`\lambda` added to the gradient.
        momentum: :math:`\mu` (default 0).
        centered: normalize by an estimate of the gradient's variance.
        maximize: maximize the objective instead of minimizing.
        fused, master_weights: see :class:`optimizers.Momentum`.

    State: ``step``, ``square_avg``, ``grad_avg`` (centered), ``momentum_buffer`` (momentum > 0).
    """

    op_name = "rmsprop_"

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        *,
        maximize=False,
        fused=None,
        master_weights=False,
    ):
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults, fused, master_weights)

    @staticmethod
    def _validate_hyperparameters(group):
        _validation.closed_unit_interval("alpha", group["alpha"])
        _validation.non_negative("eps", group["eps"])
        _validation.non_negative("weight_decay", group["weight_decay"])
        _validation.non_negative("momentum", group["momentum"])
        _validation.finite("momentum", group["momentum"])
        _validation.flag("centered", group["centered"])
        _validation.flag("maximize", group["maximize"])

    def _init_state(self, group, p, state):
        state["step"] = step_counter(p)
        state["square_avg"] = zeros_like(p)

    def _update(self, group, params, grads, states, kernel, model_params):
        centered, momentum = group["centered"], group["momentum"]
        for state, p in zip(states, params):
            if centered and "grad_avg" not in state:
                state["grad_avg"] = zeros_like(p)
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = zeros_like(p)
        kernel(
            params,
            grads,
            [s["square_avg"] for s in states],
            [s["grad_avg"] for s in states] if centered else [],
            [s["momentum_buffer"] for s in states] if momentum > 0 else [],
            self._steps(states),
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=momentum,
            centered=centered,
            maximize=group["maximize"],
            model_params=model_params,
            **self._scalar_args(group, params[0].device),
        )
