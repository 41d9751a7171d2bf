"""The CUDA kernels: parity with the CPU kernel and with torch.optim on CUDA, odd sizes, thousands of
tensors, a tensor over 2^31 elements, CUDA graph capture, GradScaler's skipped steps, low precision.
Skipped where torch has no GPU; where it has one, the extension must have been built with CUDA."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import optimizers
from optimizers import Adam, reference
from tests.helpers import (
    PARITY_TOL,
    all_params,
    assert_masters_follow,
    assert_optimizers_close,
    assert_optimizers_equal,
    clone_params,
    differences,
    make_params,
    random_grads,
    rel_diff,
    run_lockstep,
    set_grads,
)
from tests.optim_db import OptimConfig, configs, fp16_safe, params_for, with_master_weights
from tests.test_operators import call, valid_call

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

STEPS = 100
CHUNK = 1 << 16  # elements per block of the CUDA launcher (kChunkElements)
PARITY = configs("parity")
TORCH_PARITY = [c for c in PARITY if c.reference == "torch"]
ORACLE_PARITY = [c for c in PARITY if c.reference == "oracle"]
LOW_PRECISION = configs("low_precision")
MASTER_WEIGHTS = configs("low_precision", where=lambda info: info.supports_master_weights)
# One config per rule with its richest options (single param group).
REPRESENTATIVE = LOW_PRECISION


@pytest.fixture(autouse=True)
def _cuda_kernels_built():
    if not optimizers.extension_available() or not optimizers._extension._C.with_cuda:
        pytest.fail("optimizers._C was built without CUDA kernels; rebuild where torch has CUDA")


# -- helpers ------------------------------------------------------------------------------------
def to_cuda(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Fresh CUDA copies with the same sizes, strides and storage offsets: non-contiguous stays
    non-contiguous, and a view that starts off the 16-byte grid stays off it (the kernel's scalar
    path). Each call makes new copies, so optimizers built from them share nothing."""
    out = []
    for p in params:
        storage = torch.empty(p.untyped_storage().nbytes() // p.element_size(), dtype=p.dtype, device="cuda")
        q = storage.as_strided(p.size(), p.stride(), p.storage_offset())
        q.copy_(p)
        out.append(q)
    return out


def sample_params(dtype: torch.dtype = torch.float32, seed: int = 0) -> list[torch.Tensor]:
    """make_params (sizes 0, 1, 7, 4097, views) plus a tensor of several chunks and one whose data
    starts 4 bytes past an aligned address (the kernel's scalar path)."""
    gen = torch.Generator().manual_seed(seed + 100)
    unaligned = torch.randn(4099, generator=gen, dtype=torch.float64).to(dtype)[1:]
    multi_chunk = torch.randn(3 * CHUNK + 5, generator=gen, dtype=torch.float64).to(dtype)
    return make_params(dtype, seed) + [unaligned, multi_chunk]


def build_on_cuda(config: OptimConfig, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """Our optimizer with the CUDA kernel; a tensor lr lives on the GPU (read by the kernel)."""
    opt = config.build(params, fused=True)
    for group in opt.param_groups:
        if torch.is_tensor(group["lr"]):
            group["lr"] = group["lr"].cuda()
    return opt


def torch_reference(config: OptimConfig, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    ref = config.build_reference(params)
    if config.tensor_lr:  # torch's foreach path wants a float or capturable for a tensor lr
        for group in ref.param_groups:
            group["foreach"] = False
    return ref


class OnCPU:
    """An optimizer's params and state copied to the CPU, so that tests.helpers compares optimizers
    that live on different devices."""

    def __init__(self, opt: torch.optim.Optimizer):
        self.param_groups, self.state = [], {}
        for group in opt.param_groups:
            params = []
            for p in group["params"]:
                q = p.detach().cpu().clone()
                state = opt.state.get(p, {})
                self.state[q] = {
                    k: v.detach().cpu().clone() if torch.is_tensor(v) else v for k, v in state.items()
                }
                params.append(q)
            self.param_groups.append(dict(group, params=params))


# -- parity ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", params_for(TORCH_PARITY + ORACLE_PARITY))
def test_matches_cpu_kernel(config):
    params = sample_params()
    gpu = build_on_cuda(config, to_cuda(params))
    cpu = config.build(clone_params(params), fused=True)
    run_lockstep([gpu, cpu], STEPS)
    assert_optimizers_close(OnCPU(gpu), cpu, PARITY_TOL[torch.float32])


@pytest.mark.parametrize("config", params_for(TORCH_PARITY))
def test_matches_torch_optim_on_cuda(config):
    params = sample_params()
    ours = build_on_cuda(config, to_cuda(params))
    ref = torch_reference(config, to_cuda(params))
    run_lockstep([ours, ref], STEPS)
    assert_optimizers_close(OnCPU(ours), OnCPU(ref), PARITY_TOL[torch.float32])


@pytest.mark.parametrize("config", params_for(ORACLE_PARITY))
def test_matches_float64_oracle(config):
    params = sample_params()
    ours = build_on_cuda(config, to_cuda(params))
    oracle = config.build_reference(clone_params(params, torch.float64))
    run_lockstep([ours, oracle], STEPS)
    assert_optimizers_close(OnCPU(ours), oracle, PARITY_TOL[torch.float32])


@pytest.mark.parametrize("config", params_for(REPRESENTATIVE))
def test_float64_matches_cpu_kernel(config):
    params = sample_params(torch.float64)
    gpu = build_on_cuda(config, to_cuda(params))
    cpu = config.build(clone_params(params), fused=True)
    run_lockstep([gpu, cpu], 30)
    assert_optimizers_close(OnCPU(gpu), cpu, PARITY_TOL[torch.float64])


@pytest.mark.parametrize("config", params_for(REPRESENTATIVE))
def test_odd_sizes(config):
    """Sizes 0, 1, 7, 4097 and 2^20 + 3 against the CPU kernel and the independent reference
    (torch.optim on CUDA, or the float64 oracle)."""
    gen = torch.Generator().manual_seed(7)
    params = [torch.randn(n, generator=gen) for n in (0, 1, 7, 4097, (1 << 20) + 3)]
    gpu = build_on_cuda(config, to_cuda(params))
    cpu = config.build(clone_params(params), fused=True)
    if config.reference == "torch":
        ref = torch_reference(config, to_cuda(params))
    else:
        ref = config.build_reference(clone_params(params, torch.float64))
    run_lockstep([gpu, cpu, ref], STEPS)
    assert_optimizers_close(OnCPU(gpu), cpu, PARITY_TOL[torch.float32])
    assert_optimizers_close(
        OnCPU(gpu), ref if config.reference == "oracle" else OnCPU(ref), PARITY_TOL[torch.float32]
    )


@pytest.mark.parametrize("config", params_for(REPRESENTATIVE))
def test_thousands_of_small_tensors(config):
    """3000 tensors (several launches of the multi-tensor launcher), some empty."""
    gen = torch.Generator().manual_seed(11)
    sizes = torch.randint(0, 700, (3000,), generator=gen).tolist()
    params = [torch.randn(n, generator=gen) for n in sizes]
    gpu = build_on_cuda(config, to_cuda(params))
    cpu = config.build(clone_params(params), fused=True)
    run_lockstep([gpu, cpu], 10)
    assert_optimizers_close(OnCPU(gpu), cpu, PARITY_TOL[torch.float32])


@pytest.mark.parametrize("config", params_for(REPRESENTATIVE))
def test_mixed_dtypes_in_one_group(config):
    """fp32, fp64, bf16 and fp16 params in one group: one launch per dtype, each as the CPU kernel."""
    dtypes = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
    params = [p.to(dtypes[i % 4]) for i, p in enumerate(make_params(seed=3)[2:])]
    config = fp16_safe(config)
    gpu = build_on_cuda(config, to_cuda(params))
    cpu = config.build(clone_params(params), fused=True)
    run_lockstep([gpu, cpu], 20, round_through=torch.float16)
    diffs = differences(OnCPU(gpu), cpu)
    tol = {torch.float32: 1e-5, torch.float64: 1e-12, torch.bfloat16: 2e-2, torch.float16: 2e-3}
    for i, p in enumerate(params):
        worst = max(v for k, v in diffs.items() if k.endswith(f" {i}") and not k.startswith("step"))
        assert worst <= tol[p.dtype], (i, p.dtype, worst)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("config", params_for(LOW_PRECISION))
def test_low_precision_error_bounded(config, dtype):
    """bf16/fp16 params, computed in fp32 and rounded once: our error against a float64 run is at
    most twice that of the reference run natively at that precision (as tests/test_low_precision)."""
    if dtype == torch.float16:
        config = fp16_safe(config)
    low = make_params(dtype)
    ours = build_on_cuda(config, to_cuda(low))
    native = config.build_reference(to_cuda(low))
    exact = config.build_reference(to_cuda(clone_params(low, torch.float64)))
    run_lockstep([ours, native, exact], STEPS, round_through=dtype)
    for p in all_params(ours):
        assert p.dtype == dtype

    def flat(opt):
        return torch.cat([p.detach().reshape(-1).cpu().to(torch.float64) for p in all_params(opt)])

    our_error, native_error = rel_diff(flat(ours), flat(exact)), rel_diff(flat(native), flat(exact))
    assert math.isfinite(native_error) and native_error > 0
    assert our_error <= 2.0 * native_error + 1e-6, (our_error, native_error)


# -- fp32 master weights --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("config", params_for(MASTER_WEIGHTS))
def test_master_weights_follow_float32_reference(config, dtype):
    """bf16/fp16 params with master_weights=True on the CUDA kernel (bf16 grads and model params,
    float32 masters and state in one launch): masters and state match the float32 reference fed the
    same grads, and each param is its master rounded. Includes the unaligned and multi-chunk views."""
    low = sample_params(dtype)
    ours = build_on_cuda(with_master_weights(config), to_cuda(low))
    if config.reference == "torch":
        ref = torch_reference(config, to_cuda(clone_params(low, torch.float32)))
    else:
        ref = config.build_reference(clone_params(low, torch.float32))
    run_lockstep([ours, ref], STEPS, round_through=dtype)
    assert_masters_follow(OnCPU(ours), OnCPU(ref), dtype)


# -- a tensor over 2^31 elements ------------------------------------------------------------------
def test_tensor_over_2_31_elements_bf16():
    """Adam on one bf16 tensor of 2^31 + 5 elements: 64-bit offsets, one tensor carried across many
    launches. Every element is visited (exp_avg is nonzero exactly where the grad is), and windows at
    the start, across 2^31 and at the end match the reference implementation."""
    n = (1 << 31) + 5
    need = 4 * 2 * n + (8 << 30)  # param, grad, exp_avg, exp_avg_sq in bf16, and temporaries
    free, _ = torch.cuda.mem_get_info()
    if free < need:
        pytest.skip(f"needs {need / 2**30:.0f} GiB of free GPU memory, {free / 2**30:.0f} GiB free")
    torch.manual_seed(0)
    p = torch.empty(n, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1)
    p.grad = torch.randn(n, dtype=torch.bfloat16, device="cuda")
    windows = [slice(0, CHUNK + 7), slice((1 << 31) - CHUNK - 3, (1 << 31) + 3), slice(n - CHUNK - 1, n)]
    expected = []
    for w in windows:  # the reference path on copies of each window: fp32 math, rounded once
        q, g = p[w].clone(), p.grad[w].clone()
        m, v, step = torch.zeros_like(q), torch.zeros_like(q), torch.zeros((), device="cuda")  # advanced to 1
        reference.adam_(
            [q],
            [g],
            [m],
            [v],
            [],
            [step],
            lr=0.1,
            beta1=0.9,
            beta2=0.999,
            eps=1e-8,
            weight_decay=0.0,
            decoupled_weight_decay=False,
            amsgrad=False,
            bias_correction=True,
            maximize=False,
        )
        expected.append((q, m))

    opt = Adam([p], lr=0.1, fused=True)
    opt.step()
    exp_avg = opt.state[p]["exp_avg"]
    assert not ((exp_avg == 0) != (p.grad == 0)).any()
    for w, (q, m) in zip(windows, expected, strict=True):
        # The step moves each element by about lr = 0.1, far more than one bf16 rounding.
        torch.testing.assert_close(p[w].float(), q.float(), rtol=2**-7, atol=1e-3)
        torch.testing.assert_close(exp_avg[w].float(), m.float(), rtol=2**-7, atol=1e-6)


# -- CUDA graphs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("master", [False, True], ids=["fp32", "bf16 with master weights"])
@pytest.mark.parametrize("config", params_for(REPRESENTATIVE))
def test_cuda_graph_replay_matches_eager(config, master):
    """optimizer.step() captured once with lr as a device tensor, then replayed with new gradients
    and a new lr each time: bitwise the same as stepping eagerly (step counts and lr are read on the
    device, so nothing is baked into the graph)."""
    lr0 = float(config.kwargs.get("lr", 1e-3))
    config = dataclasses.replace(config, tensor_lr=True)
    params = sample_params()
    if master:
        config = with_master_weights(config)
        params = sample_params(torch.bfloat16)
    graphed = build_on_cuda(config, to_cuda(params))
    eager = build_on_cuda(config, to_cuda(params))
    gen = torch.Generator().manual_seed(3)

    def feed(lr: float) -> None:
        grads = random_grads(all_params(graphed), gen, None)
        for opt in (graphed, eager):
            set_grads(all_params(opt), grads)  # in place: the graph reads the same grad buffers
            for group in opt.param_groups:
                group["lr"].fill_(lr)

    side = torch.cuda.Stream()  # warm-up (lazy state) on a side stream, as torch.cuda.graphs advises
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            feed(lr0)
            graphed.step()
            eager.step()
    torch.cuda.current_stream().wait_stream(side)

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        graphed.step()
    for i in range(10):
        feed(lr0 * (0.5 + 0.1 * i))
        graph.replay()
        eager.step()
    torch.cuda.synchronize()
    assert_optimizers_equal(OnCPU(graphed), OnCPU(eager))
    step = OnCPU(graphed).state
    assert all(s["step"].item() == 13 for s in step.values() if "step" in s)


# -- AMP ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", params_for(REPRESENTATIVE))
def test_grad_scaler_skips_step_with_inf(config):
    """Under torch.amp.GradScaler the kernel unscales the grads itself; an inf in one grad skips the
    whole update on the device (params, state and step counts unchanged) and halves the scale."""
    params = sample_params()
    ours = build_on_cuda(config, to_cuda(params))
    plain = build_on_cuda(config, to_cuda(params))
    scaler = torch.amp.GradScaler("cuda", init_scale=1024.0, growth_interval=1000)
    gen = torch.Generator().manual_seed(5)
    for step in range(8):
        grads = random_grads(all_params(ours), gen, None)
        # As scaler.scale(loss).backward() with d(loss)/dp = g: the grads arrive multiplied by the scale.
        scale = scaler.scale(torch.ones((), device="cuda")).item()
        set_grads(all_params(ours), [g * scale for g in grads])
        set_grads(all_params(plain), grads)
        inject = step == 4
        if inject:
            all_params(ours)[3].grad.view(-1)[17] = math.inf
            before = OnCPU(ours)
        scaler.step(ours)
        scaler.update()
        if inject:
            assert_optimizers_equal(OnCPU(ours), before)
            assert scaler.get_scale() == scale / 2
        else:
            plain.step()
            # Left unscaled in place, as torch's fused optimizers leave them (exact: powers of two).
            assert all(torch.equal(p.grad, q.grad) for p, q in zip(all_params(ours), all_params(plain)))
    # The scales are powers of two: unscaling in the kernel is exact.
    assert_optimizers_close(OnCPU(ours), OnCPU(plain), 1e-6)


def test_found_inf_above_one_skips_without_moving_step_counts():
    """GradScaler passes the sum of its per-device found_inf flags, which can be 2 or more: the step
    is skipped and the step counts stay (they must not go back by the flag's value)."""
    lists, kwargs = valid_call("adam_", "cuda")
    before = {arg: [t.clone() for t in tensors] for arg, tensors in lists.items()}
    call("adam_", lists, dict(kwargs, found_inf=torch.tensor(2.0, device="cuda")))
    for arg, tensors in lists.items():
        assert all(torch.equal(a, b) for a, b in zip(tensors, before[arg], strict=True)), arg


def test_capture_rejects_cpu_scalar_tensors():
    """A CPU lr tensor is read on the host: captured in a graph, its value would be frozen, so the
    operator refuses it during capture (a CUDA lr tensor is read by the kernel at each replay)."""
    lists, kwargs = valid_call("adam_", "cuda")
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="lr is a CPU tensor; in a step captured in a CUDA graph"):
        with torch.cuda.graph(graph):
            call("adam_", lists, dict(kwargs, lr_tensor=torch.tensor(0.1)))
