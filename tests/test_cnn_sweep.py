"""The CNN protocol end to end on digits (quick): sweep then seeds, the tidy CSV with provenance,
resuming from out_dir/runs/ (only missing runs train again, same rows, none duplicated), the report from
the CSV alone, and the CLI's exit code for missing data."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

from benchmarks.cnn import run_cnn, write_cnn_report
from benchmarks.cnn.__main__ import main
from benchmarks.cnn.sweep import SWEEP_SEED, budget_for
from tests.cnn_files import write_cifar, write_mnist

OPTIMIZERS = ["Adam", "SGD"]
SEEDS = 2
EPOCHS = 2
KEY = ["stage", "optimizer", "lr", "seed", "epoch"]
TIMING = ["train_seconds", "step_seconds", "eval_seconds", "elapsed_seconds"]


def run(out_dir) -> pd.DataFrame:
    return run_cnn(OPTIMIZERS, SEEDS, EPOCHS, "digits", None, str(out_dir), quick=True, progress=False)


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    return run(out), out


def test_protocol_stages(first):
    rows, out = first
    budget = budget_for("digits", quick=True, epochs=EPOCHS)
    sweep, final = rows[rows.stage == "sweep"], rows[rows.stage == "final"]
    assert len(sweep) == len(OPTIMIZERS) * budget.lr_points * budget.sweep_epochs
    assert len(final) == len(OPTIMIZERS) * SEEDS * EPOCHS
    assert set(sweep.seed) == {SWEEP_SEED} and set(final.seed) == set(range(SEEDS))
    assert set(sweep.eval_split) == {"val"} and set(final.eval_split) == {"test"}
    assert (final.groupby("optimizer").lr.nunique() == 1).all()
    for opt in OPTIMIZERS:  # the chosen lr is one the sweep tried
        assert final[final.optimizer == opt].lr.iloc[0] in set(sweep[sweep.optimizer == opt].lr)
    assert not rows.duplicated(KEY).any()
    assert len(os.listdir(out / "runs")) == len(OPTIMIZERS) * (budget.lr_points + SEEDS)
    assert final[final.optimizer == "Adam"].eval_accuracy.max() > 0.9


def test_csv_is_tidy_with_provenance(first):
    rows, out = first
    stored = pd.read_csv(out / "cnn_epochs.csv")
    pd.testing.assert_frame_equal(stored, rows.reset_index(drop=True))
    for column in (
        "command",
        "package_version",
        "torch_version",
        "git_commit",
        "git_dirty",
        "machine",
        "device",
        "threads",
        "dataset",
        "optimizer",
        "hyperparams",
        "lr",
        "seed",
        "epoch",
        "train_loss",
        "eval_loss",
        "eval_accuracy",
        "train_seconds",
        "step_seconds",
        "model",
        "config",
    ):
        assert column in stored.columns and stored[column].notna().all(), column
    assert (stored.threads == 1).all()


def test_rerun_trains_only_missing_runs(first, tmp_path):
    rows, out = first
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    runs_dir = tmp_path / "runs"
    files = sorted(os.listdir(runs_dir))
    gone = [
        next(f for f in files if f.startswith("sweep__sgd")),
        next(f for f in files if f.startswith("final__adam")),
    ]
    for name in gone:
        os.remove(runs_dir / name)
    before = {f: os.stat(runs_dir / f).st_mtime_ns for f in files if f not in gone}

    again = run(tmp_path)
    assert sorted(again.attrs["ran"]) == sorted(gone)
    assert len(again.attrs["loaded"]) == len(files) - len(gone)
    assert sorted(os.listdir(runs_dir)) == files  # no temp files left behind
    assert {f: os.stat(runs_dir / f).st_mtime_ns for f in before} == before
    assert not again.duplicated(KEY).any() and len(again) == len(rows)
    # the re-trained runs reproduce their rows (all but the timings)
    a = rows.drop(columns=TIMING).sort_values(KEY).reset_index(drop=True)
    b = again.drop(columns=TIMING).sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)

    third = run(tmp_path)  # nothing missing: nothing trains
    assert third.attrs["ran"] == [] and len(third) == len(rows)


def test_stale_run_file_is_retrained(first, tmp_path):
    _, out = first
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    path = tmp_path / "runs" / sorted(os.listdir(tmp_path / "runs"))[0]
    stored = pd.read_csv(path)
    stored.head(1).to_csv(path, index=False)  # an incomplete run
    assert run(tmp_path).attrs["ran"] == [path.name]


def test_report_reads_only_the_csv(first, tmp_path):
    _, out = first
    shutil.copy(out / "cnn_epochs.csv", tmp_path / "cnn_epochs.csv")
    written = write_cnn_report(str(tmp_path / "cnn_epochs.csv"), str(tmp_path / "report"))
    names = {os.path.basename(p) for p in written}
    assert names == {"cnn.md", "cnn_test_accuracy.png", "cnn_train_loss.png", "cnn_lr_sweep.png"}
    for path in written:
        assert os.path.getsize(path) > 1000, path
    md = open(tmp_path / "report" / "cnn.md").read()
    for text in (*OPTIMIZERS, "## Convergence", "## Learning-rate sweep", "epochs to 98%", "±", "**"):
        assert text in md, text


@pytest.mark.parametrize("dataset", ["fashion-mnist", "cifar10"])
def test_file_datasets_end_to_end(tmp_path, dataset):
    """The whole protocol on tiny generated files (random labels: only the plumbing is checked)."""
    data_dir = tmp_path / "data"
    if dataset == "cifar10":
        write_cifar(str(data_dir / "cifar-10-batches-py"), per_batch=40)
    else:
        write_mnist(str(data_dir), gz=True, n_train=200, n_test=50)
    rows = run_cnn(["Adam"], 1, 1, dataset, str(data_dir), str(tmp_path / "out"), quick=True, progress=False)
    final = rows[rows.stage == "final"]
    test_images = 40 if dataset == "cifar10" else 50
    assert len(final) == 1 and final.train_size.iloc[0] == 200 and final.eval_size.iloc[0] == test_images
    assert (rows.dataset == dataset).all() and rows.eval_accuracy.between(0, 1).all()


def test_cli_missing_data_exits_2(tmp_path, capsys):
    code = main(["--out", str(tmp_path), "--dataset", "mnist", "--data-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "train-images-idx3-ubyte" in err and str(tmp_path) in err
    assert not os.path.exists(tmp_path / "runs")  # failed before any training


def test_cli_report_only(first, tmp_path, capsys):
    _, out = first
    shutil.copy(out / "cnn_epochs.csv", tmp_path / "cnn_epochs.csv")
    assert main(["--out", str(tmp_path), "--report-only", "--no-plots"]) == 0
    assert "cnn.md" in capsys.readouterr().out
