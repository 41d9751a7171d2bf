"""The rules the speed benchmark times, each declared once (a SpeedRule): ours, an optimizer of
benchmarks.optimizer_specs; the hyperparameters every implementation of the rule is built with; the
values a step reads and writes per element; and its peers. Adding an optimizer to the speed benchmark
is one SpeedRule here, next to its OptimizerSpec.

The implementations of a rule, in the order of its rows:

- ours: our optimizer with fused=True; ours-master (benchmarks.speed.cases) is the same with
  master_weights=True, for bf16/fp16 params.
- torch-fused, torch-foreach, torch-forloop: torch.optim's class of the rule with fused=True /
  foreach=True / neither (torch-fused only where torch has it).
- torch-compiled: torch.compile of a function that calls a foreach torch.optim optimizer's step,
  as in PyTorch's "Compiling the optimizer" tutorial (benchmarks.speed.cases compiles it).
- Other packages' optimizers (a PackagePeer each), named after the package they import:
  - deepspeed: DeepSpeed's DeepSpeedCPUAdam (Adam, AdamW), the CPU Adam of ZeRO-Offload; its C++
    op builds itself with ninja on first use (about 140 s here, then cached). CPU only.
  - bitsandbytes: bitsandbytes' 32-bit optimizers (momentum SGD, RMSprop, Adam, AdamW). Its CPU
    backend is a sequence of torch ops per tensor, not a fused kernel; its 8-bit optimizers change
    the rule (quantized state) and are not compared.
  - adabelief_pytorch: the AdaBelief authors' package (rectify=False, the rule we implement).
  - pytorch_optimizer: pytorch_optimizer's DiffGrad and AdaBelief. Under torch.compile its DiffGrad
    recompiles at every step (the step count is a Python int of the param group, which the compiled
    code guards on), so after Dynamo's recompile limit it runs eagerly: there is no compiled DiffGrad
    peer.

Tried and left out: intel-extension-for-pytorch (its releases are built for one torch version
each; none for this torch), torchao's low-bit optimizers (CUDA, and a different rule), apex (its
fused optimizers are CUDA only).
"""

from __future__ import annotations

import contextlib
import importlib
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import torch

from benchmarks import optimizer_specs

Factory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]
"""An implementation of a rule: params -> its optimizer over them."""

TORCH_PEERS = ("torch-fused", "torch-foreach", "torch-forloop", "torch-compiled")
_TORCH_OPTIONS = {
    "torch-fused": {"fused": True},
    "torch-foreach": {"foreach": True},
    "torch-forloop": {"foreach": False},
    "torch-compiled": {"foreach": True},  # compiled by benchmarks.speed.cases
}


@contextlib.contextmanager
def _quiet():
    """Keeps what a peer's package prints on import (DeepSpeed its accelerator, bitsandbytes the
    kernels it lacks) off the command's own output."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


@dataclass(frozen=True)
class PackagePeer:
    """An optimizer class of another package, `module.name(params, **hyper, **options)`, imported only
    when built: a peer whose package is not installed is left out of a run, not an error."""

    module: str  # dotted ("deepspeed.ops.adam"); its top-level package names the peer
    name: str
    options: dict = field(default_factory=dict)  # what the rule needs beyond its hyperparameters
    cpu_only: bool = False
    rtol: float = 1e-5  # how closely its steps agree with ours (tests/test_speed_bench.py)

    @property
    def package(self) -> str:
        return self.module.partition(".")[0]

    def build(self, params: list[torch.Tensor], **hyper) -> torch.optim.Optimizer:
        with _quiet():  # adabelief_pytorch also prints from its constructor
            module = importlib.import_module(self.module)
            return getattr(module, self.name)(params, **hyper, **self.options)


def bitsandbytes(name: str) -> PackagePeer:
    """bitsandbytes' 32-bit optimizer `name` (the 8-bit ones quantize the state: another rule)."""
    return PackagePeer("bitsandbytes.optim", name)


def deepspeed_cpu_adam(adamw_mode: bool) -> PackagePeer:
    return PackagePeer("deepspeed.ops.adam", "DeepSpeedCPUAdam", {"adamw_mode": adamw_mode}, cpu_only=True)


@dataclass(frozen=True)
class SpeedRule:
    """One rule of the speed benchmark: every implementation is built with the same `hyper`."""

    name: str  # the `rule` column of the speed CSV
    spec: str  # the OptimizerSpec (optimizer_specs.SPECS) whose class is ours
    hyper: dict  # the constructor arguments of ours and of every peer
    values_moved: int  # values read and written per element by a step after the first (the byte floor)
    target_peer: str  # the peer the rule's target is stated against (speedup_vs_target_peer, README)
    torch_class: type[torch.optim.Optimizer] | None = None  # torch.optim's class of the rule
    torch_fused: bool = False  # whether torch_class has fused=True
    packages: tuple[PackagePeer, ...] = ()
    variant: bool = False  # an option of ours (amsgrad): timed when named, not for its optimizer spec

    @property
    def ours(self) -> type[torch.optim.Optimizer]:
        return optimizer_specs.SPECS[self.spec].cls

    def build_ours(self, params: list[torch.Tensor], master_weights: bool = False) -> torch.optim.Optimizer:
        extra = {"master_weights": True} if master_weights else {}
        return self.ours(params, **self.hyper, fused=True, **extra)

    @cached_property
    def implementations(self) -> dict[str, Factory]:
        """Implementation name -> factory, in the order of the rule's rows: ours, then its peers."""
        factories: dict[str, Factory] = {"ours": self.build_ours}
        if self.torch_class is not None:
            for peer in TORCH_PEERS[0 if self.torch_fused else 1 :]:
                factories[peer] = _torch_factory(self.torch_class, {**self.hyper, **_TORCH_OPTIONS[peer]})
        for peer in self.packages:
            factories[peer.package] = _package_factory(peer, self.hyper)
        return factories


def _torch_factory(cls: type[torch.optim.Optimizer], kwargs: dict) -> Factory:
    return lambda params: cls(params, **kwargs)


def _package_factory(peer: PackagePeer, hyper: dict) -> Factory:
    return lambda params: peer.build(params, **hyper)


# The targets the peers of note are for (the issue): >= 1x torch fused, >= 4x torch's foreach RMSprop,
# >= 5x pytorch_optimizer's DiffGrad.
RULES: dict[str, SpeedRule] = {
    rule.name: rule
    for rule in [
        SpeedRule(
            "momentum",
            spec="Momentum",
            hyper=dict(lr=1e-2, momentum=0.9),
            values_moved=5,  # read p, g, buf; write p, buf
            target_peer="torch-fused",
            torch_class=torch.optim.SGD,
            torch_fused=True,
            packages=(bitsandbytes("SGD"),),
        ),
        SpeedRule(
            "rmsprop",
            spec="RMSProp",
            hyper=dict(lr=1e-2, alpha=0.99),
            values_moved=5,  # read p, g, square_avg; write p, square_avg
            target_peer="torch-foreach",  # torch has no fused RMSprop
            torch_class=torch.optim.RMSprop,
            packages=(bitsandbytes("RMSprop"),),
        ),
        SpeedRule(
            "adam",
            spec="Adam",
            hyper=dict(lr=1e-3),
            values_moved=7,  # read p, g, m, v; write p, m, v
            target_peer="torch-fused",
            torch_class=torch.optim.Adam,
            torch_fused=True,
            packages=(deepspeed_cpu_adam(adamw_mode=False), bitsandbytes("Adam")),
        ),
        SpeedRule(
            "adamw",
            spec="AdamW",
            hyper=dict(lr=1e-3, weight_decay=1e-2),  # torch's and our AdamW default decay, said once here
            values_moved=7,
            target_peer="torch-fused",
            torch_class=torch.optim.AdamW,
            torch_fused=True,
            packages=(deepspeed_cpu_adam(adamw_mode=True), bitsandbytes("AdamW")),
        ),
        SpeedRule(
            "adam-amsgrad",  # DeepSpeed's CPU Adam and bitsandbytes have no amsgrad
            spec="Adam",
            hyper=dict(lr=1e-3, amsgrad=True),
            values_moved=9,  # read p, g, m, v, max_v; write p, m, v, max_v
            target_peer="torch-fused",
            torch_class=torch.optim.Adam,
            torch_fused=True,
            variant=True,
        ),
        SpeedRule(
            "diffgrad",
            spec="DiffGrad",
            hyper=dict(lr=1e-3),
            values_moved=9,  # read p, g, m, v, g_prev; write p, m, v, g_prev
            target_peer="pytorch_optimizer",  # torch has no DiffGrad
            # pytorch_optimizer's DiffGrad places eps as sqrt(v) + eps (docs/optimizers.md): with the
            # tests' tiny grads that is a relative difference of a few 1e-4 after a step.
            packages=(PackagePeer("pytorch_optimizer", "DiffGrad", rtol=1e-3),),
        ),
        SpeedRule(
            "adagrad",
            spec="AdaGrad",
            hyper=dict(lr=1e-2),
            values_moved=5,  # read p, g, sum; write p, sum
            target_peer="torch-fused",
            torch_class=torch.optim.Adagrad,
            torch_fused=True,
        ),
        SpeedRule(
            "radam",
            spec="RAdam",
            hyper=dict(lr=1e-3),
            values_moved=7,  # read p, g, m, v; write p, m, v
            target_peer="torch-foreach",  # torch has no fused RAdam
            torch_class=torch.optim.RAdam,
        ),
        SpeedRule(
            "adabelief",
            spec="AdaBelief",
            hyper=dict(lr=1e-3),  # eps 1e-16, the authors' default, in ours and both peers
            values_moved=7,  # read p, g, m, s; write p, m, s
            target_peer="adabelief_pytorch",  # torch has no AdaBelief
            packages=(
                # The authors' code; in float32 its steps differ from ours by rounding that the tiny
                # belief s amplifies (tests/test_oracle_rules.py): up to a few 1e-3 after 100 steps.
                PackagePeer(
                    "adabelief_pytorch",
                    "AdaBelief",
                    {"rectify": False, "print_change_log": False},
                    rtol=1e-2,
                ),
                PackagePeer("pytorch_optimizer", "AdaBelief", rtol=1e-2),  # rectify=False by default
            ),
        ),
    ]
}

PACKAGE_PEERS: dict[str, PackagePeer] = {p.package: p for rule in RULES.values() for p in rule.packages}
"""The other packages' peers by implementation name (their package), over every rule."""


def rules_timing(optimizer_names: Sequence[str]) -> list[str]:
    """The rules that time these optimizer specs (names as optimizer_specs.get takes them), in their
    order: the rule whose ours or torch.optim class is the spec's class. A variant (adam-amsgrad) is
    timed only when named; a spec whose class no rule times (none today) adds nothing."""
    specs = optimizer_specs.get(optimizer_names)
    return list(dict.fromkeys(rule.name for spec in specs for rule in _rules_of_class(spec.cls)))


def _rules_of_class(cls: type) -> Iterable[SpeedRule]:
    return (r for r in RULES.values() if not r.variant and cls in (r.ours, r.torch_class))
