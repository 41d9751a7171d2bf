"""Plain-PyTorch implementations of every rule of docs/optimizers.md.

Each function has the signature of the fused operator of the same name in
torch.ops.optimizers, so the optimizer classes call either one the same way.
This path runs wherever no fused kernel exists (fused=False, or a device the
extension was not built for) and is what the tests compare the kernels with.
It loops over tensors; low-precision tensors are computed in float32 and
rounded once when stored, as the kernels do. With fp32 master weights
(`model_params` given), `params` are the float32 masters and each model param
receives its master's new value, rounded once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

# Computed in float32 and rounded once when stored (and the dtypes that fp32 master weights serve).
LOW_PRECISION = (torch.float16, torch.bfloat16)


def _opmath(t: Tensor) -> Tensor:
    return t.float() if t.dtype in LOW_PRECISION else t


def _store(dst: Tensor, value: Tensor) -> None:
    if value is not dst:
        dst.copy_(value)


def _scalars(lr, lr_tensor, grad_scale, found_inf):
    """(lr, 1/grad_scale, skip) as the kernels read them."""
    lr = float(lr_tensor.item()) if lr_tensor is not None else float(lr)
    inv_scale = 1.0 / float(grad_scale.item()) if grad_scale is not None else 1.0
    skip = found_inf is not None and float(found_inf.item()) != 0.0
    return lr, inv_scale, skip


def _round_into_models(params, model_params) -> None:
    """fp32 master weights: copy each master's new value into its bf16/fp16 model param."""
    for model, master in zip(model_params or (), params):
        model.copy_(master)


def _leave_unscaled(grads, grad_scale, inv_scale: float) -> None:
    """AMP: after the update the grads are left unscaled in place, as torch's fused optimizers leave
    them (a skipped step returns before this and leaves them as they were)."""
    if grad_scale is not None:
        for g in grads:
            g.mul_(inv_scale)


def _advance(state_steps) -> None:
    """The operators advance their step counts (skipped steps return before this)."""
    for step in state_steps:
        step.add_(1)


def _prepared_grad(g: Tensor, p: Tensor, inv_scale: float, maximize: bool, weight_decay: float) -> Tensor:
    """Steps 1 and 2 of every rule: unscale, maximize, L2 weight decay."""
    g = _opmath(g)
    if inv_scale != 1.0:
        g = g * inv_scale
    if maximize:
        g = -g
    if weight_decay != 0.0:
        g = g + weight_decay * _opmath(p)
    return g


def momentum_(
    params: Sequence[Tensor],
    grads,
    momentum_buffers,
    *,
    lr,
    momentum,
    dampening,
    nesterov,
    weight_decay,
    maximize,
    first_step,
    lr_tensor=None,
    grad_scale=None,
    found_inf=None,
    model_params=None,
):
    lr, inv_scale, skip = _scalars(lr, lr_tensor, grad_scale, found_inf)
    if skip:
        return
    for i, (p, g) in enumerate(zip(params, grads)):
        p32 = _opmath(p)
        d = _prepared_grad(g, p, inv_scale, maximize, weight_decay)
        if momentum != 0.0:
            buf = _opmath(momentum_buffers[i])
            if first_step:
                buf = buf.copy_(d) if buf is momentum_buffers[i] else d.clone()
            else:
                buf = buf.mul_(momentum).add_(d, alpha=1.0 - dampening)
            _store(momentum_buffers[i], buf)
            d = d.add(buf, alpha=momentum) if nesterov else buf
        _store(p, p32.sub_(d, alpha=lr))
    _round_into_models(params, model_params)
    _leave_unscaled(grads, grad_scale, inv_scale)


def rmsprop_(
    params,
    grads,
    square_avgs,
    grad_avgs,
    momentum_buffers,
    state_steps,
    *,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize,
    lr_tensor=None,
    grad_scale=None,
    found_inf=None,
    model_params=None,
):
    lr, inv_scale, skip = _scalars(lr, lr_tensor, grad_scale, found_inf)
    if skip:
        return
    _advance(state_steps)
    for i, (p, g) in enumerate(zip(params, grads)):
        p32 = _opmath(p)
        g = _prepared_grad(g, p, inv_scale, maximize, weight_decay)
        sq = _opmath(square_avgs[i]).mul_(alpha).addcmul_(g, g, value=1.0 - alpha)
        _store(square_avgs[i], sq)
        if centered:
            ga = _opmath(grad_avgs[i]).lerp_(g, 1.0 - alpha)
            _store(grad_avgs[i], ga)
            avg = sq.addcmul(ga, ga, value=-1.0).sqrt_().add_(eps)
        else:
            avg = sq.sqrt().add_(eps)
        if momentum > 0.0:
            buf = _opmath(momentum_buffers[i]).mul_(momentum).addcdiv_(g, avg)
            _store(momentum_buffers[i], buf)
            p32.sub_(buf, alpha=lr)
        else:
            p32.addcdiv_(g, avg, value=-lr)
        _store(p, p32)
    _round_into_models(params, model_params)
    _leave_unscaled(grads, grad_scale, inv_scale)


def adam_step_scalars(lr: float, beta1: float, beta2: float, step: float, bias_correction: bool):
    """(step_size, 1/sqrt(bc2)) from the step count, as rules.h computes them."""
    if not bias_correction:
        return lr, 1.0
    bc1 = 1.0 - beta1**step
    bc2 = 1.0 - beta2**step
    return lr / bc1, 1.0 / math.sqrt(bc2)


def _adam_moments(g, m, v, beta1, beta2):
    m.lerp_(g, 1.0 - beta1)  # as torch.optim.Adam (NaN, not inf, where m and g are both infinite)
    v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)


def adam_(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    state_steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled_weight_decay,
    amsgrad,
    bias_correction,
    maximize,
    lr_tensor=None,
    grad_scale=None,
    found_inf=None,
    model_params=None,
):
    lr, inv_scale, skip = _scalars(lr, lr_tensor, grad_scale, found_inf)
    if skip:
        return
    _advance(state_steps)
    l2 = 0.0 if decoupled_weight_decay else weight_decay
    for i, (p, g) in enumerate(zip(params, grads)):
        p32 = _opmath(p)
        g = _prepared_grad(g, p, inv_scale, maximize, l2)
        if decoupled_weight_decay:
            p32.mul_(1.0 - lr * weight_decay)
        m, v = _opmath(exp_avgs[i]), _opmath(exp_avg_sqs[i])
        _adam_moments(g, m, v, beta1, beta2)
        _store(exp_avgs[i], m)
        _store(exp_avg_sqs[i], v)
        if amsgrad:
            v_max = torch.maximum(_opmath(max_exp_avg_sqs[i]), v)
            _store(max_exp_avg_sqs[i], v_max)
            v = v_max
        step_size, inv_bc2_sqrt = adam_step_scalars(
            lr, beta1, beta2, float(state_steps[i].item()), bias_correction
        )
        denom = v.sqrt().mul_(inv_bc2_sqrt).add_(eps)
        _store(p, p32.addcdiv_(m, denom, value=-step_size))
    _round_into_models(params, model_params)
    _leave_unscaled(grads, grad_scale, inv_scale)


def diffgrad_(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    previous_grads,
    state_steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    maximize,
    lr_tensor=None,
    grad_scale=None,
    found_inf=None,
    model_params=None,
):
    lr, inv_scale, skip = _scalars(lr, lr_tensor, grad_scale, found_inf)
    if skip:
        return
    _advance(state_steps)
    for i, (p, g) in enumerate(zip(params, grads)):
        p32 = _opmath(p)
        g = _prepared_grad(g, p, inv_scale, maximize, weight_decay)
        m, v = _opmath(exp_avgs[i]), _opmath(exp_avg_sqs[i])
        _adam_moments(g, m, v, beta1, beta2)
        _store(exp_avgs[i], m)
        _store(exp_avg_sqs[i], v)
        xi = torch.sigmoid((_opmath(previous_grads[i]) - g).abs_())
        step_size, inv_bc2_sqrt = adam_step_scalars(lr, beta1, beta2, float(state_steps[i].item()), True)
        denom = v.sqrt().mul_(inv_bc2_sqrt).add_(eps)
        _store(p, p32.addcdiv_(xi.mul_(m), denom, value=-step_size))
        previous_grads[i].copy_(g)
    _round_into_models(params, model_params)
    _leave_unscaled(grads, grad_scale, inv_scale)


def adagrad_(
    params,
    grads,
    state_sums,
    state_steps,
    *,
    lr,
    lr_decay,
    weight_decay,
    eps,
    maximize,
    lr_tensor=None,
    grad_scale=None,
    found_inf=None,
    model_params=None,
):
    lr, inv_scale, skip = _scalars(lr, lr_tensor, grad_scale, found_inf)
    if skip:
        return
    _advance(state_steps)
    for i, (p, g) in enumerate(zip(params, grads)):
        p32 = _opmath(p)
        g = _prepared_grad(g, p, inv_scale, maximize, weight_decay)
        clr = lr / (1.0 + (float(state_steps[i].item()) - 1.0) * lr_decay)
        total = _opmath(state_sums[i]).addcmul_(g, g)
        _store(state_sums[i], total)
        _store(p, p32.addcdiv_(g, total.sqrt().add_(eps), value=-clr))
    _round_into_models(params, model_params)
    _leave_unscaled(grads, grad_scale, inv_scale)


def radam_step_scalars(lr: float, beta1: float, beta2: float, step: float) -> tuple[float, bool]:
    """(step_size, rectified) from the step count, as rules.h computes them: the step is
    step_size * m / (sqrt(v) + eps) when rectified, else step_size * m."""
    bc1 = 1.0 - beta1**step
    beta2_t = beta2**step
    bc2 = 1.0 - beta2_t
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * step * beta2_t / bc2
    if not rho_t > 5.0:
        return lr / bc1, False
    r = math.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
    return lr * r * math.sqrt(bc2) / bc1, True


def _decay(p32: Tensor, lr: float, weight_decay: float, decoupled: bool) -> float:
    """Decoupled weight decay applied to p (AdamW's), or the L2 coefficient to add to the grad."""
    if not decoupled:
        return weight_decay
    p32.mul_(1.0 - lr * weight_decay)
    return 0.0


def radam_(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    state_steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled_weight_decay,
    maximize,
    lr_tensor=None,
    grad_scale=None,
    found_inf=None,
    model_params=None,
):
    lr, inv_scale, skip = _scalars(lr, lr_tensor, grad_scale, found_inf)
    if skip:
        return
    _advance(state_steps)
    for i, (p, g) in enumerate(zip(params, grads)):
        p32 = _opmath(p)
        g = _prepared_grad(g, p, inv_scale, maximize, 0.0 if decoupled_weight_decay else weight_decay)
        _decay(p32, lr, weight_decay, decoupled_weight_decay)
        m, v = _opmath(exp_avgs[i]), _opmath(exp_avg_sqs[i])
        _adam_moments(g, m, v, beta1, beta2)
        _store(exp_avgs[i], m)
        _store(exp_avg_sqs[i], v)
        step_size, rectified = radam_step_scalars(lr, beta1, beta2, float(state_steps[i].item()))
        if rectified:
            p32.addcdiv_(m, v.sqrt().add_(eps), value=-step_size)
        else:
            p32.add_(m, alpha=-step_size)
        _store(p, p32)
    _round_into_models(params, model_params)
    _leave_unscaled(grads, grad_scale, inv_scale)


def adabelief_(
    params,
    grads,
    exp_avgs,
    exp_avg_vars,
    max_exp_avg_vars,
    state_steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled_weight_decay,
    amsgrad,
    maximize,
    lr_tensor=None,
    grad_scale=None,
    found_inf=None,
    model_params=None,
):
    lr, inv_scale, skip = _scalars(lr, lr_tensor, grad_scale, found_inf)
    if skip:
        return
    _advance(state_steps)
    for i, (p, g) in enumerate(zip(params, grads)):
        p32 = _opmath(p)
        g = _prepared_grad(g, p, inv_scale, maximize, 0.0 if decoupled_weight_decay else weight_decay)
        _decay(p32, lr, weight_decay, decoupled_weight_decay)
        m, s = _opmath(exp_avgs[i]), _opmath(exp_avg_vars[i])
        m.lerp_(g, 1.0 - beta1)
        residual = g - m
        s.mul_(beta2).addcmul_(residual, residual, value=1.0 - beta2).add_(eps)
        _store(exp_avgs[i], m)
        _store(exp_avg_vars[i], s)
        if amsgrad:
            s_max = torch.maximum(_opmath(max_exp_avg_vars[i]), s)
            _store(max_exp_avg_vars[i], s_max)
            s = s_max
        step_size, inv_bc2_sqrt = adam_step_scalars(lr, beta1, beta2, float(state_steps[i].item()), True)
        _store(p, p32.addcdiv_(m, s.sqrt().mul_(inv_bc2_sqrt).add_(eps), value=-step_size))
    _round_into_models(params, model_params)
    _leave_unscaled(grads, grad_scale, inv_scale)
