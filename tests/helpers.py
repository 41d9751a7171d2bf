"""Running optimizers side by side on identical gradients and comparing what they hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from tests.optim_db import STATE_NAMES  # every state name of every optimizer class

# Tolerances next to their dtype: the doc's fp32 parity bound after 100 steps, and the
# bound for float64 runs (only the order of operations differs).
PARITY_TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


def rel_diff(ours: Tensor, ref: Tensor) -> float:
    """Relative difference of a tensor: max|ours - ref| / max|ref|, elementwise maxima over the
    whole tensor, computed in float64. An all-zero ref falls back to max|ours - ref|; an empty
    tensor has difference 0."""
    ours = torch.as_tensor(ours).detach().to(torch.float64)
    ref = torch.as_tensor(ref).detach().to(torch.float64)
    assert ours.shape == ref.shape, f"shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    if ref.numel() == 0:
        return 0.0
    err = (ours - ref).abs().max().item()
    if err != err:  # a NaN where the other has a number (or both NaN) is a mismatch
        return float("inf")
    scale = ref.abs().max().item()
    return err / scale if scale > 0 else err


def clone_param(p: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """A fresh leaf with p's values, shape and strides (a non-contiguous p gives a
    non-contiguous clone), optionally in another dtype."""
    out = torch.empty_strided(p.size(), p.stride(), dtype=dtype or p.dtype, device=p.device)
    with torch.no_grad():
        out.copy_(p)
    return out


def clone_params(params: Sequence[Tensor], dtype: torch.dtype | None = None) -> list[Tensor]:
    return [clone_param(p, dtype) for p in params]


def make_params(dtype: torch.dtype = torch.float32, seed: int = 0) -> list[Tensor]:
    """The param list of the parity tests: sizes 0, 1, 7, 4097, a 2-D and a 4-D shape, a
    transposed view and a strided slice of leaf tensors (the views themselves are the params)."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)

    transposed = randn(6, 4).t()  # dense, non-contiguous
    sliced = randn(5, 8)[:, 1::3]  # not dense: the kernel must write through a copy
    params = [randn(0), randn(1), randn(7), randn(4097), randn(3, 5), randn(2, 3, 2, 2), transposed, sliced]
    assert not transposed.is_contiguous() and not sliced.is_contiguous()
    assert transposed.is_leaf and sliced.is_leaf
    return params


def all_params(opt: torch.optim.Optimizer) -> list[Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]


def random_grads(
    params: Sequence[Tensor], gen: torch.Generator, round_through: torch.dtype | None, scale: float = 1.0
) -> list[Tensor]:
    """float64 random gradients, one per param, optionally rounded through a low-precision dtype
    so that runs at different precisions see identical values."""
    grads = []
    for p in params:
        g = torch.randn(p.shape, generator=gen, dtype=torch.float64) * scale
        if round_through is not None:
            g = g.to(round_through).to(torch.float64)
        grads.append(g)
    return grads


def set_grads(params: Sequence[Tensor], grads: Sequence[Tensor | None]) -> None:
    """Writes the gradients into .grad in place where one exists (as autograd accumulates after
    zero_grad), so an optimizer that kept a reference to last step's grad would see it change."""
    for p, g in zip(params, grads, strict=True):
        if g is None:
            p.grad = None
        elif p.grad is None or p.grad.dtype != p.dtype:
            p.grad = torch.empty_like(p)  # same layout as p where p is dense
            p.grad.copy_(g)
        else:
            p.grad.copy_(g)


def run_lockstep(
    optimizers: Sequence[torch.optim.Optimizer],
    steps: int,
    seed: int = 1,
    round_through: torch.dtype | None = None,
    grad_scale: float = 1.0,
    skip: Callable[[int, int], bool] | None = None,
    before_step: Callable[[int], None] | None = None,
) -> None:
    """Steps every optimizer `steps` times; at each step all of them get the same random
    gradients (positionally matched params). `skip(step, i)` leaves param i without a grad at
    that step; `before_step(step)` runs before the optimizers step (e.g. to change an lr)."""
    param_lists = [all_params(opt) for opt in optimizers]
    count = len(param_lists[0])
    assert all(len(ps) == count for ps in param_lists)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        grads = random_grads(param_lists[0], gen, round_through, grad_scale)
        if skip is not None:
            grads = [None if skip(step, i) else g for i, g in enumerate(grads)]
        for params in param_lists:
            set_grads(params, grads)
        if before_step is not None:
            before_step(step)
        for opt in optimizers:
            opt.step()


def differences(
    ours: torch.optim.Optimizer, ref: torch.optim.Optimizer, state_names: Sequence[str] = STATE_NAMES
) -> dict[str, float]:
    """rel_diff of every param and every named state tensor, keyed 'param 3' / 'exp_avg 3'.
    A state that one optimizer has and the other lacks is reported as infinitely different."""
    out = {}
    for i, (p, q) in enumerate(zip(all_params(ours), all_params(ref), strict=True)):
        out[f"param {i}"] = rel_diff(p, q)
        s, r = ours.state.get(p, {}), ref.state.get(q, {})
        for name in state_names:
            a, b = s.get(name), r.get(name)
            if a is None and b is None:
                continue
            out[f"{name} {i}"] = float("inf") if a is None or b is None else rel_diff(a, b)
    return out


def assert_optimizers_close(
    ours: torch.optim.Optimizer,
    ref: torch.optim.Optimizer,
    tol: float,
    state_names: Sequence[str] = STATE_NAMES,
) -> dict[str, float]:
    diffs = differences(ours, ref, state_names)
    bad = {k: v for k, v in diffs.items() if not v <= tol}
    assert not bad, f"relative differences above {tol}: {bad}"
    return diffs


def assert_optimizers_equal(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> None:
    """Bitwise equal params and state (every tensor in the state, whatever its name)."""
    for i, (p, q) in enumerate(zip(all_params(a), all_params(b), strict=True)):
        assert torch.equal(p, q), f"param {i} differs"
        sa, sb = a.state.get(p, {}), b.state.get(q, {})
        assert sa.keys() == sb.keys(), f"param {i}: state keys {sorted(sa)} != {sorted(sb)}"
        for name, value in sa.items():
            if isinstance(value, Tensor):
                assert torch.equal(value, sb[name]), f"state {name} of param {i} differs"
            else:
                assert value == sb[name], f"state {name} of param {i} differs"


def assert_masters_follow(ours: torch.optim.Optimizer, ref: torch.optim.Optimizer, dtype: torch.dtype):
    """fp32 master weights: each of our params is its float32 master ("master_param") rounded to
    dtype, and masters and state match ref's float32 params and state at the float32 tolerance."""
    tol = PARITY_TOL[torch.float32]
    for i, (p, q) in enumerate(zip(all_params(ours), all_params(ref), strict=True)):
        state, ref_state = ours.state[p], ref.state[q]
        master = state["master_param"]
        assert p.dtype == dtype and master.dtype == torch.float32
        assert torch.equal(p, master.to(dtype)), f"param {i} is not its master rounded"
        assert rel_diff(master, q) <= tol, f"master {i}: {rel_diff(master, q)}"
        for name in STATE_NAMES:
            if name == "step" or name not in ref_state:
                continue
            assert state[name].dtype == torch.float32, name
            assert rel_diff(state[name], ref_state[name]) <= tol, f"{name} {i}"


def free_port() -> int:
    """A free TCP port on the loopback interface (for torchrun's rendezvous)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(*target: str, processes: int = 2) -> list[str]:
    """torchrun on one node over loopback with `processes` ranks, running `target` (a script and its
    arguments, or -m and a module)."""
    import sys

    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        f"--nproc-per-node={processes}",
        "--master-addr=127.0.0.1",
        f"--master-port={free_port()}",
        *target,
    ]
