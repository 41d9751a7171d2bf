"""The speed benchmark's bookkeeping: workload shapes, bytes per step, state memory, the speedup
intervals on data with a known answer, the report, and one tiny run end to end.
(Speed itself is measured by the benchmark, never asserted in a test.)"""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks.speed import cases, intervals, report, rules, run, shapes


# -- workloads ---------------------------------------------------------------------------------
def test_resnet_shapes_match_torchvision_counts():
    # Published parameter counts of torchvision's resnet18 / resnet50.
    assert (len(shapes.resnet18()), shapes.numel(shapes.resnet18())) == (62, 11_689_512)
    assert (len(shapes.resnet50()), shapes.numel(shapes.resnet50())) == (161, 25_557_032)


def test_gpt2_small_shapes_match_the_published_count():
    gpt2 = shapes.gpt2_small()
    # GPT-2 small: 124,439,808 parameters without the lm_head (tied to wte), in 148 tensors.
    assert (len(gpt2), shapes.numel(gpt2)) == (148, 124_439_808)
    assert gpt2[:2] == [(50257, 768), (1024, 768)] and gpt2[-2:] == [(768,), (768,)]
    block = gpt2[2:14]
    assert shapes.numel(block) == 7_087_872  # one transformer block
    assert block[2:4] == [(768, 2304), (2304,)] and block[8:12] == [(768, 3072), (3072,), (3072, 768), (768,)]
    assert gpt2[2:-2] == block * 12


def test_many_small_tensors_span_one_to_64k_elements_on_a_log_scale():
    sizes = [n for (n,) in shapes.many_small()]
    assert len(sizes) == 2048 and sizes[0] == 1 and sizes[-1] == 1 << 16
    assert sizes == sorted(sizes) and sum(sizes) == 12_128_896
    assert sizes[1023] in (254, 255, 256)  # the middle of a log scale from 1 to 2**16: 2**8
    assert shapes.tiny_tensors() == [(1,)] * 4096
    assert shapes.numel(shapes.WORKLOADS["overhead"]()) == 4096


# -- bytes per step and state memory ---------------------------------------------------------------
def _case(rule, implementation, workload, dtype=torch.float32):
    """A Case for its byte counts alone (nothing built)."""
    n = shapes.numel(shapes.WORKLOADS[workload]())
    return cases.Case(rule, implementation, workload, torch.device("cpu"), dtype, n, None, None, [], 0)


@pytest.mark.parametrize(
    "rule, bytes_per_element",
    [("adam", 28), ("adamw", 28), ("adam-amsgrad", 36), ("momentum", 20), ("rmsprop", 20), ("diffgrad", 36)],
)
def test_bytes_per_step_counts_every_read_and_write(rule, bytes_per_element):
    case = cases.build_case(rule, "ours", "1M")
    assert case.bytes_per_step == bytes_per_element * (1 << 20)
    assert _case(rule, "ours", "gpt2").bytes_per_step == bytes_per_element * 124_439_808
    assert _case(rule, "ours", "resnet50").bytes_per_step == bytes_per_element * 25_557_032


def test_every_rule_has_its_byte_count_and_its_master_weights():
    # One SpeedRule declares all three (the tables were separate dicts): each is there and usable.
    for rule in rules.RULES.values():
        assert rule.values_moved > 0
        assert cases.MASTER_WEIGHTS in cases.implementations_of(rule.name, torch.bfloat16)
        assert rule.target_peer in rule.implementations and not cases.is_ours(rule.target_peer)


# bf16, plain: 2 bytes a value. With master weights: read master 4, grad 2, state 4 each; write
# master 4, state 4 each, param 2 (Adam: 4+2+4+4 + 4+4+4+2; Momentum: 4+2+4 + 4+4+2).
@pytest.mark.parametrize("rule, bytes_per_element, with_master", [("adam", 14, 28), ("momentum", 10, 20)])
def test_bf16_bytes_per_step_with_and_without_master_weights(rule, bytes_per_element, with_master):
    plain = cases.build_case(rule, "ours", "1M", dtype=torch.bfloat16)
    master = cases.build_case(rule, cases.MASTER_WEIGHTS, "1M", dtype=torch.bfloat16)
    assert plain.bytes_per_step == bytes_per_element * (1 << 20)
    assert master.bytes_per_step == with_master * (1 << 20)
    (p,) = master.params
    assert master.optimizer.state[p]["master_param"].dtype == torch.float32
    assert cases.MASTER_WEIGHTS in cases.implementations_of(rule, torch.bfloat16)
    assert cases.MASTER_WEIGHTS not in cases.implementations_of(rule, torch.float32)
    with pytest.raises(ValueError, match="bfloat16/float16"):
        cases.build_case(rule, cases.MASTER_WEIGHTS, "1M")


# State tensors per element, and the 4-byte float32 step count per tensor (ours and torch alike).
STATE = [
    ("adam", "ours", torch.float32, 8, 4),
    ("adam", "torch-fused", torch.float32, 8, 4),
    ("adam-amsgrad", "ours", torch.float32, 12, 4),
    ("adam-amsgrad", "torch-fused", torch.float32, 12, 4),
    ("momentum", "ours", torch.float32, 4, 0),
    ("momentum", "torch-fused", torch.float32, 4, 0),
    ("rmsprop", "ours", torch.float32, 4, 4),
    ("rmsprop", "torch-foreach", torch.float32, 4, 4),
    ("diffgrad", "ours", torch.float32, 12, 4),
    ("adam", "ours", torch.bfloat16, 4, 4),
    ("adam", "torch-fused", torch.bfloat16, 4, 4),
    ("adam", cases.MASTER_WEIGHTS, torch.bfloat16, 12, 4),  # fp32 master, exp_avg, exp_avg_sq
    ("momentum", cases.MASTER_WEIGHTS, torch.float16, 8, 0),  # fp32 master and buffer
]


@pytest.mark.parametrize("rule, implementation, dtype, per_element, per_tensor", STATE)
def test_state_bytes_are_read_from_the_state_tensors(
    monkeypatch, rule, implementation, dtype, per_element, per_tensor
):
    monkeypatch.setitem(shapes.WORKLOADS, "tiny", lambda: [(1000,), (4, 6)])
    case = cases.build_case(rule, implementation, "tiny", dtype=dtype)
    assert case.state_bytes == per_element * 1024 + per_tensor * 2


# -- the implementations ---------------------------------------------------------------------------
def _stepped_params(case, steps):
    for _ in range(steps - case.steps_taken):
        case.step()
    return torch.cat([p.detach().flatten() for p in case.params])


def test_every_implementation_steps_the_same_rule(monkeypatch):
    """All implementations of a rule give the same params after as many steps (same
    hyperparameters); the compiled peer is tested apart (compiling takes seconds)."""
    monkeypatch.setitem(shapes.WORKLOADS, "tiny", lambda: [(33,), (4, 5)])
    for rule in rules.RULES:
        impls = [i for i in cases.implementations_of(rule) if cases.left_out_reason(i, "tiny") is None]
        assert "ours" in impls and "torch-compiled" not in impls
        built = [cases.build_case(rule, impl, "tiny") for impl in impls]
        results = [_stepped_params(case, 3) for case in built]
        # A package's peer may differ from ours in a detail (its PackagePeer.rtol says why).
        rtol = max([1e-5, *(peer.rtol for peer in rules.RULES[rule].packages)])
        for impl, other in zip(impls[1:], results[1:]):
            torch.testing.assert_close(other, results[0], rtol=rtol, atol=1e-7, msg=f"{rule}: {impl}")


def test_the_compiled_peer_steps_the_same_rule_and_is_compiled(monkeypatch):
    monkeypatch.setitem(shapes.WORKLOADS, "tiny", lambda: [(33,), (4, 5)])
    monkeypatch.setattr(cases, "COMPILED_WORKLOADS", ("tiny",))
    compiled = cases.build_case("adam", "torch-compiled", "tiny")
    eager = cases.build_case("adam", "torch-fused", "tiny")
    assert compiled.steps_taken == cases.COMPILE_WARMUP_STEPS
    torch.testing.assert_close(_stepped_params(compiled, 4), _stepped_params(eager, 4), rtol=1e-5, atol=1e-7)
    # Once timed, a step that would compile again raises instead of running eagerly unnoticed.
    compiled.optimizer.param_groups[0]["lr"] = 0.5  # a float the compiled code guards on
    with pytest.raises(RuntimeError, match="(?i)recompil"):
        compiled.step()


def test_peers_left_out_and_why(monkeypatch):
    assert cases.left_out_reason("torch-compiled", "many-small").startswith("compile time grows")
    assert cases.left_out_reason("torch-compiled", "gpt2").startswith("compile time grows")
    assert cases.left_out_reason("torch-compiled", "16M") is None
    assert cases.left_out_reason("deepspeed", "1M", "cuda") == "deepspeed runs on the CPU only"
    monkeypatch.setattr(cases.importlib.util, "find_spec", lambda name: None)
    assert cases.left_out_reason("deepspeed", "1M") == "deepspeed is not installed"
    assert cases.left_out_reason("bitsandbytes", "1M") == "bitsandbytes is not installed"
    assert cases.left_out_reason("ours", "1M") is None


def test_a_peer_that_fails_to_build_is_left_out_with_the_reason(monkeypatch):
    monkeypatch.setitem(shapes.WORKLOADS, "tiny", lambda: [(100,)])

    def broken(params):
        raise OSError("ninja: build stopped")

    monkeypatch.setitem(rules.RULES["momentum"].implementations, "torch-foreach", broken)
    with pytest.warns(UserWarning, match="torch-foreach left out"):
        rows = run.measure_workload("momentum", "tiny", torch.device("cpu"), ["ours", "torch-foreach"], 2, 1)
    assert [r["implementation"] for r in rows] == ["ours"]
    assert rows[0]["left_out"] == "torch-foreach: failed to build: OSError: ninja: build stopped"


# -- the speedup intervals -------------------------------------------------------------------------
def test_identical_samples_give_a_point_interval_at_one():
    samples = np.array([1.0, 1.2, 0.9, 1.5, 1.1])
    ratio = intervals.speedup(samples, samples)
    assert (ratio.value, ratio.lo, ratio.hi) == (1.0, 1.0, 1.0) and ratio.parity
    assert str(ratio) == "1.00× (1.00–1.00), parity"


def test_a_constant_factor_gives_a_point_interval_at_that_factor():
    ours = np.random.default_rng(1).uniform(1.0, 2.0, size=30)
    ratio = intervals.speedup(ours, 2.5 * ours)
    assert (
        ratio.value == pytest.approx(2.5)
        and ratio.lo == pytest.approx(2.5)
        and ratio.hi == pytest.approx(2.5)
    )
    assert not ratio.parity and str(ratio) == "2.50× (2.50–2.50)"


def test_two_rounds_give_the_exact_bootstrap_distribution():
    # Resampling 2 rounds: peer medians 1, 2, 2, 3 (each pick of rounds equally likely), ours 1:
    # ratios 1 (25%), 2 (50%), 3 (25%); the 2.5th and 97.5th percentiles are 1 and 3.
    ratio = intervals.speedup(np.array([1.0, 1.0]), np.array([1.0, 3.0]), resamples=20000)
    assert ratio.value == 2.0 and (ratio.lo, ratio.hi) == (1.0, 3.0) and ratio.parity


def test_separated_samples_exclude_one_and_overlapping_ones_hold_it():
    rng = np.random.default_rng(0)
    ours = rng.normal(10.0, 0.2, size=30)
    faster = intervals.speedup(ours, rng.normal(15.0, 0.2, size=30))
    assert 1.45 < faster.lo <= faster.value <= faster.hi < 1.55 and not faster.parity
    slower = intervals.speedup(ours, rng.normal(8.0, 0.2, size=30))
    assert slower.hi < 1.0 and not slower.parity
    same = intervals.speedup(ours, rng.normal(10.0, 2.0, size=30))
    assert same.lo < 1.0 < same.hi and same.parity and str(same).endswith(", parity")


def test_the_interval_agrees_with_scipys_paired_percentile_bootstrap():
    """An independent implementation of the same interval: scipy's bootstrap resamples the pairs
    (round r of ours with round r of the peer) and takes the percentiles of the ratio of medians."""
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    drift = rng.uniform(0.8, 1.6, size=40)  # the machine's speed, shared by both sides of a round
    ours = drift * rng.normal(10.0, 0.5, size=40)
    peer = drift * rng.normal(11.0, 1.5, size=40)
    ratio = intervals.speedup(ours, peer, resamples=20000)
    reference = stats.bootstrap(
        (ours, peer),
        lambda a, b: np.median(b) / np.median(a),
        paired=True,
        vectorized=False,
        method="percentile",
        n_resamples=20000,
        confidence_level=0.95,
        random_state=np.random.default_rng(4),
    ).confidence_interval
    assert ratio.value == pytest.approx(np.median(peer) / np.median(ours))
    assert ratio.lo == pytest.approx(reference.low, abs=0.01)
    assert ratio.hi == pytest.approx(reference.high, abs=0.01)
    assert ratio.hi - ratio.lo > 0.05  # a real interval, not a point


def test_a_ratio_without_samples_has_no_interval_and_is_never_parity():
    ratio = intervals.Ratio.without_interval(1.0)
    assert not ratio.has_interval and not ratio.parity and str(ratio) == "1.00× (no samples)"


def test_rounds_are_resampled_whole():
    # Two samples a round: each round's pair goes together, so a round-to-round drift that hits
    # both sides alike leaves the ratio exact.
    ours = intervals.rounds_of(np.array([1.0, 1.0, 4.0, 4.0, 9.0, 9.0]), per_round=2)
    ratio = intervals.speedup(ours, 2 * ours)
    assert ours.shape == (3, 2) and (ratio.lo, ratio.hi) == (2.0, 2.0)
    with pytest.raises(ValueError, match="rounds of 4"):
        intervals.rounds_of(np.ones(6), per_round=4)
    with pytest.raises(ValueError, match="paired rounds"):
        intervals.speedup(np.ones(3), np.ones(4))


def test_samples_survive_the_csv_cell():
    seconds = np.array([0.001234567, 0.5, 2.0])
    np.testing.assert_allclose(
        intervals.decode_samples(intervals.encode_samples(seconds)), seconds * 1e3, rtol=1e-5
    )


# -- a run and its report --------------------------------------------------------------------------
def test_run_speed_rows_and_ratios(monkeypatch):
    monkeypatch.setitem(shapes.WORKLOADS, "tiny", lambda: [(1000,), (10, 10)])
    df = run.run_speed(["adam", "diffgrad"], ["tiny"], rounds=3, per_round=2, progress=False)
    measured = [i for i in rules.RULES["adam"].implementations if cases.left_out_reason(i, "tiny") is None]
    assert set(df.implementation[df.rule == "adam"]) == set(measured)
    ours = df[(df.rule == "adam") & (df.implementation == "ours")].iloc[0]
    peers = df[(df.rule == "adam") & (df.implementation != "ours")]
    best = peers.loc[peers.ms_median.idxmin()]
    assert ours.best_peer == best.implementation
    assert ours.speedup_vs_best_peer == pytest.approx(best.ms_median / ours.ms_median)
    assert ours.speedup_vs_best_peer_lo <= ours.speedup_vs_best_peer <= ours.speedup_vs_best_peer_hi
    assert ours.floor_ms == pytest.approx(ours.bytes_per_step / (ours.bandwidth_GBps * 1e6))
    assert intervals.decode_samples(ours.samples_ms).shape == (6,) and ours.samples == 6
    assert ours.tensors == 2 and ours.state_bytes_per_param == pytest.approx((8 * 1100 + 8) / 1100)
    assert "torch-compiled: compile time grows" in ours.left_out
    for column in ("git_commit", "torch_version", "threads", "device", "command"):
        assert column in df.columns
    assert isinstance(df, pd.DataFrame) and df.ms_median.gt(0).all()


def _row(implementation, samples_ms, rule="adam", workload="16M", **extra):
    samples_ms = np.asarray(samples_ms, dtype=float)
    p20, median, p80 = np.percentile(samples_ms, [20, 50, 80])
    meta = dict(command="optbench speed", git_commit="abc", package_version="0.1.0", torch_version="2.13")
    meta |= dict(
        device="cpu", threads=2, device_type="cpu", dtype="float32", per_round=1, samples=samples_ms.size
    )
    row = dict(rule=rule, implementation=implementation, workload=workload, numel=1 << 24, tensors=1)
    row |= dict(ms_median=median, ms_p20=p20, ms_p80=p80, samples_ms=" ".join(map(str, samples_ms)))
    row |= dict(floor_ms=5.0, pct_of_floor=500 / median, state_bytes_per_param=8.0, left_out="")
    return {**meta, **row, **extra}


def test_report_shows_each_speedup_with_its_interval_and_parity(tmp_path):
    rng = np.random.default_rng(0)
    ours = 10 + rng.normal(0, 0.3, 20)
    rows = [
        _row("ours", ours),
        _row("torch-fused", ours + rng.normal(0, 0.3, 20)),
        _row("torch-foreach", 3 * ours),
        _row("ours", ours, workload="overhead", tensors=4096, numel=4096),
        _row("torch-fused", 2 * ours, workload="overhead", tensors=4096, numel=4096, left_out="deepspeed: x"),
    ]
    csv = report.write_speed_csv(pd.DataFrame(rows), str(tmp_path), "speed_cpu.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the plots' layout applied (nothing collapsed or cut)
        paths = report.write_report(str(csv), str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p in paths] == ["speed_cpu.md", "speed_cpu.png", "speed_cpu_speedup.png"]
    text = open(paths[0]).read()
    fused = next(line for line in text.splitlines() if "| 16M | adam |" in line and "torch-fused" in line)
    assert fused.endswith(", parity |")
    foreach = next(line for line in text.splitlines() if "torch-foreach" in line)
    assert "3.00× (3.00–3.00) |" in foreach
    best = next(
        line for line in text.splitlines() if line.startswith("| 16M | adam |") and line.count("|") == 7
    )
    assert "torch-fused" in best  # the fastest peer
    per_tensor = next(
        line for line in text.splitlines() if "| overhead | 4096 | adam | torch-fused |" in line
    )
    assert f"| {2e3 * np.median(ours) / 4096:.2f} |" in per_tensor and "2.00× (2.00–2.00)" in per_tensor
    assert (
        "| rule | ours | torch-fused | torch-foreach |\n|---|---|---|---|\n| adam | 8.00 | 8.00 | 8.00 |"
        in text
    )
    assert "- deepspeed left out (x): adam on overhead" in text


def test_report_reads_a_csv_without_samples(tmp_path):
    """A table made before the samples were kept still reports, with the ratio alone and no
    interval (not a point interval, which would claim a certainty the table cannot show)."""
    rows = [_row("ours", [10.0, 10.0]), _row("torch-fused", [12.0, 12.0])]
    df = pd.DataFrame(rows).drop(
        columns=["samples_ms", "per_round", "tensors", "state_bytes_per_param", "left_out"]
    )
    report.write_speed_csv(df, str(tmp_path), "speed_cpu.csv")
    (md,) = report.write_report(str(tmp_path / "speed_cpu.csv"), str(tmp_path), plots=False)
    text = open(md).read()
    assert "| 1.20× (no samples) |" in text and "parity" not in text.split("####", 1)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a layout that collapsed: a marker drawn off the axis
        report.speedup_plot(pd.read_csv(tmp_path / "speed_cpu.csv"), str(tmp_path / "speedup.png"))


def test_report_refuses_a_truncated_table(tmp_path):
    """The table is written with its own manifest: cut to a third (rows lost at a row boundary too), the
    report refuses it instead of printing a table of the rows that are left."""
    from benchmarks.result_set import ResultFileError

    rows = [_row(impl, [10.0, 11.0]) for impl in ("ours", "torch-fused", "torch-foreach")]
    csv = report.write_speed_csv(pd.DataFrame(rows), str(tmp_path), "speed_cpu.csv")
    lines = open(csv).read().splitlines(keepends=True)
    open(csv, "w").write("".join(lines[:2]))
    with pytest.raises(ResultFileError, match="truncated"):
        report.write_report(csv, str(tmp_path), plots=False)


def test_forloop_and_64m_left_out_of_the_default_cpu_run():
    """The default CPU run fits `make bench`'s budget: no 64M, and the per-param loop peers only on the
    workloads where it is timed in seconds."""
    assert "64M" not in shapes.DEFAULT_WORKLOADS["cpu"] and "64M" in shapes.WORKLOADS
    assert cases.left_out_reason("torch-forloop", "16M") is None
    assert cases.left_out_reason("torch-forloop", "gpt2").startswith("a Python loop over the params")
    assert "bitsandbytes" in cases.LOOP_PEERS
