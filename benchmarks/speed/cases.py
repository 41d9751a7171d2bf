"""The one setup factory of the speed benchmark: pytest-benchmark and the CLI both build their cases here.

A case is one implementation of a rule (benchmarks.speed.rules: ours and its peers) stepping one
workload (a list of parameter shapes) on one device. Where the peers are measured:

- torch-forloop and bitsandbytes only on the workloads of LOOP_WORKLOADS.
- torch-compiled is compiled and warmed up before it is timed, and only on the flat workloads of
  COMPILED_WORKLOADS: compile time grows with the number of tensors (a list of 512 small tensors
  took 199 s to compile on a 2-core Xeon, ResNet-50's 161 tensors 50 s per rule on a 2-core EPYC).
- Another package's peer only where its package is installed (and deepspeed on the CPU only).

A peer whose package is not installed, or that fails to build, is left out of a run with the reason
in each row's `left_out` column.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch

from optimizers.reference import LOW_PRECISION

from . import shapes as shape_lists
from .rules import PACKAGE_PEERS, RULES

COMPILED = ("torch-compiled",)
"""Implementations whose step runs under torch.compile."""

COMPILED_WORKLOADS = ("1M", "16M", "64M", "256M")
"""Workloads the compiled peers are measured on: compiling took 16 s for ResNet-18's 62 tensors, 50 s for
ResNet-50's 161 and 46 s for GPT-2's 148, per rule (2-core EPYC), against 4 s for one flat tensor."""
LOOP_PEERS = ("torch-forloop", "bitsandbytes")
"""Peers that run torch ops tensor by tensor in Python (bitsandbytes' CPU backend too): never the best
peer (torch-fused or torch-foreach is, on every workload), and the slowest by far on many tensors."""
LOOP_WORKLOADS = ("1M", "16M")
"""Workloads the loop peers are measured on."""

COMPILE_WARMUP_STEPS = 3
"""Steps of a compiled peer before it is timed: the first compiles, and the step after the lazy
state initialization may compile once more."""

# Ours with fp32 master weights, for bf16/fp16 params only (a no-op on fp32 params).
MASTER_WEIGHTS = "ours-master"


def is_ours(implementation: str) -> bool:
    return implementation.startswith("ours")


def implementations_of(rule: str, dtype: torch.dtype = torch.float32) -> list[str]:
    """Every implementation of a rule for params of dtype (with ours-master for bf16/fp16)."""
    return list(RULES[rule].implementations) + ([MASTER_WEIGHTS] if dtype in LOW_PRECISION else [])


def left_out_reason(implementation: str, workload: str, device: str | torch.device = "cpu") -> str | None:
    """Why an implementation is not measured on this workload and device, or None when it is."""
    peer = PACKAGE_PEERS.get(implementation)  # another package's optimizer, or None
    if peer is not None and peer.cpu_only and torch.device(device).type != "cpu":  # installed or not
        return f"{implementation} runs on the CPU only"
    if peer is not None and importlib.util.find_spec(peer.package) is None:
        return f"{implementation} is not installed"
    if implementation in LOOP_PEERS and workload not in LOOP_WORKLOADS:
        return "a Python loop over the params, never the best peer: measured on " + " ".join(LOOP_WORKLOADS)
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
        values, size = RULES[self.rule].values_moved, torch.finfo(self.dtype).bits // 8
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


def _fixed_random(workload: str, device, dtype: torch.dtype, seed: int, scale: float) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shapes = shape_lists.WORKLOADS[workload]()
    return [(torch.randn(shape, generator=generator, dtype=dtype) * scale).to(device) for shape in shapes]


def make_grads(
    workload: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
) -> list[torch.Tensor]:
    """The workload's fixed random grads. No implementation writes its grads, so the cases of one
    measurement can share them (a GPT-2 list is 0.5 GB of fp32 grads)."""
    return _fixed_random(workload, device, dtype, seed + 1, 1e-3)


def make_params(
    workload: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
) -> list[torch.Tensor]:
    """The workload's fixed random initial param values, which each case of a measurement copies
    (drawing them again for every case took 9 s of a GPT-2 measurement)."""
    return _fixed_random(workload, device, dtype, seed, 1.0)


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
    initial: list[torch.Tensor] | None = None,
) -> Case:
    """Params copied from fixed random values (`initial`, or make_params') with fixed random grads
    (`grads`, or make_grads'), the optimizer, and its first step taken (so state exists and the timed
    steps are all steady-state); a compiled peer is compiled and warmed up too."""
    device = torch.device(device)
    shapes = shape_lists.WORKLOADS[workload]()
    if grads is None:
        grads = make_grads(workload, device, dtype, seed)
    if initial is None:
        initial = make_params(workload, device, dtype, seed)
    params = []
    for value, grad in zip(initial, grads, strict=True):
        p = torch.nn.Parameter(value.clone())
        p.grad = grad
        params.append(p)
    if implementation == MASTER_WEIGHTS:
        if dtype not in LOW_PRECISION:
            raise ValueError(f"{MASTER_WEIGHTS} is for bfloat16/float16 params, not {dtype}")
        optimizer = RULES[rule].build_ours(params, master_weights=True)
    else:
        optimizer = RULES[rule].implementations[implementation](params)
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
