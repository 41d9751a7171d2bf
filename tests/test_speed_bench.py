"""The speed benchmark's bookkeeping: workload shapes, bytes per step, and one tiny run end to end.
(Speed itself is measured by the benchmark, never asserted in a test.)"""

import pandas as pd
import pytest
import torch

from benchmarks.speed import cases, run, shapes


def test_resnet_shapes_match_torchvision_counts():
    # Published parameter counts of torchvision's resnet18 / resnet50.
    assert (len(shapes.resnet18()), shapes.numel(shapes.resnet18())) == (62, 11_689_512)
    assert (len(shapes.resnet50()), shapes.numel(shapes.resnet50())) == (161, 25_557_032)


@pytest.mark.parametrize(
    "rule, bytes_per_element",
    [("adam", 28), ("adamw", 28), ("momentum", 20), ("rmsprop", 20), ("diffgrad", 36)],
)
def test_bytes_per_step_counts_every_read_and_write(rule, bytes_per_element):
    case = cases.build_case(rule, "ours", "1M")
    assert case.bytes_per_step == bytes_per_element * (1 << 20)


# bf16, plain: 2 bytes a value. With master weights: read master 4, grad 2, state 4 each; write
# master 4, state 4 each, param 2 (Adam: 4+2+4+4 + 4+4+4+2; Momentum: 4+2+4 + 4+4+2).
@pytest.mark.parametrize("rule, bytes_per_element, with_master", [("adam", 14, 28), ("momentum", 10, 20)])
def test_bf16_bytes_per_step_with_and_without_master_weights(rule, bytes_per_element, with_master):
    plain = cases.build_case(rule, "ours", "1M", dtype=torch.bfloat16)
    master = cases.build_case(rule, cases.MASTER_WEIGHTS, "1M", dtype=torch.bfloat16)
    assert plain.bytes_per_step == bytes_per_element * (1 << 20)
    assert master.bytes_per_step == with_master * (1 << 20)
    (p,) = master.step.__self__.param_groups[0]["params"]
    assert master.step.__self__.state[p]["master_param"].dtype == torch.float32
    assert cases.MASTER_WEIGHTS in cases.implementations_of(rule, torch.bfloat16)
    assert cases.MASTER_WEIGHTS not in cases.implementations_of(rule, torch.float32)
    with pytest.raises(ValueError, match="bfloat16/float16"):
        cases.build_case(rule, cases.MASTER_WEIGHTS, "1M")


def test_every_implementation_steps_the_same_rule(monkeypatch):
    """All implementations of a rule give the same params after a step (same hyperparameters)."""
    monkeypatch.setitem(shapes.WORKLOADS, "tiny", lambda: [(33,), (4, 5)])
    for rule, impls in cases.IMPLEMENTATIONS.items():
        results = []
        for impl in impls:
            case = cases.build_case(rule, impl, "tiny")
            results.append(
                torch.cat([p.detach().flatten() for p in case.step.__self__.param_groups[0]["params"]])
            )
        # pytorch_optimizer's DiffGrad places eps as sqrt(v) + eps (docs/optimizers.md): with these
        # tiny grads that is a relative difference of a few 1e-4 after one step.
        rtol = 1e-3 if rule == "diffgrad" else 1e-5
        for other in results[1:]:
            torch.testing.assert_close(other, results[0], rtol=rtol, atol=1e-7)


def test_run_speed_rows_and_ratios(monkeypatch):
    monkeypatch.setitem(shapes.WORKLOADS, "tiny", lambda: [(1000,), (10, 10)])
    df = run.run_speed(["adam", "diffgrad"], ["tiny"], rounds=2, per_round=1, progress=False)
    assert set(df.implementation[df.rule == "adam"]) == set(cases.IMPLEMENTATIONS["adam"])
    ours = df[(df.rule == "adam") & (df.implementation == "ours")].iloc[0]
    peers = df[(df.rule == "adam") & (df.implementation != "ours")]
    assert ours.speedup_vs_best_peer == pytest.approx(peers.ms_median.min() / ours.ms_median)
    assert ours.floor_ms == pytest.approx(ours.bytes_per_step / (ours.bandwidth_GBps * 1e6))
    for column in ("git_commit", "torch_version", "threads", "device", "command"):
        assert column in df.columns
    assert isinstance(df, pd.DataFrame) and df.ms_median.gt(0).all()
