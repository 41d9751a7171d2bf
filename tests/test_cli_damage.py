"""optbench over damaged results and interrupted writes: `report` reads a result set only when its files
are the ones its manifest lists (one line on stderr and exit status 2 otherwise, naming the file), a run
killed between two files leaves a set that is never read as one, several configurations share an --out
without losing each other's finished work, every output is written atomically, and each optimizer is
one spec however often it is named."""

from __future__ import annotations

import os

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
