"""One CNN training run with the package's optimizers: it learns (far above chance), it is deterministic,
and it records what the benchmark reports; the model fits each dataset's input; the lr protocol."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from benchmarks import optimizer_specs
from benchmarks.cnn import load_dataset, lr_grid, select_lr, train_run
from benchmarks.cnn.model import build_model
from benchmarks.cnn.train import EPOCH_COLUMNS


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


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
    assert records.eval_accuracy.iloc[-1] > 0.9  # chance is 0.1
    assert records.train_loss.iloc[-1] < records.train_loss.iloc[0]
    steps_per_epoch = -(-len(digits.train_y) // 32)
    assert records.steps.tolist() == [steps_per_epoch * e for e in (1, 2, 3)]
    assert (records.step_seconds > 0).all() and (records.step_seconds < records.train_seconds).all()
    assert records.elapsed_seconds.iloc[-1] == pytest.approx(records.train_seconds.sum())


def test_same_seed_same_run(digits):
    spec = optimizer_specs.SPECS["DiffGrad"]
    runs = [train_run(spec, 1e-2, digits, seed=s, epochs=1, batch_size=64) for s in (5, 5, 6)]
    metrics = [[(r["train_loss"], r["eval_loss"], r["eval_accuracy"]) for r in run.records] for run in runs]
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


def test_lr_grid_is_log_spaced_around_typical_lr():
    specs = optimizer_specs.SPECS
    assert lr_grid(specs["SGD"]) == [0.01, 0.0316, 0.1, 0.316, 1.0]
    assert lr_grid(specs["Adam"]) == [0.000316, 0.001, 0.00316, 0.01, 0.0316]
    assert lr_grid(specs["Adam"], 3) == [0.001, 0.00316, 0.01]
    assert lr_grid(specs["Momentum"]) == lr_grid(specs["torch Momentum"])


def test_select_lr_prefers_loss_then_accuracy_then_smaller_lr():
    rows = []
    for opt, lr, acc, loss in [
        ("A", 0.1, 1.00, 0.3),
        ("A", 0.01, 0.95, 0.2),  # lowest loss
        ("A", 0.001, 1.00, 0.25),
        ("B", 0.1, 0.10, float("nan")),  # diverged: NaN loss ranks last
        ("B", 0.03, 0.95, 0.2),
        ("B", 0.01, 0.97, 0.2),  # equal loss: the better accuracy
        ("C", 0.1, 0.95, 0.2),
        ("C", 0.01, 0.95, 0.2),  # all equal: the smaller lr
    ]:
        rows += [
            {"optimizer": opt, "lr": lr, "epoch": 1, "eval_accuracy": 0.0, "eval_loss": 9.0},
            {"optimizer": opt, "lr": lr, "epoch": 2, "eval_accuracy": acc, "eval_loss": loss},
        ]
    assert select_lr(pd.DataFrame(rows)) == {"A": 0.01, "B": 0.01, "C": 0.01}
