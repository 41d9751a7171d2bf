"""The rules of docs/optimizers.md that torch.optim lacks, written out from the doc one formula
per line, independent of optimizers/reference.py and of the kernels.

Each operation runs in the param's dtype: on float64 params this is the float64 oracle; on
bf16/fp16 params it is the "native low precision" run that bounds our low-precision error.
The step count is kept as a float64 0-dim tensor under `step`, like the package's.
"""

from __future__ import annotations

import math

import torch


class _RuleOptimizer(torch.optim.Optimizer):
    """Shared loop: the common steps 1 and 2 (maximize, L2 decay), lazy state, the step count."""

    def _prepared_grad(self, group, p):
        g = p.grad.to(p.dtype)
        if group["maximize"]:
            g = -g
        if group["weight_decay"] > 0 and not self._decoupled(group):
            g = g + group["weight_decay"] * p
        return g

    @staticmethod
    def _decoupled(group) -> bool:
        """True when the group's weight decay is decoupled (applied to p, not added to g)."""
        return group.get("decoupled", False)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = float(group["lr"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0, dtype=torch.float64)
                    self._init_state(group, p, state)
                state["step"] += 1
                self._rule(group, lr, p, self._prepared_grad(group, p), state, float(state["step"]))
        return loss


class AdamOracle(_RuleOptimizer):
    """Adam (L2 decay) and AdamW (decoupled=True), with or without bias correction."""

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
        decoupled=False,
    ):
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            bias_correction=bias_correction,
            maximize=maximize,
            decoupled=decoupled,
        )
        super().__init__(params, defaults)

    def _init_state(self, group, p, state):
        state["exp_avg"] = torch.zeros_like(p)
        state["exp_avg_sq"] = torch.zeros_like(p)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = torch.zeros_like(p)

    def _rule(self, group, lr, p, g, state, t):
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        if group["decoupled"]:
            p.copy_(p * (1 - lr * group["weight_decay"]))
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
        state["exp_avg"].copy_(m)
        state["exp_avg_sq"].copy_(v)
        if group["amsgrad"]:
            v = torch.maximum(state["max_exp_avg_sq"], v)
            state["max_exp_avg_sq"].copy_(v)
        if group["bias_correction"]:
            bc1 = 1 - beta1**t
            bc2 = 1 - beta2**t
            p.copy_(p - (lr / bc1) * m / (torch.sqrt(v) / math.sqrt(bc2) + eps))
        else:
            p.copy_(p - lr * m / (torch.sqrt(v) + eps))


class AdamWOracle(AdamOracle):
    """AdamW: decoupled weight decay, default 1e-2 as in the doc."""

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
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            bias_correction=bias_correction,
            maximize=maximize,
            decoupled=True,
        )


class DiffGradOracle(_RuleOptimizer):
    """diffGrad. `friction=False` drops ξ (ξ = 1), i.e. plain Adam: the mutant used to show
    that the comparison with pytorch_optimizer can tell the two apart."""

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        *,
        maximize=False,
        friction=True,
    ):
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, friction=friction
        )
        super().__init__(params, defaults)

    def _init_state(self, group, p, state):
        state["exp_avg"] = torch.zeros_like(p)
        state["exp_avg_sq"] = torch.zeros_like(p)
        state["previous_grad"] = torch.zeros_like(p)

    def _rule(self, group, lr, p, g, state, t):
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
        state["exp_avg"].copy_(m)
        state["exp_avg_sq"].copy_(v)
        delta = state["previous_grad"] - g
        xi = 1 / (1 + torch.exp(-torch.abs(delta))) if group["friction"] else torch.ones_like(g)
        bc1 = 1 - beta1**t
        bc2 = 1 - beta2**t
        p.copy_(p - (lr / bc1) * xi * m / (torch.sqrt(v) / math.sqrt(bc2) + eps))
        state["previous_grad"].copy_(g)


class AdaBeliefOracle(_RuleOptimizer):
    """AdaBelief as docs/optimizers.md writes it (the authors' code with rectify=False): Adam whose
    second moment is the variance of g around the updated m, with eps added into it at every step."""

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
    ):
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    @staticmethod
    def _decoupled(group) -> bool:
        return group["decoupled_weight_decay"]

    def _init_state(self, group, p, state):
        state["exp_avg"] = torch.zeros_like(p)
        state["exp_avg_var"] = torch.zeros_like(p)
        if group["amsgrad"]:
            state["max_exp_avg_var"] = torch.zeros_like(p)

    def _rule(self, group, lr, p, g, state, t):
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        if group["decoupled_weight_decay"]:
            p.copy_(p * (1 - lr * group["weight_decay"]))
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        s = beta2 * state["exp_avg_var"] + (1 - beta2) * (g - m) ** 2 + eps
        state["exp_avg"].copy_(m)
        state["exp_avg_var"].copy_(s)
        if group["amsgrad"]:
            s = torch.maximum(state["max_exp_avg_var"], s)
            state["max_exp_avg_var"].copy_(s)
        bc1 = 1 - beta1**t
        bc2 = 1 - beta2**t
        p.copy_(p - (lr / bc1) * m / (torch.sqrt(s) / math.sqrt(bc2) + eps))
