"""One CNN training run with the package's optimizers: it learns (far above chance), it is deterministic,
it follows its lr schedule, a diverged run is recorded as such, and it records what the benchmark reports;
the model fits each dataset's input; the lr search (grid, adaptive points, selection)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from benchmarks import optimizer_specs
from benchmarks.cnn import (
    ImageData,
    load_dataset,
    lr_factor,
    lr_grid,
    lr_scores,
    next_lr,
    select_lr,
    train_run,
)
from benchmarks.cnn.model import build_model
from benchmarks.cnn.selection import at_edge
from benchmarks.cnn.train import EPOCH_COLUMNS


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits").validation_split(0.2)


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("name", ["Adam", "Momentum"])
def test_short_run_beats_chance_by_far(digits, name):
    spec = optimizer_specs.SPECS[name]
    lr = {"Adam": 3e-3, "Momentum": 0.03}[name]
    result = train_run(spec, lr, digits, seed=0, epochs=3, batch_size=32)
    assert type(result.optimizer).__module__.startswith("optimizers.")  # ours, not torch.optim's
    records = pd.DataFrame(result.records)
    assert list(records.columns) == list(EPOCH_COLUMNS)
    assert records.epoch.tolist() == [1, 2, 3]
    assert records.test_accuracy.iloc[-1] > 0.9 and records.val_accuracy.iloc[-1] > 0.9  # chance is 0.1
    assert not records.diverged.any() and (records.lr_now == lr).all()
    assert records.train_loss.iloc[-1] < records.train_loss.iloc[0]
    steps_per_epoch = -(-len(digits.train_y) // 32)
    assert records.steps.tolist() == [steps_per_epoch * e for e in (1, 2, 3)]
    assert (records.step_ms > 0).all() and (records.step_ms / 1e3 < records.train_seconds).all()
    assert records.elapsed_seconds.iloc[-1] == pytest.approx(records.train_seconds.sum())


def test_same_seed_same_run(digits):
    spec = optimizer_specs.SPECS["DiffGrad"]
    runs = [train_run(spec, 1e-2, digits, seed=s, epochs=1, batch_size=64) for s in (5, 5, 6)]
    metrics = [[(r["train_loss"], r["val_loss"], r["test_accuracy"]) for r in run.records] for run in runs]
    assert metrics[0] == metrics[1] and metrics[0] != metrics[2]
    for (n, p), (_, q) in zip(
        runs[0].model.named_parameters(), runs[1].model.named_parameters(), strict=True
    ):
        assert torch.equal(p, q), n


@pytest.mark.parametrize(
    "shape, stages", [((1, 8, 8), 2), ((1, 28, 28), 3), ((3, 32, 32), 3)], ids=["digits", "mnist", "cifar"]
)
def test_model_fits_input(shape, stages):
    model = build_model(shape, 10)
    pools = [m for m in model.features if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == stages
    assert model(torch.zeros(2, *shape)).shape == (2, 10)


def test_mnist1d_model_is_the_papers_convbase():
    """MNIST-1D's ConvBase: conv1d 1->25 (k5), 25->25 (k3), 25->25 (k3), stride 2, padding 1, then
    linear 25*5 -> 10: 125 + 25 + 1875 + 25 + 1875 + 25 + 1250 + 10 = 5,210 parameters, no BN."""
    model = build_model((1, 40), 10)
    assert sum(p.numel() for p in model.parameters()) == 5210
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert model(torch.zeros(3, 1, 40)).shape == (3, 10)


def test_lr_factor_of_each_schedule():
    assert [lr_factor("constant", t, 10) for t in (0, 9)] == [1.0, 1.0]
    # step: x0.1 from step ceil(0.5 * 10) = 5 and again from ceil(0.75 * 10) = 8
    assert [lr_factor("step", t, 10) for t in range(10)] == pytest.approx([1] * 5 + [0.1] * 3 + [0.01] * 2)
    # cosine over 100 steps: 5 warmup steps to 1, then 0.5 (1 + cos(pi (t - 5) / 95))
    assert [lr_factor("cosine", t, 100) for t in (0, 4)] == pytest.approx([0.2, 1.0])
    assert lr_factor("cosine", 5, 100) == pytest.approx(1.0)
    assert lr_factor("cosine", 5 + 95 // 2, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi * 47 / 95)))
    assert lr_factor("cosine", 99, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi * 94 / 95)))
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor("linear", 0, 10)


def test_run_follows_its_schedule(digits):
    spec = optimizer_specs.SPECS["Adam"]
    result = train_run(spec, 1e-2, digits, seed=0, epochs=4, batch_size=256, schedule="step")
    records = pd.DataFrame(result.records)
    total = int(records.steps.iloc[-1])
    expected = [1e-2 * lr_factor("step", int(s) - 1, total) for s in records.steps]
    assert records.lr_now.tolist() == pytest.approx(expected)
    assert records.lr_now.iloc[-1] == pytest.approx(1e-4)  # both decays applied by the last step
    assert result.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def _signals(n: int = 200) -> ImageData:
    """Random 1-D signals (MNIST-1D's shape) with random labels: the no-BN Conv1dNet."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 40, generator=g), torch.randint(0, 10, (n,), generator=g)
    return ImageData("signals", x, y, x[:50], y[:50], torch.zeros(1), torch.ones(1), 10, x[:50], y[:50])


def test_diverged_run_is_recorded_and_stops_training():
    spec = optimizer_specs.SPECS["SGD"]
    result = train_run(spec, 1e8, _signals(), seed=0, epochs=3, batch_size=50)
    records = pd.DataFrame(result.records)
    assert records.diverged.all()
    assert records.train_loss.isna().all() and records.val_loss.isna().all()
    assert (records.train_seconds.iloc[1:] == 0).all()  # nothing trained after the divergence
    assert not all(torch.isfinite(p).all() for p in result.model.parameters())
    assert records.test_accuracy.nunique() == 1 and records.test_accuracy.iloc[0] <= 0.2


def test_lr_grid_is_log_spaced_around_typical_lr():
    specs = optimizer_specs.SPECS
    assert lr_grid(specs["SGD"]) == [0.01, 0.0316, 0.1, 0.316, 1.0]
    assert lr_grid(specs["Adam"]) == [0.000316, 0.001, 0.00316, 0.01, 0.0316]
    assert lr_grid(specs["Adam"], 3) == [0.001, 0.00316, 0.01]
    assert lr_grid(specs["Momentum"]) == lr_grid(specs["torch Momentum"])


def test_next_lr_extends_an_edge_else_refines_toward_the_better_neighbour():
    grid = [0.01, 0.0316, 0.1]
    assert next_lr(dict(zip(grid, [3.0, 2.0, 1.0]))) == 0.316  # best at the top: half a decade up
    assert next_lr(dict(zip(grid, [1.0, 2.0, 3.0]))) == 0.00316
    assert next_lr(dict(zip(grid, [3.0, 1.0, 2.0]))) == 0.0562  # a quarter decade toward 0.1
    assert next_lr(dict(zip(grid, [2.0, 1.0, 3.0]))) == 0.0178  # toward 0.01
    # the quarter-decade point tried: an eighth decade between the best and it
    assert next_lr({0.01: 3.0, 0.0316: 1.0, 0.0562: 1.5, 0.1: 2.0}) == 0.0422
    tried = {0.01: 3.0, 0.0316: 1.0, 0.1: 2.0}
    for _ in range(5):  # never an lr already tried
        lr = next_lr(tried)
        assert lr not in tried
        tried[lr] = 1.0 + abs(math.log10(lr / 0.03))


def _sweep_rows(entries) -> pd.DataFrame:
    """Sweep rows from (optimizer, lr, seed, [val losses per epoch]), accuracy 0.5."""
    return pd.DataFrame(
        [
            {"optimizer": o, "lr": lr, "seed": seed, "epoch": e + 1, "val_loss": v, "val_accuracy": 0.5}
            for o, lr, seed, losses in entries
            for e, v in enumerate(losses)
        ]
    )


def test_selection_scores_the_last_epochs_mean_over_seeds():
    nan = float("nan")
    sweep = _sweep_rows(
        [
            ("A", 0.1, 0, [9, 0.1, 0.5]),  # last 2 epochs: 0.3
            ("A", 0.1, 1, [9, 0.3, 0.5]),  # 0.4 -> lr score 0.35
            ("A", 0.01, 0, [0.1, 0.4, 0.4]),  # 0.4 (the first epoch is outside the window)
            ("A", 0.01, 1, [0.1, 0.4, 0.4]),
            ("B", 0.1, 0, [0.2, 0.2, 0.2]),
            ("B", 0.1, 1, [0.2, nan, 0.2]),  # one seed diverged in the window: +inf for the lr
            ("B", 0.01, 0, [0.9, 0.9, 0.9]),
            ("B", 0.01, 1, [0.9, 0.9, 0.9]),
            ("C", 0.1, 0, [0.5, 0.5, 0.5]),  # a tie: the smaller lr
            ("C", 0.01, 0, [0.5, 0.5, 0.5]),
        ]
    )
    scores = lr_scores(sweep, last_epochs=2)
    a = scores[scores.optimizer == "A"].set_index("lr").score
    assert a[0.1] == pytest.approx(0.35) and a[0.01] == pytest.approx(0.4)
    assert math.isinf(scores[(scores.optimizer == "B") & (scores.lr == 0.1)].score.iloc[0])
    chosen = select_lr(scores)
    assert chosen == {"A": 0.1, "B": 0.01, "C": 0.01}
    assert at_edge(scores, chosen) == {"A": True, "B": True, "C": True}
    assert "test_loss" not in sweep and "test_accuracy" not in sweep  # it needs no test column
