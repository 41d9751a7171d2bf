"""pytest-benchmark suite of optimizer step time, built by the same setup factory as the CLI:

pytest benchmarks/bench_step.py --benchmark-only --benchmark-columns=median,iqr,ops

A peer that benchmarks.speed.cases leaves out of a workload (not installed, or compiled on a
workload of thousands of tensors) is skipped with the reason.
"""

import pytest

from benchmarks.speed.cases import build_case, left_out_reason
from benchmarks.speed.rules import RULES

CASES = [(rule.name, impl) for rule in RULES.values() for impl in rule.implementations]


@pytest.mark.parametrize("workload", ["16M", "resnet18", "many-small", "overhead"])
@pytest.mark.parametrize("rule,implementation", CASES, ids=[f"{r}-{i}" for r, i in CASES])
def test_step(benchmark, rule, implementation, workload):
    reason = left_out_reason(implementation, workload)
    if reason is not None:
        pytest.skip(reason)
    case = build_case(rule, implementation, workload)
    benchmark.extra_info["bytes_per_step"] = case.bytes_per_step
    benchmark.extra_info["tensors"] = case.tensors
    benchmark.extra_info["state_bytes"] = case.state_bytes
    benchmark.pedantic(case.step, rounds=20, warmup_rounds=2)
