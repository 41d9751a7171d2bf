"""The one setup factory of the speed benchmark: pytest-benchmark and the CLI both build their cases here.

A case is one optimizer implementation stepping one workload (a list of parameter shapes) on one
device. The implementations of each rule are ours and its peers:

- torch-fused, torch-foreach, torch-forloop: torch.optim with fused=True / foreach=True / neither;
  torch-forloop only on the workloads of FORLOOP_WORKLOADS.
- torch-compiled: torch.compile of a function that calls a foreach torch.optim optimizer's step,
  as in PyTorch's "Compiling the optimizer" tutorial; compiled and warmed up before it is timed.
  Only on the workloads of COMPILED_WORKLOADS: compile time grows with the number of tensors
  (a list of 512 small tensors took 199 s to compile on a 2-core Xeon), so the workloads of
  thousands of tensors leave it out.
- deepspeed: DeepSpeed's DeepSpeedCPUAdam (Adam, AdamW), the CPU Adam of ZeRO-Offload; its C++
  op builds itself with ninja on first use (about 140 s here, then cached). CPU only.
- bitsandbytes: bitsandbytes' 32-bit optimizers (momentum SGD, RMSprop, Adam, AdamW). Its CPU
  backend is a sequence of torch ops per tensor, not a fused kernel; its 8-bit optimizers change
  the rule (quantized state) and are not compared.
- pytorch_optimizer: pytorch_optimizer's DiffGrad. Under torch.compile its step recompiles at every
  step (the step count is a Python int of the param group, which the compiled code guards on),
  so after Dynamo's recompile limit it runs eagerly: there is no compiled DiffGrad peer.

Tried and left out: intel-extension-for-pytorch (its releases are built for one torch version
each; none for this torch), torchao's low-bit optimizers (CUDA, and a different rule), apex (its
fused optimizers are CUDA only). A peer whose package is not installed, or that fails to build,
is left out of a run with the reason in each row's `left_out` column.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from collections.abc import Callable
from dataclasses import dataclass

import torch

import optimizers
from optimizers.reference import LOW_PRECISION

from . import shapes as shape_lists

# Values each rule reads and writes per element after its first step (params, grads, state):
# the byte-count floor is these times the element size, divided by memory bandwidth.
VALUES_MOVED = {
    "momentum": 5,  # read p, g, buf; write p, buf
    "rmsprop": 5,  # read p, g, square_avg; write p, square_avg
    "adam": 7,  # read p, g, m, v; write p, m, v
    "adamw": 7,
    "adam-amsgrad": 9,  # read p, g, m, v, max_v; write p, m, v, max_v
    "diffgrad": 9,  # read p, g, m, v, g_prev; write p, m, v, g_prev
}

# rule -> implementation -> factory(params) -> optimizer, with the same hyperparameters throughout.
_MOMENTUM = dict(lr=1e-2, momentum=0.9)
_RMSPROP = dict(lr=1e-2, alpha=0.99)
_ADAMW = dict(lr=1e-3, weight_decay=1e-2)  # torch's and our AdamW default decay, said once here
_AMSGRAD = dict(lr=1e-3, amsgrad=True)


def _pytorch_optimizer_diffgrad(params):
    import pytorch_optimizer

    return pytorch_optimizer.DiffGrad(params, lr=1e-3)


@contextlib.contextmanager
def _quiet():
    """Keeps what a peer's package prints on import (DeepSpeed its accelerator, bitsandbytes the
    kernels it lacks) off the command's own output."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _deepspeed_adam(adamw: bool) -> Callable:
    def make(params):
        with _quiet():
            from deepspeed.ops.adam import DeepSpeedCPUAdam

        if adamw:
            return DeepSpeedCPUAdam(params, **_ADAMW, adamw_mode=True)
        return DeepSpeedCPUAdam(params, lr=1e-3, adamw_mode=False, weight_decay=0.0)

    return make


def _bitsandbytes(name: str, **hyper) -> Callable:
    def make(params):
        with _quiet():
            import bitsandbytes

        return getattr(bitsandbytes.optim, name)(params, **hyper)

    return make


IMPLEMENTATIONS: dict[str, dict[str, Callable]] = {
    "momentum": {
        "ours": lambda ps: optimizers.Momentum(ps, **_MOMENTUM, fused=True),
        "torch-fused": lambda ps: torch.optim.SGD(ps, **_MOMENTUM, fused=True),
        "torch-foreach": lambda ps: torch.optim.SGD(ps, **_MOMENTUM, foreach=True),
        "torch-forloop": lambda ps: torch.optim.SGD(ps, **_MOMENTUM, foreach=False),
        "torch-compiled": lambda ps: torch.optim.SGD(ps, **_MOMENTUM, foreach=True),
        "bitsandbytes": _bitsandbytes("SGD", **_MOMENTUM),
    },
    "rmsprop": {
        "ours": lambda ps: optimizers.RMSProp(ps, **_RMSPROP, fused=True),
        "torch-foreach": lambda ps: torch.optim.RMSprop(ps, **_RMSPROP, foreach=True),
        "torch-forloop": lambda ps: torch.optim.RMSprop(ps, **_RMSPROP, foreach=False),
        "torch-compiled": lambda ps: torch.optim.RMSprop(ps, **_RMSPROP, foreach=True),
        "bitsandbytes": _bitsandbytes("RMSprop", **_RMSPROP),
    },
    "adam": {
        "ours": lambda ps: optimizers.Adam(ps, lr=1e-3, fused=True),
        "torch-fused": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True),
        "torch-foreach": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True),
        "torch-forloop": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=False),
        "torch-compiled": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True),
        "deepspeed": _deepspeed_adam(adamw=False),
        "bitsandbytes": _bitsandbytes("Adam", lr=1e-3),
    },
    "adamw": {
        "ours": lambda ps: optimizers.AdamW(ps, **_ADAMW, fused=True),
        "torch-fused": lambda ps: torch.optim.AdamW(ps, **_ADAMW, fused=True),
        "torch-foreach": lambda ps: torch.optim.AdamW(ps, **_ADAMW, foreach=True),
        "torch-forloop": lambda ps: torch.optim.AdamW(ps, **_ADAMW, foreach=False),
        "torch-compiled": lambda ps: torch.optim.AdamW(ps, **_ADAMW, foreach=True),
        "deepspeed": _deepspeed_adam(adamw=True),
        "bitsandbytes": _bitsandbytes("AdamW", **_ADAMW),
    },
    "adam-amsgrad": {  # DeepSpeed's CPU Adam and bitsandbytes have no amsgrad
        "ours": lambda ps: optimizers.Adam(ps, **_AMSGRAD, fused=True),
        "torch-fused": lambda ps: torch.optim.Adam(ps, **_AMSGRAD, fused=True),
        "torch-foreach": lambda ps: torch.optim.Adam(ps, **_AMSGRAD, foreach=True),
        "torch-forloop": lambda ps: torch.optim.Adam(ps, **_AMSGRAD, foreach=False),
        "torch-compiled": lambda ps: torch.optim.Adam(ps, **_AMSGRAD, foreach=True),
    },
    "diffgrad": {
        "ours": lambda ps: optimizers.DiffGrad(ps, lr=1e-3, fused=True),
        "pytorch_optimizer": _pytorch_optimizer_diffgrad,
    },
}

COMPILED = ("torch-compiled",)
"""Implementations whose step runs under torch.compile."""

COMPILED_WORKLOADS = ("1M", "16M", "64M", "256M", "resnet18", "resnet50", "gpt2")
FORLOOP_WORKLOADS = ("1M", "16M", "resnet18", "resnet50")
"""torch-forloop only here: on the rest it took 147 s of the 658 s of timed steps of a full CPU run and
is never the best peer (torch-fused or torch-foreach is, on every workload)."""
"""Workloads the compiled peers are measured on (see the module docstring)."""

COMPILE_WARMUP_STEPS = 3
"""Steps of a compiled peer before it is timed: the first compiles, and the step after the lazy
state initialization may compile once more."""

_PACKAGES = ("deepspeed", "bitsandbytes", "pytorch_optimizer")
"""Peers named after the package they need."""
_CPU_ONLY = ("deepspeed",)

# Ours with fp32 master weights, for bf16/fp16 params only (a no-op on fp32 params).
MASTER_WEIGHTS = "ours-master"
_MASTER_WEIGHTS_FACTORIES: dict[str, Callable] = {
    "momentum": lambda ps: optimizers.Momentum(ps, **_MOMENTUM, fused=True, master_weights=True),
    "rmsprop": lambda ps: optimizers.RMSProp(ps, **_RMSPROP, fused=True, master_weights=True),
    "adam": lambda ps: optimizers.Adam(ps, lr=1e-3, fused=True, master_weights=True),
    "adamw": lambda ps: optimizers.AdamW(ps, **_ADAMW, fused=True, master_weights=True),
    "adam-amsgrad": lambda ps: optimizers.Adam(ps, **_AMSGRAD, fused=True, master_weights=True),
    "diffgrad": lambda ps: optimizers.DiffGrad(ps, lr=1e-3, fused=True, master_weights=True),
}


def is_ours(implementation: str) -> bool:
    return implementation.startswith("ours")


def implementations_of(rule: str, dtype: torch.dtype = torch.float32) -> list[str]:
    """Every implementation of a rule for params of dtype (with ours-master for bf16/fp16)."""
    return list(IMPLEMENTATIONS[rule]) + ([MASTER_WEIGHTS] if dtype in LOW_PRECISION else [])


def left_out_reason(implementation: str, workload: str, device: str | torch.device = "cpu") -> str | None:
    """Why an implementation is not measured on this workload and device, or None when it is."""
    if implementation in _CPU_ONLY and torch.device(device).type != "cpu":  # whether installed or not
        return f"{implementation} runs on the CPU only"
    if implementation in _PACKAGES and importlib.util.find_spec(implementation) is None:
        return f"{implementation} is not installed"
    if implementation == "torch-forloop" and workload not in FORLOOP_WORKLOADS:
        return "the slowest peer by far (a Python loop over the params): measured on " + " ".join(
            FORLOOP_WORKLOADS
        )
    if implementation in COMPILED and workload not in COMPILED_WORKLOADS:
        return "compile time grows with the tensor count: measured on " + " ".join(COMPILED_WORKLOADS)
    return None


@dataclass
class Case:
    rule: str
    implementation: str
    workload: str
    device: torch.device
    dtype: torch.dtype
    numel: int
    step: Callable[[], None]
    optimizer: torch.optim.Optimizer
    params: list[torch.Tensor]
    steps_taken: int  # by build_case, before any timing

    @property
    def tensors(self) -> int:
        return len(self.params)

    @property
    def bytes_per_step(self) -> int:
        values, size = VALUES_MOVED[self.rule], torch.finfo(self.dtype).bits // 8
        if self.implementation == MASTER_WEIGHTS:
            # The param's value is read and written as the fp32 master, the state is fp32, and the
            # model's param is written once more (its own size), as the grad is read (its size).
            return ((values - 1) * 4 + 2 * size) * self.numel
        return values * size * self.numel

    @property
    def state_bytes(self) -> int:
        """Bytes of every tensor in the optimizer's state (step counts and fp32 masters included)."""
        return state_bytes(self.optimizer)


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    seen: set[int] = set()
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value) and id(value) not in seen:
                seen.add(id(value))
                total += value.numel() * value.element_size()
    return total


def make_grads(
    workload: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
) -> list[torch.Tensor]:
    """The workload's fixed random grads. No implementation writes its grads, so the cases of one
    measurement can share them (a GPT-2 list is 0.5 GB of fp32 grads)."""
    generator = torch.Generator().manual_seed(seed + 1)
    shapes = shape_lists.WORKLOADS[workload]()
    return [(torch.randn(shape, generator=generator, dtype=dtype) * 1e-3).to(device) for shape in shapes]


def compiled_step(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """optimizer.step under torch.compile, as the tutorial writes it. Dynamo's caches are reset
    first: the steps of every compiled case share one code object, whose recompile limit would
    otherwise be reached after a few cases and leave the rest running eagerly unnoticed."""
    torch._dynamo.reset()

    @torch.compile(fullgraph=False)
    def step() -> None:
        optimizer.step()

    return step


def without_recompiles(step: Callable[[], None]) -> Callable[[], None]:
    """A compiled step that raises rather than compile again (or fall back to eager) once timed."""

    def timed() -> None:
        with torch.compiler.set_stance("fail_on_recompile"):
            step()

    return timed


def build_case(
    rule: str,
    implementation: str,
    workload: str,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    grads: list[torch.Tensor] | None = None,
) -> Case:
    """Params of the workload's shapes with fixed random grads (`grads`, or make_grads'), the
    optimizer, and its first step taken (so state exists and the timed steps are all steady-state);
    a compiled peer is compiled and warmed up too."""
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    shapes = shape_lists.WORKLOADS[workload]()
    if grads is None:
        grads = make_grads(workload, device, dtype, seed)
    params = []
    for shape, grad in zip(shapes, grads, strict=True):
        p = torch.nn.Parameter(torch.randn(shape, generator=generator, dtype=dtype).to(device))
        p.grad = grad
        params.append(p)
    if implementation == MASTER_WEIGHTS:
        if dtype not in LOW_PRECISION:
            raise ValueError(f"{MASTER_WEIGHTS} is for bfloat16/float16 params, not {dtype}")
        optimizer = _MASTER_WEIGHTS_FACTORIES[rule](params)
    else:
        optimizer = IMPLEMENTATIONS[rule][implementation](params)
    step, steps = optimizer.step, 1
    if implementation in COMPILED:
        step, steps = compiled_step(optimizer), COMPILE_WARMUP_STEPS
    for _ in range(steps):
        step()
    if implementation in COMPILED:
        step = without_recompiles(step)
    return Case(
        rule,
        implementation,
        workload,
        device,
        dtype,
        shape_lists.numel(shapes),
        step,
        optimizer,
        params,
        steps,
    )
