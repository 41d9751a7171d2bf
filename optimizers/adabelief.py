"""AdaBelief (Zhuang et al., NeurIPS 2020)."""

from __future__ import annotations

from optimizers import _validation
from optimizers._base import FusedOptimizer, step_counter, zeros_like


class AdaBelief(FusedOptimizer):
    r"""AdaBelief: Adam whose step is scaled by the belief in the gradient, the variance of the
    gradient around its moving average. The authors' ``adabelief-pytorch`` 0.2 with ``rectify=False``.

    .. math::
        g &\leftarrow \pm g + \lambda p \text{ (L2)}, \quad p \leftarrow p (1 - \eta\lambda)
            \text{ (decoupled)} \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g \\
        s &\leftarrow \beta_2 s + (1-\beta_2) (g - m)^2 + \epsilon \\
        \hat s &= \max(\hat s, s) \text{ (amsgrad)}, \quad \hat s = s \text{ (else)} \\
        p &\leftarrow p - \frac{\eta}{1-\beta_1^t} \frac{m}{\sqrt{\hat s}/\sqrt{1-\beta_2^t} + \epsilon}

    As in the authors' code, :math:`\epsilon` is also added into :math:`s` at every step, and the
    decay is decoupled by default.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default 1e-3; float or 0-dim tensor).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: :math:`\epsilon` (default 1e-16, the authors' recommendation).
        weight_decay: :math:`\lambda` (default 0).
        decoupled_weight_decay: decay the params as AdamW (default True) instead of adding an L2
            term to the gradient.
        amsgrad: use the running maximum of :math:`s`.
        maximize: maximize the objective instead of minimizing.
        fused, master_weights: see :class:`optimizers.Momentum`.

    State: ``step``, ``exp_avg``, ``exp_avg_var``, ``max_exp_avg_var`` (amsgrad).
    Paper: https://arxiv.org/abs/2010.07468
    """

    op_name = "adabelief_"

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-16,
        weight_decay=0.0,
        amsgrad=False,
        *,
        decoupled_weight_decay=True,
        maximize=False,
        fused=None,
        master_weights=False,
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas) if isinstance(betas, (tuple, list)) else betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults, fused, master_weights)

    @staticmethod
    def _validate_hyperparameters(group):
        _validation.betas(group["betas"])
        _validation.non_negative("eps", group["eps"])
        _validation.non_negative("weight_decay", group["weight_decay"])
        for name in ("amsgrad", "decoupled_weight_decay", "maximize"):
            _validation.flag(name, group[name])

    def _init_state(self, group, p, state):
        state["step"] = step_counter(p)
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_var"] = zeros_like(p)

    def _update(self, group, params, grads, states, kernel, model_params):
        amsgrad = group["amsgrad"]
        beta1, beta2 = map(_validation.number, group["betas"])
        kernel(
            params,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_var"] for s in states],
            self._state_list(states, params, "max_exp_avg_var") if amsgrad else [],
            self._steps(states),
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            amsgrad=amsgrad,
            maximize=group["maximize"],
            model_params=model_params,
            **self._scalar_args(group, params[0].device),
        )
