"""diffGrad (Dubey et al., IEEE TNNLS 2019)."""

from __future__ import annotations

from optimizers import _validation
from optimizers._base import FusedOptimizer, step_counter, zeros_like


class DiffGrad(FusedOptimizer):
    r"""diffGrad: Adam whose step is scaled per element by the friction of the gradient's change.

    .. math::
        g &\leftarrow \pm g + \lambda p \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \quad v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        \xi &= \frac{1}{1 + e^{-|g_{prev} - g|}} \\
        p &\leftarrow p - \frac{\eta}{1-\beta_1^t} \frac{\xi m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon},
            \quad g_{prev} \leftarrow g

    :math:`g_{prev}` is zero before the first step. :math:`\epsilon` is placed as in ``torch.optim.Adam``;
    the paper's code places it as :math:`\sqrt{v} + \epsilon` (a relative difference of order 1e-5).

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default 1e-3; float or 0-dim tensor).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: :math:`\epsilon` (default 1e-8).
        weight_decay: L2 penalty :math:`\lambda` added to the gradient (default 0).
        maximize: maximize the objective instead of minimizing.
        fused, master_weights: see :class:`optimizers.Momentum`.

    State: ``step``, ``exp_avg``, ``exp_avg_sq``, ``previous_grad``.
    Paper: https://arxiv.org/abs/1909.11015
    """

    op_name = "diffgrad_"

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        *,
        maximize=False,
        fused=None,
        master_weights=False,
    ):
        betas = tuple(betas) if isinstance(betas, (tuple, list)) else betas
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, fused, master_weights)

    @staticmethod
    def _validate_hyperparameters(group):
        _validation.betas(group["betas"])
        _validation.non_negative("eps", group["eps"])
        _validation.non_negative("weight_decay", group["weight_decay"])
        _validation.flag("maximize", group["maximize"])

    def _init_state(self, group, p, state):
        state["step"] = step_counter(p)
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)
        state["previous_grad"] = zeros_like(p)

    def _update(self, group, params, grads, states, kernel, model_params):
        steps = self._steps(states)
        beta1, beta2 = map(_validation.number, group["betas"])
        kernel(
            params,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["previous_grad"] for s in states],
            steps,
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
            model_params=model_params,
            **self._scalar_args(group, params[0].device),
        )
