"""One entry per optimizer class with everything the tests need to know about it, in the spirit of
torch's OptimizerInfo / optim_db: its independent references, its state, what it supports, the
configurations each kind of check runs (each with a readable `desc`), and the inputs it refuses.

The tests parametrize over OPTIM_DB and keep no per-class table of their own; test_optim_db.py checks
that every optimizer in optimizers.__all__ has an entry and that each entry is complete. Adding an
optimizer means adding its entry below (and its oracle to tests/oracles.py if torch.optim lacks the
rule). Configs are written without their class: the entry fills it in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pytest
import torch
from hypothesis import strategies as st
from torch import Tensor

from optimizers import AdaBelief, Adagrad, Adam, AdamW, DiffGrad, Momentum, RAdam, RMSProp
from tests.oracles import AdaBeliefOracle, AdamOracle, AdamWOracle, DiffGradOracle


# -- the pieces of an entry -------------------------------------------------------------------------
@dataclass(frozen=True)
class OptimConfig:
    """One of our optimizers with its hyperparameters. Its reference is torch.optim where torch has
    the rule, else the entry's float64-capable oracle (see `reference`).

    `group1` holds the second param group's overrides (None: one group); `tensor_lr` passes every
    lr as a 0-dim tensor, to ours and to the reference alike."""

    desc: str
    kwargs: dict = field(default_factory=dict)
    group1: dict | None = None
    tensor_lr: bool = False
    cls: type | None = None  # filled in by the entry

    @property
    def reference(self) -> str:
        """Which reference checks this config: torch.optim ("torch") where torch has the rule in both
        groups, else the oracle ("oracle")."""
        twin = info_of(self.cls).torch
        if twin is None or twin.convert(self.kwargs) is None:
            return "oracle"
        return "torch" if self.group1 is None or twin.convert(self.group1) is not None else "oracle"

    def _groups(self, params, kwargs, group1):
        group0 = dict(kwargs)
        group1 = dict(group1) if group1 is not None else None
        if self.tensor_lr:
            for group in (group0, group1):
                if group is not None and "lr" in group:
                    group["lr"] = torch.tensor(float(group["lr"]))
        return split_groups(list(params), group1), group0

    def build(self, params, fused: bool | None):
        groups, group0 = self._groups(params, self.kwargs, self.group1)
        return self.cls(groups, **group0, fused=fused)

    def build_reference(self, params):
        info = info_of(self.cls)
        if self.reference == "torch":
            convert = info.torch.convert
            group1 = None if self.group1 is None else convert(self.group1)
            groups, group0 = self._groups(params, convert(self.kwargs), group1)
            return info.torch.cls(groups, **group0)
        groups, group0 = self._groups(params, self.kwargs, self.group1)
        return info.oracle(groups, **group0)


def split_groups(params: list[Tensor], group1: dict | None) -> list[dict]:
    """The first four params in one group (the constructor's hyperparameters) and the rest in a
    second group with group1's overrides; all in one group when group1 is None."""
    if group1 is None:
        return [dict(params=params)]
    return [dict(params=params[:4]), dict(params=params[4:], **group1)]


@dataclass(frozen=True)
class State:
    """One key of optimizer.state[p]: when a group holds it, and what a step with a zero grad and
    lr 0 does to it: "counts" (the step count), "decays" (scaled: zeros stay zero, the rest nonzero),
    "stays" (unchanged), "replaced" (takes this step's grad) or "moves" (any other change)."""

    zero_grad: str
    when: Callable[[dict], bool] = lambda group: True


@dataclass(frozen=True)
class ErrorInput:
    """Hyperparameters the class refuses, and a fragment of the error's message (matched literally)."""

    kwargs: dict
    match: str
    error: type[Exception] = ValueError


@dataclass(frozen=True)
class Mutant:
    """A neighbouring rule the torch parity check must tell apart from ours: torch's class with
    `change` applied to the config's kwargs, or another torch class (`other`) with the same kwargs."""

    desc: str
    config: OptimConfig
    change: dict = field(default_factory=dict)
    other: type | None = None


@dataclass(frozen=True)
class OracleCheck:
    """The oracle itself in float64 against an independent implementation of (part of) its rule."""

    desc: str
    oracle_kwargs: dict
    reference: type  # torch.optim's (or a peer package's) class
    reference_kwargs: dict | None = None  # None: the oracle's


@dataclass(frozen=True)
class OperatorCall:
    """A valid direct call of the class's operator (tests/test_operators.py): its required keyword
    values, and per state list how its values are made from standard normal ones so that they lie
    where a real run keeps them (squares positive, ...)."""

    kwargs: dict
    values: dict[str, Callable[[Tensor], Tensor]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TorchInfo:
    """torch.optim's class with the same rule, and the checks that compare with it."""

    cls: type[torch.optim.Optimizer]
    convert: Callable[[dict], dict | None] = dict  # our kwargs as cls takes them; None: torch lacks it
    defaults_differ: tuple[str, ...] = ()  # constructor defaults deliberately unlike torch's
    mutants: list[Mutant]
    mixed_dtypes: OptimConfig  # fp32 and fp64 params in one group, each at its precision
    inf_grad: dict  # hyperparameters of the ±inf gradient check (lr is the test's)
    after_model_double: dict | None  # model.double() mid-training; None: torch.optim raises there
    checkpoint_interchange: bool  # state_dicts load across ours and torch's, both ways
    checkpoints: list[OptimConfig]  # the interchange checks ([] without interchange)


@dataclass(frozen=True, kw_only=True)
class OptimizerInfo:
    """An optimizer class and everything the tests need about it. No field has a default: an entry
    says what each check runs (test_optim_db.py refuses an empty one where the check applies)."""

    cls: type[torch.optim.Optimizer]
    torch: TorchInfo | None  # torch.optim's equivalent, or None
    oracle: type[torch.optim.Optimizer] | None  # the rule in tests/oracles.py, or None
    state: dict[str, State]  # every key of optimizer.state[p] but master weights' "master_param"
    supports_amp: bool  # torch.amp.GradScaler hands it grad_scale and found_inf
    supports_master_weights: bool  # master_weights=True keeps fp32 copies of bf16/fp16 params

    parity: list[OptimConfig]  # 100 fp32 steps against the reference (torch, else oracle)
    representatives: tuple[str, ...]  # descs of parity configs for the torch.optim contract checks
    low_precision: list[OptimConfig]  # bf16/fp16 error bound, master weights, CUDA checks
    amp: list[OptimConfig]  # GradScaler: skipped steps, unscaling
    checkpoints: list[OptimConfig]  # state_dict resume, bitwise
    step_plan: list[OptimConfig]  # the plan kept between steps (tests/test_step_plan.py)
    basic: dict  # small checks about no option (torch.compile, multi-chunk tensors)
    fsdp2: dict  # FSDP2 on DTensor params (tests/distributed/fsdp2_worker.py)
    hyperparameters: st.SearchStrategy  # hypothesis: the fused kernel equals the reference path
    invalid: list[ErrorInput]  # refused by the constructor
    invalid_in_group: list[ErrorInput]  # refused in a param group (constructor, add_param_group, load)
    oracle_checks: list[OracleCheck]  # the oracle checked itself
    op_call: OperatorCall | None  # None: another entry with the same operator gives it

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _with_class(getattr(self, f.name), self.cls))

    def state_names(self, group: dict) -> set[str]:
        """The keys of optimizer.state[p] for a param of this group after a step."""
        return {name for name, state in self.state.items() if state.when(group)}

    @property
    def supports_torch_checkpoints(self) -> bool:
        return self.torch is not None and self.torch.checkpoint_interchange


def _with_class(value, cls):
    """value with every OptimConfig in it (in lists and dataclasses) given the class `cls`."""
    if isinstance(value, OptimConfig):
        return dataclasses.replace(value, cls=cls)
    if isinstance(value, list):
        return [_with_class(v, cls) for v in value]
    if isinstance(value, (Mutant, TorchInfo)):
        changes = {f.name: _with_class(getattr(value, f.name), cls) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


# -- shared pieces of the entries --------------------------------------------------------------------
NAN = math.nan


def _has(name: str) -> Callable[[dict], bool]:
    return lambda group: bool(group[name])


def _positive(t: Tensor) -> Tensor:
    return t.abs() + 0.5  # a mean of squares


def _torch_adam(kwargs: dict) -> dict | None:
    """torch.optim.Adam(W) has only the bias-corrected rule."""
    if not kwargs.get("bias_correction", True):
        return None
    return {k: v for k, v in kwargs.items() if k != "bias_correction"}


# Hypothesis building blocks (tests/test_properties.py).
unit = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99]), st.floats(0.0, 0.99))
# The betas and alphas people use (0.99, 0.999, 0.9999) besides arbitrary ones.
near_one = st.one_of(st.sampled_from([0.99, 0.999, 0.9999]), st.floats(0.5, 0.9999))
common = dict(lr=st.floats(1e-4, 0.1), weight_decay=st.sampled_from([0.0, 1e-3, 0.1]), maximize=st.booleans())
adam_like = dict(common, betas=st.tuples(unit, near_one), eps=st.sampled_from([1e-8, 1e-6, 1e-3]))


@st.composite
def momentum_kwargs(draw):
    kwargs = draw(
        st.fixed_dictionaries(
            dict(common, momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]), nesterov=st.booleans())
        )
    )
    if kwargs["nesterov"] and kwargs["momentum"] > 0:
        kwargs["dampening"] = 0.0
    else:
        kwargs["nesterov"] = False
        kwargs["dampening"] = draw(st.floats(0.0, 1.0))
    return kwargs


# -- the entries ------------------------------------------------------------------------------------
MOMENTUM = OptimizerInfo(
    cls=Momentum,
    torch=TorchInfo(
        cls=torch.optim.SGD,
        defaults_differ=("momentum",),  # ours defaults to 0.9, SGD to plain gradient descent
        mutants=[
            Mutant(
                "nesterov vs heavy ball",
                OptimConfig("nesterov", dict(lr=0.01, momentum=0.9, nesterov=True)),
                dict(nesterov=False),
            ),
            Mutant(
                "dampening 0.5 vs 0.45",
                OptimConfig("dampening", dict(lr=0.01, momentum=0.9, dampening=0.5)),
                dict(dampening=0.45),
            ),
        ],
        mixed_dtypes=OptimConfig("heavy ball, weight_decay", dict(lr=0.01, momentum=0.9, weight_decay=0.1)),
        inf_grad=dict(momentum=0.9),
        after_model_double=dict(lr=0.01, momentum=0.5),
        checkpoint_interchange=True,
        checkpoints=[
            OptimConfig("heavy ball, dampening", dict(lr=0.01, momentum=0.9, dampening=0.1)),
            OptimConfig(
                "nesterov, weight_decay", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.01)
            ),
        ],
    ),
    oracle=None,
    state={"momentum_buffer": State("decays", when=lambda group: group["momentum"] != 0)},
    supports_amp=True,
    supports_master_weights=True,
    parity=[
        OptimConfig("plain SGD (momentum=0)", dict(lr=0.05, momentum=0.0), group1=dict(lr=0.02)),
        OptimConfig(
            "plain SGD, weight_decay, maximize",
            dict(lr=0.05, momentum=0.0, weight_decay=0.1, maximize=True),
            group1=dict(weight_decay=0.0),
        ),
        OptimConfig("heavy ball", dict(lr=0.01, momentum=0.9), group1=dict(lr=0.03, momentum=0.5)),
        OptimConfig(
            "dampening=momentum (EMA form)",
            dict(lr=0.05, momentum=0.9, dampening=0.9),
            group1=dict(dampening=0.0),
        ),
        OptimConfig(
            "dampening 0.3, weight_decay, maximize",
            dict(lr=0.01, momentum=0.8, dampening=0.3, weight_decay=0.05, maximize=True),
            group1=dict(momentum=0.0),
        ),
        OptimConfig("nesterov", dict(lr=0.01, momentum=0.9, nesterov=True), group1=dict(momentum=0.7)),
        OptimConfig(
            "nesterov, weight_decay, maximize, tensor lr",
            dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True),
            group1=dict(lr=0.002),
            tensor_lr=True,
        ),
        OptimConfig(
            "heavy ball, tensor lr", dict(lr=0.01, momentum=0.9), group1=dict(lr=0.005), tensor_lr=True
        ),
    ],
    representatives=("heavy ball", "heavy ball, tensor lr"),
    low_precision=[
        OptimConfig("nesterov, weight_decay", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
        OptimConfig("dampening 0.5", dict(lr=0.05, momentum=0.9, dampening=0.5)),
    ],
    amp=[
        OptimConfig("heavy ball", dict(lr=0.01, momentum=0.9)),
        OptimConfig("dampening 0.5", dict(lr=0.01, momentum=0.9, dampening=0.5)),
        OptimConfig("plain SGD, weight_decay", dict(lr=0.01, momentum=0.0, weight_decay=0.1)),
    ],
    checkpoints=[
        OptimConfig(
            "dampening 0.2, second group plain SGD",
            dict(lr=0.01, momentum=0.9, dampening=0.2),
            group1=dict(momentum=0.0),
        ),
    ],
    step_plan=[
        OptimConfig("momentum 0.9", dict(lr=1e-2, momentum=0.9)),
        OptimConfig("plain SGD (momentum 0)", dict(lr=1e-2, momentum=0.0)),
    ],
    basic=dict(lr=0.01, momentum=0.9),
    fsdp2=dict(lr=0.05, momentum=0.9, nesterov=True),
    hyperparameters=momentum_kwargs(),
    invalid=[
        ErrorInput(dict(lr=-0.1), "Invalid learning rate: -0.1"),
        ErrorInput(dict(lr=NAN), "Invalid learning rate: nan"),
        ErrorInput(dict(lr=math.inf), "Invalid learning rate: inf"),
        ErrorInput(dict(lr=torch.tensor([0.1, 0.2])), "(2,)"),
        ErrorInput(dict(momentum=NAN), "Invalid momentum: nan"),
        ErrorInput(dict(momentum=-0.5), "Invalid momentum: -0.5"),
        ErrorInput(dict(dampening=NAN), "Invalid dampening: nan"),
        ErrorInput(dict(weight_decay=-1e-4), "Invalid weight_decay: -0.0001"),
        ErrorInput(dict(momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
        ErrorInput(dict(momentum=0.0, nesterov=True), "momentum=0.0"),
        ErrorInput(dict(nesterov="yes"), "Invalid nesterov: 'yes'"),
        ErrorInput(dict(fused="yes"), "Invalid fused: 'yes'"),
    ],
    invalid_in_group=[
        ErrorInput({"momentum": -0.5}, "momentum"),
        ErrorInput({"nesterov": True, "dampening": 0.1}, "Nesterov"),
    ],
    oracle_checks=[],
    op_call=OperatorCall(
        dict(
            lr=0.1,
            momentum=0.9,
            dampening=0.0,
            nesterov=False,
            weight_decay=0.0,
            maximize=False,
            first_step=False,
        )
    ),
)

RMSPROP = OptimizerInfo(
    cls=RMSProp,
    torch=TorchInfo(
        cls=torch.optim.RMSprop,
        mutants=[
            Mutant(
                "centered vs not", OptimConfig("centered", dict(lr=0.01, centered=True)), dict(centered=False)
            )
        ],
        mixed_dtypes=OptimConfig("centered, momentum", dict(lr=0.01, centered=True, momentum=0.5)),
        inf_grad=dict(centered=True),
        after_model_double=dict(lr=0.01, momentum=0.5),
        checkpoint_interchange=True,
        checkpoints=[OptimConfig("centered, momentum", dict(lr=0.01, centered=True, momentum=0.5))],
    ),
    oracle=None,
    state={
        "step": State("counts"),
        "square_avg": State("decays"),
        "grad_avg": State("decays", when=_has("centered")),
        "momentum_buffer": State("decays", when=lambda group: group["momentum"] > 0),
    },
    supports_amp=True,
    supports_master_weights=True,
    parity=[
        OptimConfig("defaults", dict(lr=0.01), group1=dict(lr=0.003)),
        OptimConfig("centered", dict(lr=0.01, centered=True), group1=dict(alpha=0.9)),
        OptimConfig("momentum", dict(lr=0.003, momentum=0.9), group1=dict(momentum=0.0)),
        OptimConfig(
            "centered, momentum", dict(lr=0.003, momentum=0.5, centered=True), group1=dict(centered=False)
        ),
        OptimConfig("alpha 0.999", dict(lr=0.01, alpha=0.999), group1=dict(lr=0.001)),
        OptimConfig(
            "weight_decay, maximize, alpha 0.9",
            dict(lr=0.01, alpha=0.9, weight_decay=0.1, maximize=True),
            group1=dict(eps=1e-4),
        ),
        OptimConfig(
            "centered, momentum, weight_decay, maximize, tensor lr",
            dict(lr=0.003, momentum=0.9, centered=True, weight_decay=0.05, maximize=True),
            group1=dict(lr=0.001, weight_decay=0.0),
            tensor_lr=True,
        ),
    ],
    representatives=("centered, momentum",),
    low_precision=[OptimConfig("centered, momentum", dict(lr=0.01, momentum=0.5, centered=True))],
    amp=[
        OptimConfig(
            "centered, momentum, weight_decay", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1)
        ),
    ],
    checkpoints=[
        OptimConfig("centered, momentum", dict(lr=0.01, centered=True, momentum=0.5), group1=dict(lr=0.001)),
    ],
    step_plan=[OptimConfig("defaults", dict(lr=1e-2))],
    basic=dict(lr=0.01),
    fsdp2=dict(lr=0.01, centered=True, momentum=0.5),
    # alpha >= 0.5: for alpha -> 0 centered RMSProp's v - gbar^2 is pure cancellation (0 up to rounding).
    hyperparameters=st.fixed_dictionaries(
        dict(
            common,
            alpha=near_one,
            eps=st.sampled_from([1e-8, 1e-3]),
            momentum=st.sampled_from([0.0, 0.9]),
            centered=st.booleans(),
        )
    ),
    invalid=[
        ErrorInput(dict(lr=-1.0), "Invalid learning rate: -1.0"),
        ErrorInput(dict(alpha=1.5), "Invalid alpha: 1.5"),
        ErrorInput(dict(alpha=NAN), "Invalid alpha: nan"),
        ErrorInput(dict(eps=-1e-8), "Invalid eps: -1e-08"),
        ErrorInput(dict(momentum=NAN), "Invalid momentum: nan"),
        ErrorInput(dict(weight_decay=NAN), "Invalid weight_decay: nan"),
        ErrorInput(dict(centered=1), "Invalid centered: 1"),
    ],
    invalid_in_group=[
        ErrorInput({"alpha": 1.5}, "alpha"),
        ErrorInput({"centered": "yes"}, "centered"),
    ],
    oracle_checks=[],
    op_call=OperatorCall(
        dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.9, centered=True, maximize=False),
        # grad_avg**2 < square_avg: centered RMSProp stays real.
        values={"square_avgs": _positive, "grad_avgs": lambda t: t.clamp(-2, 2) * 0.3},
    ),
)

_ADAM_STATE = {
    "step": State("counts"),
    "exp_avg": State("decays"),
    "exp_avg_sq": State("decays"),
    "max_exp_avg_sq": State("stays", when=_has("amsgrad")),
}
_ADAM_HYPERPARAMETERS = st.fixed_dictionaries(
    dict(adam_like, amsgrad=st.booleans(), bias_correction=st.booleans())
)

ADAM = OptimizerInfo(
    cls=Adam,
    torch=TorchInfo(
        cls=torch.optim.Adam,
        convert=_torch_adam,
        mutants=[
            Mutant(
                "amsgrad vs not", OptimConfig("amsgrad", dict(lr=0.01, amsgrad=True)), dict(amsgrad=False)
            ),
            Mutant("eps 1e-8 vs 1e-4", OptimConfig("eps", dict(lr=0.01, eps=1e-8)), dict(eps=1e-4)),
        ],
        mixed_dtypes=OptimConfig("amsgrad, weight_decay", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
        inf_grad={},
        after_model_double=None,  # torch.optim.Adam raises on float64 params with float32 state
        checkpoint_interchange=True,
        checkpoints=[
            OptimConfig("amsgrad, weight_decay", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
            OptimConfig("defaults", dict(lr=0.01, betas=(0.8, 0.9))),
        ],
    ),
    oracle=AdamOracle,
    state=_ADAM_STATE,
    supports_amp=True,
    supports_master_weights=True,
    parity=[
        OptimConfig("defaults", dict(lr=0.01), group1=dict(lr=0.001)),
        OptimConfig("amsgrad", dict(lr=0.01, amsgrad=True), group1=dict(betas=(0.8, 0.99))),
        OptimConfig("weight_decay (L2)", dict(lr=0.01, weight_decay=0.1), group1=dict(weight_decay=0.0)),
        OptimConfig(
            "maximize, betas (0.5, 0.9), eps 1e-6",
            dict(lr=0.01, betas=(0.5, 0.9), eps=1e-6, maximize=True),
            group1=dict(maximize=False),
        ),
        OptimConfig(
            "amsgrad, weight_decay, maximize, tensor lr",
            dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True, bias_correction=True),
            group1=dict(lr=0.003, amsgrad=False),
            tensor_lr=True,
        ),
        # Against the oracle: torch.optim has no Adam without bias correction.
        OptimConfig("no bias correction", dict(lr=0.01, bias_correction=False), group1=dict(lr=0.002)),
        OptimConfig(
            "no bias correction, amsgrad",
            dict(lr=0.01, bias_correction=False, amsgrad=True),
            group1=dict(betas=(0.8, 0.99)),
        ),
        OptimConfig(
            "no bias correction, weight_decay, maximize, tensor lr",
            dict(lr=0.01, bias_correction=False, weight_decay=0.1, maximize=True),
            group1=dict(lr=0.003, weight_decay=0.0),
            tensor_lr=True,
        ),
    ],
    representatives=(
        "amsgrad, weight_decay, maximize, tensor lr",
        "no bias correction, weight_decay, maximize, tensor lr",
    ),
    low_precision=[
        OptimConfig("amsgrad, weight_decay", dict(lr=0.02, amsgrad=True, weight_decay=0.01)),
        OptimConfig("no bias correction", dict(lr=0.02, bias_correction=False)),
    ],
    amp=[
        OptimConfig("amsgrad, weight_decay", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
        OptimConfig("no bias correction, maximize", dict(lr=0.01, bias_correction=False, maximize=True)),
    ],
    checkpoints=[
        OptimConfig("amsgrad, tensor lr", dict(lr=0.01, amsgrad=True), group1=dict(lr=0.003), tensor_lr=True),
        OptimConfig("no bias correction", dict(lr=0.01, bias_correction=False), group1=dict(lr=0.001)),
    ],
    step_plan=[OptimConfig("defaults", dict(lr=1e-2))],
    basic=dict(lr=0.01),
    fsdp2=dict(lr=0.01, amsgrad=True),
    hyperparameters=_ADAM_HYPERPARAMETERS,
    invalid=[
        ErrorInput(dict(master_weights=1), "Invalid master_weights: 1"),
        ErrorInput(dict(lr=-1e-3), "Invalid learning rate: -0.001"),
        ErrorInput(dict(lr=torch.tensor(-0.5)), "-0.5"),
        ErrorInput(dict(eps=-1.0), "Invalid eps: -1.0"),
        ErrorInput(dict(eps=NAN), "Invalid eps: nan"),
        ErrorInput(dict(betas=(1.0, 0.999)), "Invalid beta1 (betas[0]): 1.0"),
        ErrorInput(dict(betas=(-0.1, 0.999)), "Invalid beta1 (betas[0]): -0.1"),
        ErrorInput(dict(betas=(0.9, 1.5)), "Invalid beta2 (betas[1]): 1.5"),
        ErrorInput(dict(betas=(0.9, NAN)), "Invalid beta2 (betas[1]): nan"),
        ErrorInput(dict(betas=(0.9, 0.99, 0.9)), "Invalid betas: (0.9, 0.99, 0.9)"),
        ErrorInput(dict(weight_decay=-0.1), "Invalid weight_decay: -0.1"),
        ErrorInput(dict(amsgrad="no"), "Invalid amsgrad: 'no'"),
        ErrorInput(dict(bias_correction=None), "Invalid bias_correction: None"),
    ],
    invalid_in_group=[
        ErrorInput({"lr": float("nan")}, "learning rate"),
        ErrorInput({"betas": (1.0, 0.999)}, "beta1"),
        ErrorInput({"eps": -1.0}, "eps"),
        ErrorInput({"amsgrad": 1}, "amsgrad"),
        ErrorInput({"fused": "no"}, "fused"),
        ErrorInput({"master_weights": None}, "master_weights"),
    ],
    oracle_checks=[
        OracleCheck(
            "as torch.optim.Adam", dict(amsgrad=True, weight_decay=0.1, maximize=True), torch.optim.Adam
        )
    ],
    op_call=OperatorCall(
        dict(
            lr=1e-3,
            beta1=0.9,
            beta2=0.999,
            eps=1e-8,
            weight_decay=0.0,
            decoupled_weight_decay=False,
            amsgrad=True,
            bias_correction=True,
            maximize=False,
        ),
        values={"exp_avg_sqs": _positive, "max_exp_avg_sqs": _positive},
    ),
)

ADAMW = OptimizerInfo(
    cls=AdamW,
    torch=TorchInfo(
        cls=torch.optim.AdamW,
        convert=_torch_adam,
        mutants=[
            Mutant(
                "vs Adam with L2",
                OptimConfig("decoupled", dict(lr=0.01, weight_decay=0.1)),
                other=torch.optim.Adam,
            ),
        ],
        mixed_dtypes=OptimConfig("defaults", dict(lr=0.01)),
        inf_grad={},
        after_model_double=None,  # as torch.optim.Adam
        checkpoint_interchange=True,
        checkpoints=[OptimConfig("amsgrad, weight_decay 0.1", dict(lr=0.01, amsgrad=True, weight_decay=0.1))],
    ),
    oracle=AdamWOracle,
    state=_ADAM_STATE,
    supports_amp=True,
    supports_master_weights=True,
    parity=[
        OptimConfig("defaults (weight_decay 1e-2)", dict(lr=0.01), group1=dict(lr=0.002)),
        OptimConfig("amsgrad", dict(lr=0.01, amsgrad=True), group1=dict(weight_decay=0.5)),
        OptimConfig(
            "weight_decay 0.1, maximize",
            dict(lr=0.01, weight_decay=0.1, maximize=True),
            group1=dict(weight_decay=0.0),
        ),
        OptimConfig(
            "amsgrad, maximize, tensor lr",
            dict(lr=0.01, amsgrad=True, maximize=True),
            group1=dict(lr=0.003, betas=(0.7, 0.9)),
            tensor_lr=True,
        ),
        # Against the oracle.
        OptimConfig(
            "no bias correction",
            dict(lr=0.01, bias_correction=False, weight_decay=0.1),
            group1=dict(weight_decay=0.0),
        ),
        OptimConfig(
            "no bias correction, amsgrad, maximize",
            dict(lr=0.01, bias_correction=False, amsgrad=True, maximize=True),
            group1=dict(lr=0.001),
        ),
    ],
    representatives=("defaults (weight_decay 1e-2)",),
    low_precision=[OptimConfig("defaults", dict(lr=0.02))],
    amp=[OptimConfig("defaults", dict(lr=0.01))],
    checkpoints=[OptimConfig("amsgrad", dict(lr=0.01, amsgrad=True), group1=dict(weight_decay=0.1))],
    step_plan=[OptimConfig("amsgrad", dict(lr=1e-2, amsgrad=True))],
    basic=dict(lr=0.01),
    fsdp2=dict(lr=0.01, weight_decay=0.1),
    hyperparameters=_ADAM_HYPERPARAMETERS,
    invalid=[
        ErrorInput(dict(lr=NAN), "Invalid learning rate: nan"),
        ErrorInput(dict(betas=(0.9, 1.0)), "Invalid beta2 (betas[1]): 1.0"),
        ErrorInput(dict(weight_decay=-0.01), "Invalid weight_decay: -0.01"),
    ],
    invalid_in_group=[ErrorInput({"weight_decay": -0.1}, "weight_decay")],
    oracle_checks=[OracleCheck("as torch.optim.AdamW", dict(amsgrad=True), torch.optim.AdamW)],
    op_call=None,  # Adam's operator
)

DIFFGRAD = OptimizerInfo(
    cls=DiffGrad,
    torch=None,
    oracle=DiffGradOracle,
    state={
        "step": State("counts"),
        "exp_avg": State("decays"),
        "exp_avg_sq": State("decays"),
        "previous_grad": State("replaced"),
    },
    supports_amp=True,
    supports_master_weights=True,
    parity=[
        OptimConfig("defaults", dict(lr=0.01), group1=dict(lr=0.002)),
        OptimConfig("weight_decay", dict(lr=0.01, weight_decay=0.1), group1=dict(weight_decay=0.0)),
        OptimConfig(
            "maximize, betas (0.5, 0.9), eps 1e-6, tensor lr",
            dict(lr=0.01, betas=(0.5, 0.9), eps=1e-6, maximize=True),
            group1=dict(lr=0.003),
            tensor_lr=True,
        ),
    ],
    representatives=("weight_decay",),
    low_precision=[OptimConfig("defaults", dict(lr=0.02))],
    amp=[OptimConfig("weight_decay", dict(lr=0.01, weight_decay=0.1))],
    checkpoints=[OptimConfig("weight_decay", dict(lr=0.01, weight_decay=0.01), group1=dict(lr=0.001))],
    step_plan=[OptimConfig("defaults", dict(lr=1e-2))],
    basic=dict(lr=0.01),
    fsdp2=dict(lr=0.01, weight_decay=0.01),
    hyperparameters=st.fixed_dictionaries(adam_like),
    invalid=[
        ErrorInput(dict(lr=-0.5), "Invalid learning rate: -0.5"),
        ErrorInput(dict(eps=-1e-8), "Invalid eps: -1e-08"),
        ErrorInput(dict(betas=(NAN, 0.999)), "Invalid beta1 (betas[0]): nan"),
        ErrorInput(dict(betas=(0.9, -0.001)), "Invalid beta2 (betas[1]): -0.001"),
        ErrorInput(dict(maximize="true"), "Invalid maximize: 'true'"),
    ],
    invalid_in_group=[ErrorInput({"betas": (0.9, float("nan"))}, "beta2")],
    oracle_checks=[
        OracleCheck(
            "without friction is torch.optim.Adam",
            dict(friction=False, weight_decay=0.1),
            torch.optim.Adam,
            reference_kwargs=dict(weight_decay=0.1),
        ),
    ],
    op_call=OperatorCall(
        dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, maximize=False),
        values={"exp_avg_sqs": _positive},
    ),
)

ADAGRAD = OptimizerInfo(
    cls=Adagrad,
    torch=TorchInfo(
        cls=torch.optim.Adagrad,
        mutants=[
            Mutant(
                "lr_decay 0.01 vs 0",
                OptimConfig("lr_decay", dict(lr=0.05, lr_decay=0.01)),
                dict(lr_decay=0.0),
            ),
            Mutant(
                "initial_accumulator_value 0.1 vs 0.2",
                OptimConfig("initial_accumulator_value", dict(lr=0.05, initial_accumulator_value=0.1)),
                dict(initial_accumulator_value=0.2),
            ),
        ],
        mixed_dtypes=OptimConfig("lr_decay, weight_decay", dict(lr=0.05, lr_decay=0.01, weight_decay=0.1)),
        inf_grad={},
        after_model_double=dict(lr=0.05),
        checkpoint_interchange=True,
        checkpoints=[
            OptimConfig(
                "lr_decay, initial_accumulator_value",
                dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1),
            )
        ],
    ),
    oracle=None,
    state={"step": State("counts"), "sum": State("stays")},
    supports_amp=True,
    supports_master_weights=True,
    parity=[
        OptimConfig("defaults", dict(lr=0.05), group1=dict(lr=0.01)),
        OptimConfig(
            "lr_decay, weight_decay",
            dict(lr=0.05, lr_decay=0.01, weight_decay=0.1),
            group1=dict(weight_decay=0.0),
        ),
        OptimConfig(
            "initial_accumulator_value, eps 1e-6, maximize, tensor lr",
            dict(lr=0.05, initial_accumulator_value=0.1, eps=1e-6, maximize=True),
            group1=dict(lr=0.02, lr_decay=0.1),
            tensor_lr=True,
        ),
    ],
    representatives=("lr_decay, weight_decay",),
    low_precision=[OptimConfig("lr_decay", dict(lr=0.05, lr_decay=0.01))],
    amp=[OptimConfig("weight_decay, maximize", dict(lr=0.05, weight_decay=0.1, maximize=True))],
    checkpoints=[
        OptimConfig("lr_decay, tensor lr", dict(lr=0.05, lr_decay=0.01), group1=dict(lr=0.02), tensor_lr=True)
    ],
    step_plan=[OptimConfig("defaults", dict(lr=5e-2))],
    basic=dict(lr=0.05),
    fsdp2=dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1),
    hyperparameters=st.fixed_dictionaries(
        dict(
            common,
            lr_decay=st.sampled_from([0.0, 0.01, 0.5]),
            initial_accumulator_value=st.sampled_from([0.0, 0.1, 1.0]),
            eps=st.sampled_from([1e-10, 1e-6, 1e-3]),
        )
    ),
    invalid=[
        ErrorInput(dict(lr=-0.01), "Invalid learning rate: -0.01"),
        ErrorInput(dict(lr_decay=-0.1), "Invalid lr_decay: -0.1"),
        ErrorInput(dict(lr_decay=NAN), "Invalid lr_decay: nan"),
        ErrorInput(dict(initial_accumulator_value=-1.0), "Invalid initial_accumulator_value: -1.0"),
        ErrorInput(dict(eps=NAN), "Invalid eps: nan"),
        ErrorInput(dict(weight_decay=-0.5), "Invalid weight_decay: -0.5"),
        ErrorInput(dict(maximize=0), "Invalid maximize: 0"),
    ],
    invalid_in_group=[ErrorInput({"lr_decay": -1.0}, "lr_decay"), ErrorInput({"eps": NAN}, "eps")],
    oracle_checks=[],
    op_call=OperatorCall(
        dict(lr=0.01, lr_decay=0.01, weight_decay=0.0, eps=1e-10, maximize=False),
        values={"state_sums": _positive},
    ),
)

RADAM = OptimizerInfo(
    cls=RAdam,
    torch=TorchInfo(
        cls=torch.optim.RAdam,
        mutants=[
            Mutant(
                "decoupled vs L2 decay",
                OptimConfig("decoupled", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
                dict(decoupled_weight_decay=False),
            ),
            Mutant("vs Adam", OptimConfig("defaults", dict(lr=0.01)), other=torch.optim.Adam),
        ],
        mixed_dtypes=OptimConfig("weight_decay", dict(lr=0.01, weight_decay=0.1)),
        inf_grad={},
        after_model_double=None,  # torch.optim.RAdam raises on float64 params with float32 state
        checkpoint_interchange=True,
        checkpoints=[
            OptimConfig(
                "decoupled weight_decay", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)
            )
        ],
    ),
    oracle=None,
    state={"step": State("counts"), "exp_avg": State("decays"), "exp_avg_sq": State("decays")},
    supports_amp=True,
    supports_master_weights=True,
    parity=[
        OptimConfig("defaults", dict(lr=0.01), group1=dict(lr=0.002)),
        OptimConfig("weight_decay (L2)", dict(lr=0.01, weight_decay=0.1), group1=dict(weight_decay=0.0)),
        OptimConfig(
            "decoupled weight_decay",
            dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
            group1=dict(decoupled_weight_decay=False),
        ),
        OptimConfig(
            "maximize, betas (0.5, 0.9), eps 1e-6, tensor lr",
            dict(lr=0.01, betas=(0.5, 0.9), eps=1e-6, maximize=True),
            group1=dict(lr=0.003, betas=(0.9, 0.99)),
            tensor_lr=True,
        ),
    ],
    representatives=("weight_decay (L2)",),
    low_precision=[
        OptimConfig("decoupled weight_decay", dict(lr=0.02, weight_decay=0.01, decoupled_weight_decay=True))
    ],
    amp=[OptimConfig("weight_decay, maximize", dict(lr=0.01, weight_decay=0.1, maximize=True))],
    checkpoints=[OptimConfig("weight_decay", dict(lr=0.01, weight_decay=0.01), group1=dict(lr=0.001))],
    step_plan=[OptimConfig("defaults", dict(lr=1e-2))],
    basic=dict(lr=0.01),
    fsdp2=dict(lr=0.01, weight_decay=0.01, decoupled_weight_decay=True),
    hyperparameters=st.fixed_dictionaries(dict(adam_like, decoupled_weight_decay=st.booleans())),
    invalid=[
        ErrorInput(dict(lr=NAN), "Invalid learning rate: nan"),
        ErrorInput(dict(betas=(0.9, 1.0)), "Invalid beta2 (betas[1]): 1.0"),
        ErrorInput(dict(eps=-1e-8), "Invalid eps: -1e-08"),
        ErrorInput(dict(weight_decay=-0.01), "Invalid weight_decay: -0.01"),
        ErrorInput(dict(decoupled_weight_decay="yes"), "Invalid decoupled_weight_decay: 'yes'"),
    ],
    invalid_in_group=[ErrorInput({"betas": (1.0, 0.999)}, "beta1")],
    oracle_checks=[],
    op_call=OperatorCall(
        dict(
            lr=1e-3,
            beta1=0.9,
            beta2=0.999,
            eps=1e-8,
            weight_decay=0.0,
            decoupled_weight_decay=False,
            maximize=False,
        ),
        values={"exp_avg_sqs": _positive},
    ),
)


def _authors_adabelief(params, **kwargs):
    """The authors' adabelief-pytorch with rectify=False (the rule docs/optimizers.md writes out)."""
    adabelief_pytorch = pytest.importorskip("adabelief_pytorch")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its change log
        return adabelief_pytorch.AdaBelief(params, rectify=False, print_change_log=False, **kwargs)


ADABELIEF = OptimizerInfo(
    cls=AdaBelief,
    torch=None,
    oracle=AdaBeliefOracle,
    state={
        "step": State("counts"),
        "exp_avg": State("decays"),
        "exp_avg_var": State("moves"),  # eps is added, and m moves it, also with a zero grad
        "max_exp_avg_var": State("moves", when=_has("amsgrad")),
    },
    supports_amp=True,
    supports_master_weights=True,
    parity=[
        OptimConfig("defaults (eps 1e-16)", dict(lr=0.01), group1=dict(lr=0.002)),
        OptimConfig("amsgrad, eps 1e-8", dict(lr=0.01, amsgrad=True, eps=1e-8), group1=dict(amsgrad=False)),
        OptimConfig(
            "weight_decay decoupled and L2",
            dict(lr=0.01, weight_decay=0.1),
            group1=dict(decoupled_weight_decay=False),
        ),
        OptimConfig(
            "maximize, betas (0.5, 0.9), tensor lr",
            dict(lr=0.01, betas=(0.5, 0.9), maximize=True),
            group1=dict(lr=0.003),
            tensor_lr=True,
        ),
    ],
    representatives=("weight_decay decoupled and L2",),
    low_precision=[OptimConfig("amsgrad, eps 1e-8", dict(lr=0.02, amsgrad=True, eps=1e-8))],
    amp=[
        OptimConfig(
            "weight_decay (L2), maximize",
            dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=False, maximize=True),
        )
    ],
    checkpoints=[OptimConfig("amsgrad", dict(lr=0.01, amsgrad=True), group1=dict(lr=0.001))],
    step_plan=[OptimConfig("defaults", dict(lr=1e-2))],
    basic=dict(lr=0.01),
    fsdp2=dict(lr=0.01, amsgrad=True, weight_decay=0.01),
    hyperparameters=st.fixed_dictionaries(
        dict(
            adam_like,
            eps=st.sampled_from([1e-16, 1e-8, 1e-6]),
            amsgrad=st.booleans(),
            decoupled_weight_decay=st.booleans(),
        )
    ),
    invalid=[
        ErrorInput(dict(lr=-1.0), "Invalid learning rate: -1.0"),
        ErrorInput(dict(eps=NAN), "Invalid eps: nan"),
        ErrorInput(dict(betas=(0.9, -0.1)), "Invalid beta2 (betas[1]): -0.1"),
        ErrorInput(dict(amsgrad=None), "Invalid amsgrad: None"),
        ErrorInput(dict(decoupled_weight_decay=1), "Invalid decoupled_weight_decay: 1"),
    ],
    invalid_in_group=[ErrorInput({"weight_decay": -0.1}, "weight_decay")],
    oracle_checks=[
        OracleCheck(
            "as adabelief-pytorch, amsgrad, decoupled decay",
            dict(amsgrad=True, weight_decay=0.1),
            _authors_adabelief,
            reference_kwargs=dict(amsgrad=True, weight_decay=0.1),
        ),
        OracleCheck(
            "as adabelief-pytorch, L2 decay, eps 1e-8",
            dict(weight_decay=0.1, decoupled_weight_decay=False, eps=1e-8),
            _authors_adabelief,
            reference_kwargs=dict(weight_decay=0.1, weight_decouple=False, eps=1e-8),
        ),
    ],
    op_call=OperatorCall(
        dict(
            lr=1e-3,
            beta1=0.9,
            beta2=0.999,
            eps=1e-16,
            weight_decay=0.0,
            decoupled_weight_decay=True,
            amsgrad=True,
            maximize=False,
        ),
        values={"exp_avg_vars": _positive, "max_exp_avg_vars": _positive},
    ),
)

OPTIM_DB: list[OptimizerInfo] = [MOMENTUM, RMSPROP, ADAM, ADAMW, DIFFGRAD, ADAGRAD, RADAM, ADABELIEF]


# -- what the tests read -----------------------------------------------------------------------------
CLASSES = [info.cls for info in OPTIM_DB]
# Every state name of every class: a comparison of two optimizers covers each one either holds.
STATE_NAMES = tuple(dict.fromkeys(name for info in OPTIM_DB for name in info.state))


def info_of(cls: type) -> OptimizerInfo:
    return next(info for info in OPTIM_DB if info.cls is cls)


def configs(kind: str, where: Callable[[OptimizerInfo], bool] = lambda info: True) -> list[OptimConfig]:
    """The configs of one kind (a field name of OptimizerInfo: "parity", "amp", ...) of every entry."""
    return [c for info in OPTIM_DB if where(info) for c in getattr(info, kind)]


def params_for(chosen: Iterable[OptimConfig]):
    """pytest parameters with readable ids ("Adam: amsgrad")."""
    return [pytest.param(c, id=f"{c.cls.__name__}: {c.desc}") for c in chosen]


def with_master_weights(config: OptimConfig) -> OptimConfig:
    """The same configuration with fp32 master weights (for bf16/fp16 params; its reference runs
    in float32)."""
    return dataclasses.replace(config, kwargs=dict(config.kwargs, master_weights=True))


def takes(cls: type, name: str) -> bool:
    """Whether cls's constructor has the hyperparameter `name`."""
    return name in inspect.signature(cls).parameters


def fp16_safe(config: OptimConfig) -> OptimConfig:
    """The config for fp16 checks. fp16 cannot hold eps=1e-8 (it rounds to 0): where v underflows, a
    native fp16 reference divides by zero and its error is inf, which would make an error bound
    vacuous. Classes with an eps use eps=1e-3, which keeps it finite."""
    if not takes(config.cls, "eps"):
        return config
    return dataclasses.replace(config, kwargs=dict(config.kwargs, eps=1e-3))


def operator_call(name: str) -> OperatorCall:
    """The valid call of operator `name` that its entry gives."""
    return next(info.op_call for info in OPTIM_DB if info.cls.op_name == name and info.op_call is not None)
