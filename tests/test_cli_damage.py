"""optbench over damaged results and interrupted writes: `report` reads a result set only when its files
are the ones its manifest lists (one line on stderr and exit status 2 otherwise, naming the file), a run
killed between two files leaves a set that is never read as one, several configurations share an --out
without losing each other's finished work, every output is written atomically, and each optimizer is
one spec however often it is named."""

from __future__ import annotations

import errno
import os
import shutil

import pandas as pd
import pytest

from benchmarks import cli, optimizer_specs
from benchmarks.metadata import run_metadata

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROVENANCE = [*run_metadata(), "git_dirty", "platform"]
"""Columns that say which process made a row."""

TINY = ["--quick", "--no-plots", "--no-progress", "--steps", "20", "--seeds", "2"]
SGD = ["functions", "--optimizers", "SGD", "--problems", "beale", *TINY]
ADAM = ["functions", "--optimizers", "Adam", "--problems", "beale", *TINY]
"""Two configurations of the functions sweep, about a second each: 3 stages, 22 runs."""


def _main(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of cli.main(argv)."""
    capsys.readouterr()
    try:
        cli.main(argv)
        code = 0
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Result sets of the two configurations, made by the CLI: {"SGD": folder, "Adam": folder}."""
    made = {}
    for name, argv in (("SGD", SGD), ("Adam", ADAM)):
        out = str(tmp_path_factory.mktemp(name))
        cli.main([*argv, "--out", out])
        made[name] = os.path.join(out, "functions")
    return made


def _copy(folder: str, tmp_path) -> str:
    """A copy of a functions set under tmp_path/functions (without its units); returns the --out."""
    shutil.copytree(folder, tmp_path / "functions", ignore=shutil.ignore_patterns("units"))
    return str(tmp_path)


def _report(out: str, capsys, *parts: str) -> tuple[int, str, str]:
    return _main(["report", *(parts or ["functions"]), "--no-plots", "--out", out], capsys)


# -- atomic outputs ---------------------------------------------------------------------------------
def _full_disk(monkeypatch) -> None:
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # the last step of every atomic write


def test_convergence_md_is_written_atomically(sets, tmp_path, monkeypatch, capsys):
    """A report that cannot finish writing convergence.md leaves the old one whole, and no temporary file."""
    out = _copy(sets["SGD"], tmp_path)
    md = tmp_path / "functions" / "convergence.md"
    md.write_text("the previous report\n")
    _full_disk(monkeypatch)
    code, _, err = _report(out, capsys)
    assert code == 2 and err.count("\n") == 1 and f"No space left on device: {md}" in err, err
    assert md.read_text() == "the previous report\n"
    assert not [f for f in os.listdir(md.parent) if f.endswith(".tmp")]


def test_readme_is_written_atomically(tmp_path, monkeypatch):
    from benchmarks.readme import update_readme

    (tmp_path / "cnn").mkdir()
    (tmp_path / "cnn" / "cnn.md").write_text("Made by `x`.\n\n## Convergence\n\n| a |\n|---|\n| 1 |\n")
    readme = tmp_path / "README.md"
    readme.write_text("<!-- optbench:cnn -->\nold\n<!-- /optbench:cnn -->\n")
    _full_disk(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        update_readme(str(tmp_path), str(readme))
    assert readme.read_text() == "<!-- optbench:cnn -->\nold\n<!-- /optbench:cnn -->\n"


def test_saddle_plots_when_no_run_escapes(tmp_path, capsys):
    """20 steps from 1e-2 off the monkey saddle: no lr escapes, and the escape plot has no point to
    scale its log axis on (it raised from matplotlib)."""
    argv = ["saddles", "--optimizers", "SGD", "--problems", "monkey-saddle", *TINY, "--out", str(tmp_path)]
    code, stdout, err = _main([a for a in argv if a != "--no-plots"], capsys)
    assert code == 0, err
    assert not pd.read_csv(tmp_path / "saddles" / "runs.csv").escaped.any()
    assert str(tmp_path / "saddles" / "escape_vs_lr.png") in stdout


# -- duplicate specs --------------------------------------------------------------------------------
def test_each_optimizer_is_one_spec_however_often_named(sets, tmp_path, capsys):
    get = optimizer_specs.get
    assert get(["Adam", "Adam"]) == [optimizer_specs.SPECS["Adam"]]
    torch_specs = [optimizer_specs.SPECS[n] for n in optimizer_specs.TORCH]
    assert get(["torch Adam", "torch"]) == [
        optimizer_specs.SPECS["torch Adam"],
        *(s for s in torch_specs if s.name != "torch Adam"),
    ]
    assert get(["torch", "torch"]) == torch_specs
    assert get([*optimizer_specs.DEFAULT, "Adam"]) == get(None)

    code, _, _ = _main([*SGD[:3], "SGD", *SGD[3:], "--out", str(tmp_path)], capsys)  # --optimizers SGD SGD
    assert code == 0
    runs = pd.read_csv(tmp_path / "functions" / "runs.csv")
    assert len(runs) == len(pd.read_csv(os.path.join(sets["SGD"], "runs.csv")))
