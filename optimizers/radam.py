"""RAdam (Liu et al., ICLR 2020)."""

from __future__ import annotations

from optimizers import _validation
from optimizers._base import FusedOptimizer, step_counter, zeros_like


class RAdam(FusedOptimizer):
    r"""RAdam: Adam with the variance of its adaptive lr rectified, with the semantics of
    ``torch.optim.RAdam``.

    .. math::
        g &\leftarrow \pm g + \lambda p \text{ (L2)}, \quad p \leftarrow p (1 - \eta\lambda)
            \text{ (decoupled)} \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \quad v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        \rho_\infty &= \frac{2}{1-\beta_2} - 1, \quad
            \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t} \\
        p &\leftarrow p - \eta\, r_t \frac{m}{1-\beta_1^t} \frac{\sqrt{1-\beta_2^t}}{\sqrt{v} + \epsilon},
            \quad r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}
            \text{ if } \rho_t > 5 \\
        p &\leftarrow p - \eta \frac{m}{1-\beta_1^t} \text{ otherwise}

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default 1e-3; float or 0-dim tensor).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: :math:`\epsilon` (default 1e-8).
        weight_decay: :math:`\lambda` (default 0).
        decoupled_weight_decay: decay the params as AdamW instead of adding an L2 term to the gradient
            (default False).
        maximize: maximize the objective instead of minimizing.
        fused, master_weights: see :class:`optimizers.Momentum`.

    State: ``step``, ``exp_avg``, ``exp_avg_sq``.
    Paper: https://arxiv.org/abs/1908.03265
    """

    op_name = "radam_"

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        decoupled_weight_decay=False,
        *,
        maximize=False,
        fused=None,
        master_weights=False,
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas) if isinstance(betas, (tuple, list)) else betas,
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults, fused, master_weights)

    @staticmethod
    def _validate_hyperparameters(group):
        _validation.betas(group["betas"])
        _validation.non_negative("eps", group["eps"])
        _validation.non_negative("weight_decay", group["weight_decay"])
        for name in ("decoupled_weight_decay", "maximize"):
            _validation.flag(name, group[name])

    def _init_state(self, group, p, state):
        state["step"] = step_counter(p)
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)

    def _update(self, group, params, grads, states, kernel, model_params):
        beta1, beta2 = map(_validation.number, group["betas"])
        kernel(
            params,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            self._steps(states),
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
            model_params=model_params,
            **self._scalar_args(group, params[0].device),
        )
