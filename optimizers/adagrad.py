"""AdaGrad (Duchi et al., 2011)."""

from __future__ import annotations

import torch

from optimizers import _validation
from optimizers._base import FusedOptimizer, step_counter


class Adagrad(FusedOptimizer):
    r"""AdaGrad, with the semantics of ``torch.optim.Adagrad``.

    .. math::
        g &\leftarrow \pm g + \lambda p, \quad \tilde\eta = \frac{\eta}{1 + (t - 1)\,\delta} \\
        s &\leftarrow s + g^2 \\
        p &\leftarrow p - \tilde\eta \frac{g}{\sqrt{s} + \epsilon}

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default 1e-2; float or 0-dim tensor).
        lr_decay: :math:`\delta` (default 0).
        weight_decay: L2 penalty :math:`\lambda` added to the gradient (default 0).
        initial_accumulator_value: the sum's starting value (default 0).
        eps: :math:`\epsilon` (default 1e-10).
        maximize: maximize the objective instead of minimizing.
        fused, master_weights: see :class:`optimizers.Momentum`.

    State: ``step``, ``sum``, made for every param at construction, as ``torch.optim.Adagrad`` does.
    Paper: https://jmlr.org/papers/v12/duchi11a.html
    """

    op_name = "adagrad_"

    def __init__(
        self,
        params,
        lr=1e-2,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
        *,
        maximize=False,
        fused=None,
        master_weights=False,
    ):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults, fused, master_weights)
        # torch.optim.Adagrad makes every param's state here, not at its first step, and its step()
        # reads the state of any param with a grad: a checkpoint of ours must carry it too.
        for group in self.param_groups:
            for p in group["params"]:
                self._prepare_state(group, p, self.state[p])

    @staticmethod
    def _validate_hyperparameters(group):
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _validation.non_negative(name, group[name])
        _validation.flag("maximize", group["maximize"])

    def _init_state(self, group, p, state):
        state["step"] = step_counter(p)
        state["sum"] = torch.full_like(
            p, group["initial_accumulator_value"], memory_format=torch.preserve_format
        )

    def _update(self, group, params, grads, states, kernel, model_params):
        kernel(
            params,
            grads,
            [s["sum"] for s in states],
            self._steps(states),
            lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
            model_params=model_params,
            **self._scalar_args(group, params[0].device),
        )
