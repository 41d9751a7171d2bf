"""A small sweep end to end: the protocol's stages, the tidy CSVs with provenance, and a report step that
reads only the CSVs."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from benchmarks.convergence import run_sweep, write_report
from benchmarks.convergence.__main__ import main
from benchmarks.convergence.tuning import EVAL_SEED_OFFSET

PROBLEMS = ["rosenbrock-2d", "quadratic-k1e2", "saddle-5x2-y2"]
OPTIMIZERS = ["SGD", "Adam"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("convergence")
    runs = run_sweep(
        OPTIMIZERS,
        PROBLEMS,
        seeds=3,
        steps=80,
        out_dir=str(out),
        progress=False,
        trials=3,
        refine_trials=2,
        tuning_seeds=2,
    )
    return runs, out


def test_sweep_runs_every_stage(sweep):
    runs, _ = sweep
    counts = runs.groupby("stage").size().to_dict()
    n = len(OPTIMIZERS) * len(PROBLEMS)
    assert counts == {"search": n * 3 * 2, "refine": n * 2 * 2, "final": n * (3 + 1), "default": n * (3 + 1)}
    # tuning seeds and held-out seeds are disjoint
    tuning = set(runs[runs.stage.isin(["search", "refine"])].seed)
    held_out = set(runs[runs.stage.isin(["final", "default"]) & (runs.start == "random")].seed)
    assert tuning == {0, 1} and held_out == {EVAL_SEED_OFFSET + k for k in range(3)}
    # every optimizer gets the same number of trials, over its own hyperparameters
    trials = runs[runs.stage == "search"].groupby(["optimizer", "problem"])[["lr", "hyperparams"]].nunique()
    assert (trials.lr == 3).all()
    adam = runs[(runs.stage == "search") & (runs.optimizer == "Adam")]
    assert adam.hyperparams.nunique() == 3 and adam.hyperparams.str.contains("betas").all()
    # one chosen trial per (optimizer, problem), and defaults run each optimizer's defaults
    final = runs[runs.stage == "final"].groupby(["optimizer", "problem"])
    assert (final.lr.nunique() == 1).all() and (final.hyperparams.nunique() == 1).all()
    assert set(runs[(runs.stage == "default") & (runs.optimizer == "Adam")].lr) == {1e-3}


def test_csv_rows_carry_provenance(sweep):
    _, out = sweep
    runs = pd.read_csv(os.path.join(out, "runs.csv"))
    for column in (
        "package_version",
        "torch_version",
        "git_commit",
        "git_dirty",
        "machine",
        "device",
        "threads",
        "command",
        "optimizer",
        "problem",
        "lr",
        "seed",
        "hyperparams",
        "status",
        "steps_to_threshold",
        "final_loss",
        "final_dist",
        "steps_to_escape",
    ):
        assert column in runs.columns, column
        assert runs[column].notna().any(), column
    assert runs.run_id.is_unique
    curves = pd.read_csv(os.path.join(out, "curves.csv"))
    assert set(curves.run_id) <= set(runs[runs.stage.isin(["final", "default"])].run_id)


def test_report_reads_only_the_csvs(sweep, tmp_path):
    _, out = sweep
    written = write_report(os.path.join(out, "runs.csv"), str(tmp_path))
    names = {os.path.basename(p) for p in written}
    assert {
        "convergence.md",
        "loss_curves_tuned.png",
        "loss_curves_default.png",
        "lr_sensitivity.png",
        "performance_profile_tuned.png",
        "trajectories_rosenbrock-2d.png",
        "trajectories_saddle-5x2-y2.png",
    } <= names
    for path in written:
        assert os.path.getsize(path) > 1000, path
    md = open(os.path.join(tmp_path, "convergence.md")).read()
    for name in (
        PROBLEMS + OPTIMIZERS + ["## Tuned hyperparameters", "## Default hyperparameters", "ρ(4)", "escaped"]
    ):
        assert name in md, name


def test_cli_report_only(sweep, tmp_path, capsys):
    _, out = sweep
    for name in ("runs.csv", "curves.csv", "trajectories.csv", "sweep.json", "manifest.json"):
        with open(os.path.join(out, name)) as src, open(os.path.join(tmp_path, name), "w") as dst:
            dst.write(src.read())
    main(["--out", str(tmp_path), "--report-only", "--no-plots"])
    assert "convergence.md" in capsys.readouterr().out


def test_code_version_changes_with_any_source(tmp_path):
    """The resume key's code version hashes the sources: an edit, committed or not, changes it."""
    from benchmarks.convergence.tuning import code_version

    for folder in ("benchmarks", "optimizers", "csrc"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.py").write_text("x = 1\n")
    (tmp_path / "csrc" / "rules.h").write_text("// rule\n")
    before = code_version(str(tmp_path))
    assert code_version(str(tmp_path)) == before
    (tmp_path / "csrc" / "rules.h").write_text("// rule, edited\n")
    assert code_version(str(tmp_path)) != before
    (tmp_path / "csrc" / "rules.h").write_text("// rule\n")
    assert code_version(str(tmp_path)) == before
    (tmp_path / "benchmarks" / "notes.txt").write_text("not a source")
    assert code_version(str(tmp_path)) == before


def test_a_changed_source_never_reuses_a_stored_unit(tmp_path, monkeypatch):
    from benchmarks.convergence import tuning

    kwargs = dict(
        seeds=2, steps=20, out_dir=str(tmp_path), progress=False, trials=2, refine_trials=1, tuning_seeds=2
    )
    first = run_sweep(["SGD"], ["rosenbrock-2d"], **kwargs)
    assert first.attrs["units_loaded"] == 0
    again = run_sweep(["SGD"], ["rosenbrock-2d"], **kwargs)
    assert again.attrs["units_loaded"] == 3
    monkeypatch.setattr(tuning, "code_version", lambda root=None: "edited")
    edited = run_sweep(["SGD"], ["rosenbrock-2d"], **kwargs)
    assert edited.attrs["units_loaded"] == 0
