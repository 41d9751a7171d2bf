"""pytest-benchmark suite of optimizer step time, built by the same setup factory as the CLI:

pytest benchmarks/bench_step.py --benchmark-only --benchmark-columns=median,iqr,ops
"""

import pytest

from benchmarks.speed.cases import IMPLEMENTATIONS, build_case

CASES = [(rule, impl) for rule, impls in IMPLEMENTATIONS.items() for impl in impls]


@pytest.mark.parametrize("workload", ["16M", "resnet18"])
@pytest.mark.parametrize("rule,implementation", CASES, ids=[f"{r}-{i}" for r, i in CASES])
def test_step(benchmark, rule, implementation, workload):
    case = build_case(rule, implementation, workload)
    benchmark.extra_info["bytes_per_step"] = case.bytes_per_step
    benchmark.pedantic(case.step, rounds=20, warmup_rounds=2)
