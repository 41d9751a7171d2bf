"""Adam (Kingma and Ba, 2015), with and without bias correction, and AdamW (Loshchilov and Hutter, 2019)."""

from __future__ import annotations

from optimizers import _validation
from optimizers._base import FusedOptimizer, step_counter, zeros_like


class Adam(FusedOptimizer):
    r"""Adam, with the semantics of ``torch.optim.Adam`` when ``bias_correction=True``.

    .. math::
        g &\leftarrow \pm g + \lambda p \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \quad v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        \hat v &= \max(\hat v, v) \text{ (amsgrad)}, \quad \hat v = v \text{ (else)} \\
        p &\leftarrow p - \frac{\eta}{1-\beta_1^t} \frac{m}{\sqrt{\hat v}/\sqrt{1-\beta_2^t} + \epsilon}
            \text{ (bias correction)}, \quad
        p \leftarrow p - \eta \frac{m}{\sqrt{\hat v} + \epsilon} \text{ (without)}

    Without bias correction the first steps are large, since :math:`v` starts at zero: this is the
    form of the lecture notes' first Adam slide.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default 1e-3; float or 0-dim tensor).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: :math:`\epsilon` (default 1e-8).
        weight_decay: L2 penalty :math:`\lambda` added to the gradient (default 0).
        amsgrad: use the running maximum of :math:`v`.
        bias_correction: divide by :math:`1-\beta^t` (default True).
        maximize: maximize the objective instead of minimizing.
        fused, master_weights: see :class:`optimizers.Momentum`.

    State: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).
    Paper: https://arxiv.org/abs/1412.6980
    """

    op_name = "adam_"
    decoupled_weight_decay = False

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        *,
        bias_correction=True,
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
            bias_correction=bias_correction,
            maximize=maximize,
        )
        super().__init__(params, defaults, fused, master_weights)

    @staticmethod
    def _validate_hyperparameters(group):
        _validation.betas(group["betas"])
        _validation.non_negative("eps", group["eps"])
        _validation.non_negative("weight_decay", group["weight_decay"])
        for name in ("amsgrad", "bias_correction", "maximize"):
            _validation.flag(name, group[name])

    def _init_state(self, group, p, state):
        state["step"] = step_counter(p)
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)

    def _update(self, group, params, grads, states, kernel, model_params):
        amsgrad = group["amsgrad"]
        steps = self._steps(states)
        beta1, beta2 = map(_validation.number, group["betas"])
        kernel(
            params,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            self._state_list(states, params, "max_exp_avg_sq") if amsgrad else [],
            steps,
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=self.decoupled_weight_decay,
            amsgrad=amsgrad,
            bias_correction=group["bias_correction"],
            maximize=group["maximize"],
            model_params=model_params,
            **self._scalar_args(group, params[0].device),
        )


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, with the semantics of ``torch.optim.AdamW``.

    Before the Adam update, :math:`p \leftarrow p (1 - \eta \lambda)`; no L2 term is added to the
    gradient. Arguments as :class:`Adam`, with ``weight_decay`` defaulting to 1e-2.
    Paper: https://arxiv.org/abs/1711.05101
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        bias_correction=True,
        maximize=False,
        fused=None,
        master_weights=False,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            bias_correction=bias_correction,
            maximize=maximize,
            fused=fused,
            master_weights=master_weights,
        )
