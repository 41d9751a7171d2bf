"""tests/optim_db.py itself: every optimizer the package exports has an entry, and each entry is
complete and true to its class, so that no optimizer can be left out of a check by omission."""

from __future__ import annotations

import pathlib
import types

import pytest
import torch

import optimizers
from tests.helpers import make_params, run_lockstep
from tests.optim_db import OPTIM_DB, OptimizerInfo, info_of, params_for, takes

INFOS = [pytest.param(info, id=info.cls.__name__) for info in OPTIM_DB]


def exported_optimizers(module) -> set[type]:
    """Every torch.optim.Optimizer subclass in module.__all__."""
    exported = (getattr(module, name) for name in module.__all__)
    return {obj for obj in exported if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)}


def entry_mismatch(module, db: list[OptimizerInfo]) -> tuple[set[type], set[type]]:
    """(exported optimizers without an entry, entries whose class the module does not export)."""
    exported, entered = exported_optimizers(module), {info.cls for info in db}
    return exported - entered, entered - exported


def test_every_exported_optimizer_has_exactly_one_entry():
    assert entry_mismatch(optimizers, OPTIM_DB) == (set(), set())
    assert len({info.cls for info in OPTIM_DB}) == len(OPTIM_DB)


def test_the_check_sees_an_optimizer_without_an_entry():
    """A module that exports one optimizer more (or one fewer) than the db holds is caught."""

    class Extra(optimizers.Adam):
        pass

    names = [*optimizers.__all__, "Extra"]
    more = types.SimpleNamespace(
        __all__=names, Extra=Extra, **{n: getattr(optimizers, n) for n in names[:-1]}
    )
    assert entry_mismatch(more, OPTIM_DB) == ({Extra}, set())
    fewer = types.SimpleNamespace(__all__=[n for n in optimizers.__all__ if n != "DiffGrad"])
    for name in fewer.__all__:
        setattr(fewer, name, getattr(optimizers, name))
    assert entry_mismatch(fewer, OPTIM_DB) == (set(), {optimizers.DiffGrad})


@pytest.mark.parametrize("info", INFOS)
def test_entry_has_a_reference_for_each_kind_of_parity(info):
    """At least one independent reference, and parity configs against each one the entry names
    (a config's reference is torch where torch has its rule, else the oracle, which must exist)."""
    assert info.torch is not None or info.oracle is not None
    references = {c.reference for c in info.parity}
    assert ("torch" in references) == (info.torch is not None)
    assert ("oracle" in references) == (info.oracle is not None)
    assert all(c.reference == "torch" or info.oracle is not None for c in _all_configs(info))


@pytest.mark.parametrize("info", INFOS)
def test_entry_declares_what_the_class_supports_and_tests_it(info):
    assert info.supports_amp == getattr(info.cls, "_step_supports_amp_scaling", False)
    assert info.supports_amp == bool(info.amp)
    assert info.supports_master_weights == takes(info.cls, "master_weights")
    if info.torch is not None:
        assert info.torch.checkpoint_interchange == bool(info.torch.checkpoints)
        assert info.torch.mutants, "the torch parity check must be shown to see a neighbouring rule"
    if info.oracle is not None:
        assert info.oracle_checks, "the oracle must itself be checked against an independent implementation"


@pytest.mark.parametrize("info", INFOS)
def test_entry_has_every_kind_of_check(info):
    for kind in ("parity", "low_precision", "checkpoints", "step_plan", "invalid", "invalid_in_group"):
        assert getattr(info, kind), kind
    assert info.representatives and set(info.representatives) <= {c.desc for c in info.parity}
    zero_grad_kinds = {"counts", "decays", "stays", "replaced", "moves"}  # see optim_db.State
    assert {state.zero_grad for state in info.state.values()} <= zero_grad_kinds
    assert info.op_call is not None or any(
        other.op_call is not None and other.cls.op_name == info.cls.op_name for other in OPTIM_DB
    )


@pytest.mark.parametrize("info", INFOS)
def test_configs_belong_to_their_entry_and_have_distinct_descs(info):
    for kind in ("parity", "low_precision", "amp", "checkpoints", "step_plan"):
        descs = [c.desc for c in getattr(info, kind)]
        assert len(set(descs)) == len(descs), (kind, descs)
    assert all(c.cls is info.cls for c in _all_configs(info))
    assert info_of(info.cls) is info


def _all_configs(info: OptimizerInfo) -> list:
    configs = info.parity + info.low_precision + info.amp + info.checkpoints + info.step_plan
    if info.torch is not None:
        configs += [m.config for m in info.torch.mutants] + [info.torch.mixed_dtypes] + info.torch.checkpoints
    return configs


def _state_keys(opt, p) -> set[str]:
    return {k for k, v in opt.state.get(p, {}).items() if v is not None and k != "master_param"}


@pytest.mark.parametrize(
    "config", params_for(c for info in OPTIM_DB for c in info.parity + info.low_precision + info.amp)
)
def test_declared_state_is_the_state_held(config):
    """The entry's `state` (which the dtype and comparison checks rely on) names exactly the keys
    that ours and the reference hold, group by group, after two steps."""
    info = info_of(config.cls)
    params = make_params()
    ours, ref = config.build(params, fused=True), config.build_reference(make_params())
    run_lockstep([ours, ref], 2)
    for group, ref_group in zip(ours.param_groups, ref.param_groups, strict=True):
        declared = info.state_names(group)
        for p, q in zip(group["params"], ref_group["params"], strict=True):
            assert _state_keys(ours, p) == declared
            assert _state_keys(ref, q) == declared


# -- the places outside tests/ that every optimizer needs ----------------------------------------------
ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_optimizer_is_benchmarked():
    """Each exported class is the class of one of our OptimizerSpecs, which every benchmark runs."""
    from benchmarks import optimizer_specs

    ours = {spec.cls for spec in optimizer_specs.SPECS.values() if spec.ours}
    assert exported_optimizers(optimizers) <= ours


def test_every_optimizer_is_documented():
    """Each exported class has a row in the README's API table and a section in docs/optimizers.md."""
    readme = (ROOT / "README.md").read_text()
    headings = [line.lower() for line in (ROOT / "docs" / "optimizers.md").read_text().splitlines()]
    headings = [line for line in headings if line.startswith("## ")]
    for cls in exported_optimizers(optimizers):
        assert f"| `{cls.__name__}` |" in readme, cls
        assert any(line.startswith(f"## {cls.__name__.lower()} ") for line in headings), cls


@pytest.mark.parametrize("op", sorted(optimizers._extension.OPERATORS))
def test_every_operator_has_its_kernels_and_their_checks(op):
    """csrc/cpu/<rule>.cpp and csrc/cuda/<rule>.cu, and the emulated check of its CUDA launch."""
    rule = op.removesuffix("_")
    assert (ROOT / "csrc" / "cpu" / f"{rule}.cpp").is_file()
    assert (ROOT / "csrc" / "cuda" / f"{rule}.cu").is_file()
    emulated = (ROOT / "tests" / "cuda" / "test_kernels_emulated.cpp").read_text()
    assert f"launch_{rule}(" in emulated
