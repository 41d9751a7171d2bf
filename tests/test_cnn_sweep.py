"""The CNN protocol end to end on MNIST-1D (quick): lr search on several seeds then held-out seeds, the
tidy CSV with provenance, the sweep never seeing the test split, resuming from out_dir/runs/ (only
missing runs train again, the same rows, none duplicated, two configurations side by side), parallel
runs giving the serial rows, the report from the CSV alone, and the CLI's exit code for missing data."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import pandas as pd
import pytest
import torch

from benchmarks.cnn import lr_scores, run_cnn, select_lr, write_cnn_report
from benchmarks.cnn.__main__ import main
from benchmarks.cnn.budget import budget_for
from benchmarks.cnn.executor import DataRecipe
from benchmarks.cnn.sweep import SWEEP_SEED
from tests.cnn_files import write_cifar, write_mnist

OPTIMIZERS = ["Adam", "SGD"]
KEY = ["stage", "optimizer", "lr", "seed", "epoch"]
TIMING = ["train_seconds", "step_ms", "eval_seconds", "elapsed_seconds"]
BUDGET = budget_for("mnist1d", quick=True)


def run(out_dir, optimizers=OPTIMIZERS, **kwargs) -> pd.DataFrame:
    kwargs = {"jobs": 1, **kwargs}
    return run_cnn(
        optimizers, None, None, "mnist1d", None, str(out_dir), quick=True, progress=False, **kwargs
    )


def untimed(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns=TIMING).sort_values(KEY).reset_index(drop=True)


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    return run(out), out


def test_protocol_stages(first):
    rows, out = first
    sweep, final = rows[rows.stage == "sweep"], rows[rows.stage == "final"]
    lrs = BUDGET.lr_points + BUDGET.lr_extra
    assert len(sweep) == len(OPTIMIZERS) * lrs * BUDGET.sweep_seeds * BUDGET.epochs
    assert len(final) == len(OPTIMIZERS) * BUDGET.seeds * BUDGET.epochs
    assert set(sweep.seed) == set(range(SWEEP_SEED, SWEEP_SEED + BUDGET.sweep_seeds))
    assert set(final.seed) == set(range(BUDGET.seeds))
    assert (sweep.groupby("optimizer").lr.nunique() == lrs).all()  # the same budget for each
    # the sweep scores on validation only; the held-out runs on both splits
    assert sweep.test_accuracy.isna().all() and sweep.test_loss.isna().all() and (sweep.test_size == 0).all()
    assert sweep.val_accuracy.notna().all() and final.test_accuracy.notna().all()
    assert (final.val_size == sweep.val_size.iloc[0]).all() and (
        final.train_size == sweep.train_size.iloc[0]
    ).all()
    chosen = select_lr(lr_scores(sweep, BUDGET.last_epochs))
    assert final.groupby("optimizer").lr.first().to_dict() == chosen
    assert not rows.duplicated(KEY).any()
    assert len(os.listdir(out / "runs")) == len(OPTIMIZERS) * (lrs * BUDGET.sweep_seeds + BUDGET.seeds)


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
        "jobs",
        "dataset",
        "data_fingerprint",
        "optimizer",
        "hyperparams",
        "lr",
        "seed",
        "schedule",
        "epoch",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "train_seconds",
        "step_ms",
        "model",
        "config",
        "selection_epochs",
    ):
        assert column in stored.columns and stored[column].notna().all(), column
    assert (stored.threads == 1).all() and (stored.schedule == "constant").all()


def test_sweep_never_reads_the_test_split(first, tmp_path, monkeypatch):
    """With the test labels scrambled, the lr search runs and chooses exactly as before; only the
    held-out runs' test scores change."""
    rows, _ = first
    build = DataRecipe.build

    def scrambled(self):
        data = build(self)
        final = data["final"]
        g = torch.Generator().manual_seed(1)
        wrong = (final.test_y + torch.randint(1, 10, final.test_y.shape, generator=g)) % 10
        return {**data, "final": replace(final, test_y=wrong)}

    monkeypatch.setattr(DataRecipe, "build", scrambled)
    other = run(tmp_path)
    a, b = untimed(rows), untimed(other)
    sweep = a.stage == "sweep"
    pd.testing.assert_frame_equal(a[sweep], b[sweep])
    assert a[~sweep].lr.tolist() == b[~sweep].lr.tolist()
    assert b[~sweep].test_accuracy.mean() < a[~sweep].test_accuracy.mean() - 0.1


def test_rerun_trains_only_missing_runs_with_the_same_rows(first, tmp_path):
    rows, out = first
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    runs_dir = tmp_path / "runs"
    files = sorted(os.listdir(runs_dir))
    sweep_sgd = sorted(
        (f for f in files if f.startswith("sweep__sgd")),
        key=lambda f: float(f.split("__lr")[1].split("__")[0]),
    )
    gone = [sweep_sgd[-1], next(f for f in files if f.startswith("final__adam"))]  # an adaptive lr too
    for name in gone:
        os.remove(runs_dir / name)
    before = {f: os.stat(runs_dir / f).st_mtime_ns for f in files if f not in gone}

    again = run(tmp_path)
    assert sorted(again.attrs["ran"]) == sorted(gone)
    assert len(again.attrs["loaded"]) == len(files) - len(gone)
    assert sorted(os.listdir(runs_dir)) == files  # no temp files left behind
    assert {f: os.stat(runs_dir / f).st_mtime_ns for f in before} == before
    assert not again.duplicated(KEY).any() and len(again) == len(rows)
    pd.testing.assert_frame_equal(untimed(rows), untimed(again))  # the re-trained runs reproduce

    third = run(tmp_path)  # nothing missing: nothing trains
    assert third.attrs["ran"] == [] and len(third) == len(rows)


def test_two_configurations_share_one_out(first, tmp_path):
    rows, out = first
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    other = run(tmp_path, ["Adam"], schedule="cosine")
    assert len(other.attrs["ran"]) == len(other.groupby(["stage", "lr", "seed"]))  # none reused
    assert (other.schedule == "cosine").all()
    back = run(tmp_path)  # the first configuration is still all there
    assert back.attrs["ran"] == []
    pd.testing.assert_frame_equal(untimed(rows), untimed(back))


def test_parallel_runs_give_the_serial_rows(first, tmp_path):
    rows, _ = first
    parallel = run(tmp_path, jobs=2)
    assert (parallel.jobs == 2).all()
    pd.testing.assert_frame_equal(untimed(rows).drop(columns="jobs"), untimed(parallel).drop(columns="jobs"))


def test_report_reads_only_the_csv(first, tmp_path):
    _, out = first
    shutil.copy(out / "cnn_epochs.csv", tmp_path / "cnn_epochs.csv")
    written = write_cnn_report(str(tmp_path / "cnn_epochs.csv"), str(tmp_path / "report"))
    names = {os.path.basename(p) for p in written}
    assert names == {"cnn.md", "cnn_test_accuracy.png", "cnn_train_loss.png", "cnn_lr_sweep.png"}
    for path in written:
        assert os.path.getsize(path) > 1000, path
    md = open(tmp_path / "report" / "cnn.md").read()
    for text in (*OPTIMIZERS, "## Results", "## Learning-rate search", "95% CI", "Separation:", "**"):
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
    test_inputs = 40 if dataset == "cifar10" else 50
    assert len(final) == 1 and final.test_size.iloc[0] == test_inputs
    assert final.train_size.iloc[0] + final.val_size.iloc[0] == 200 and 30 < final.val_size.iloc[0] < 50
    assert (rows.dataset == dataset).all() and rows.val_accuracy.between(0, 1).all()


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


def test_report_refuses_a_truncated_or_mixed_set(first, tmp_path):
    from benchmarks.result_set import ResultFileError

    _, out = first
    for name in ("cnn_epochs.csv", "cnn_run.json", "manifest.json"):
        shutil.copy(out / name, tmp_path / name)
    csv = tmp_path / "cnn_epochs.csv"
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[: len(lines) // 3]))  # cut at a row boundary
    with pytest.raises(ResultFileError, match="truncated"):
        write_cnn_report(str(csv), str(tmp_path), plots=False)
    csv.write_text("".join(lines))
    (tmp_path / "cnn_run.json").write_text('{"seconds": 1.0}')  # another call's summary beside it
    with pytest.raises(ResultFileError, match="cnn_run.json"):
        write_cnn_report(str(csv), str(tmp_path), plots=False)


def test_edited_code_never_reuses_a_stored_run(first, tmp_path, monkeypatch):
    import benchmarks.cnn.sweep as sweep

    rows, out = first
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    monkeypatch.setattr(sweep, "code_version", lambda: "edited")
    again = run(tmp_path, ["SGD"])
    assert again.attrs["loaded"] == [] and len(again.attrs["ran"]) == len(
        again.groupby(["stage", "lr", "seed"])
    )
