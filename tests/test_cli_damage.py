"""optbench over damaged results and interrupted writes: `report` reads a result set only when its files
are the ones its manifest lists (one line on stderr and exit status 2 otherwise, naming the file), a run
killed between two files leaves a set that is never read as one, several configurations share an --out
without losing each other's finished work, every output is written atomically, and each optimizer is
one spec however often it is named."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pytest

from benchmarks import cli, optimizer_specs, result_set
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


def _one_error(code: int, err: str, *expected: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("optbench report: error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)


# -- bad input: one line, exit status 2 -----------------------------------------------------------------
def _replace(data: bytes) -> Callable[[bytes], bytes]:
    return lambda _: data


def _frame(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[bytes], bytes]:
    return lambda data: change(pd.read_csv(io.BytesIO(data))).to_csv(index=False).encode()


def _drop_column(name: str) -> Callable[[bytes], bytes]:
    return _frame(lambda df: df.drop(columns=name))


def _cell(column: str, value: str) -> Callable[[bytes], bytes]:
    def put(df: pd.DataFrame) -> pd.DataFrame:
        df[column] = df[column].astype(object)
        df.loc[1, column] = value
        return df

    return _frame(put)


def _json(change: Callable[[dict], object]) -> Callable[[bytes], bytes]:
    return lambda data: json.dumps(change(json.loads(data))).encode()


@dataclass(frozen=True)
class Damage:
    desc: str
    file: str
    damage: Callable[[bytes], bytes]
    expected: str
    manifest: bool = False  # False: the manifest is removed first (results written before manifests)


HEADER_ONLY = lambda data: data.splitlines(keepends=True)[0]  # noqa: E731
DAMAGES = [
    Damage("runs.csv empty", "runs.csv", _replace(b""), "empty (no header, no rows)"),
    Damage("runs.csv header only", "runs.csv", HEADER_ONLY, "has a header but no rows"),
    Damage(
        "runs.csv garbage bytes", "runs.csv", _replace(bytes(range(256)) * 4), "not UTF-8 text (byte 0x80"
    ),
    Damage("runs.csv garbage text", "runs.csv", _replace(b'a,b\n1,"unclosed\n'), "not a CSV table"),
    Damage("runs.csv column missing", "runs.csv", _drop_column("lr"), "lacks the column lr"),
    Damage(
        "runs.csv not UTF-8", "runs.csv", lambda d: d.replace(b"SGD", b"S\xffD"), "not UTF-8 text (byte 0xff"
    ),
    Damage("runs.csv a word for lr", "runs.csv", _cell("lr", "fast"), "column lr holds 'fast', not a number"),
    Damage("runs.csv cut mid-row", "runs.csv", lambda d: d[: len(d) // 2], "ends in the middle of a row"),
    Damage("curves.csv column missing", "curves.csv", _drop_column("loss"), "lacks the column loss"),
    Damage("trajectories.csv empty", "trajectories.csv", _replace(b"\n"), "empty"),
    Damage("sweep.json garbage", "sweep.json", _replace(b'{"seconds": 1, oops'), "not JSON (Expecting"),
    Damage("sweep.json empty", "sweep.json", _replace(b""), "not JSON"),
    Damage("sweep.json a list", "sweep.json", _replace(b"[1, 2]"), "holds a JSON list, not an object"),
    Damage("sweep.json not UTF-8", "sweep.json", _replace(b"\xff\xfe{}"), "not UTF-8 text"),
    Damage(
        "sweep.json lacks seconds",
        "sweep.json",
        _json(lambda s: {k: v for k, v in s.items() if k != "seconds"}),
        "lacks the key 'seconds'",
    ),
    Damage(
        "sweep.json seconds a word",
        "sweep.json",
        _json(lambda s: {**s, "seconds": "soon"}),
        "'seconds' must be a number of seconds, got 'soon'",
    ),
    Damage("manifest garbage", "manifest.json", _replace(b"not json"), "not JSON", manifest=True),
    Damage("manifest not UTF-8", "manifest.json", _replace(b"\x80"), "not UTF-8 text", manifest=True),
    Damage("manifest a list", "manifest.json", _replace(b"[]"), "not an object", manifest=True),
    Damage(
        "manifest lacks files",
        "manifest.json",
        _json(lambda m: {k: v for k, v in m.items() if k != "files"}),
        "lacks the key 'files'",
        manifest=True,
    ),
    Damage(
        "manifest entry lacks its checksum",
        "manifest.json",
        _json(lambda m: {**m, "files": {"runs.csv": {"bytes": 3}}}),
        "must map each file name to its bytes and sha256",
        manifest=True,
    ),
    Damage(
        "manifest of another format",
        "manifest.json",
        _json(lambda m: {**m, "format": "other/9"}),
        "not written by this optbench",
        manifest=True,
    ),
    Damage(
        "runs.csv edited, same size",
        "runs.csv",
        lambda d: d.replace(b",beale,", b",BEALE,", 1),
        "sha256 differs",
        manifest=True,
    ),
    Damage("runs.csv emptied", "runs.csv", _replace(b""), "truncated or replaced: 0 of the", manifest=True),
]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.desc for d in DAMAGES])
def test_damaged_result_file_is_one_line_and_exit_status_2(damage, sets, tmp_path, capsys):
    out = _copy(sets["SGD"], tmp_path)
    folder = tmp_path / "functions"
    if not damage.manifest and damage.file != "manifest.json":
        os.unlink(folder / "manifest.json")  # the structural checks speak, not the checksum
    path = folder / damage.file
    path.write_bytes(damage.damage(path.read_bytes()))
    os.unlink(folder / "convergence.md")
    code, _, err = _report(out, capsys)
    _one_error(code, err, f"{path}: ", damage.expected)
    assert not (folder / "convergence.md").exists()  # nothing tabulated


def test_damaged_result_file_from_the_shell_has_no_traceback(sets, tmp_path):
    out = _copy(sets["SGD"], tmp_path)
    runs = tmp_path / "functions" / "runs.csv"
    runs.write_bytes(runs.read_bytes()[:100])
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "report", "--no-plots", "--out", out],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert str(runs) in proc.stderr and "truncated" in proc.stderr and "Traceback" not in proc.stderr


def test_a_listed_file_that_is_gone_is_named(sets, tmp_path, capsys):
    out = _copy(sets["SGD"], tmp_path)
    os.unlink(tmp_path / "functions" / "trajectories.csv")
    code, _, err = _report(out, capsys)
    _one_error(code, err, "trajectories.csv: missing, though manifest.json lists it (21 rows)")


# -- a truncated file -------------------------------------------------------------------------------
def test_truncated_runs_csv_is_refused(sets, tmp_path, capsys):
    """runs.csv cut to a third at a row boundary is still a well-formed table: only the manifest can
    tell, and report refuses it instead of tabulating a third of the seeds."""
    out = _copy(sets["SGD"], tmp_path)
    runs = tmp_path / "functions" / "runs.csv"
    rows = runs.read_bytes().splitlines(keepends=True)
    runs.write_bytes(b"".join(rows[: len(rows) // 3]))
    assert len(pd.read_csv(runs)) == len(rows) // 3 - 1  # readable as a smaller table
    code, _, err = _report(out, capsys)
    _one_error(code, err, f"{runs}: truncated or replaced", "(22 rows) its manifest lists")


def test_results_written_before_manifests_are_read_with_one_warning(sets, tmp_path, capsys):
    """The choice for old results: read, with a warning that says what is not checked."""
    out = _copy(sets["SGD"], tmp_path)
    folder = tmp_path / "functions"
    os.unlink(folder / "manifest.json")
    expected = (folder / "convergence.md").read_bytes()
    os.unlink(folder / "convergence.md")
    code, stdout, err = _report(out, capsys)
    assert code == 0 and str(folder / "convergence.md") in stdout
    assert err.count("\n") == 1 and err.startswith(f"optbench report: warning: {folder}: no manifest.json")
    assert "unchecked for truncation" in err
    assert (folder / "convergence.md").read_bytes() == expected


# -- a mixed set ------------------------------------------------------------------------------------
KILLED_AFTER_RUNS_CSV = """
import os, signal, sys
from benchmarks import cli, result_set
real = result_set.write_bytes
def write_then_die(path, data):
    if path.endswith("curves.csv"):  # runs.csv is written, curves.csv and the rest are not
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, data)
result_set.write_bytes = write_then_die
cli.main(sys.argv[1:])
"""


def test_a_set_mixed_by_a_killed_run_is_never_read(sets, tmp_path, capsys):
    """The Adam run is killed between writing its runs.csv and its curves.csv, over a finished SGD set:
    new runs.csv, old trajectories.csv. report refuses the set; rerunning the command finishes it."""
    out = _copy(sets["SGD"], tmp_path)
    folder = tmp_path / "functions"
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_RUNS_CSV, *ADAM, "--out", out],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert set(pd.read_csv(folder / "runs.csv").optimizer) == {"Adam"}  # the mix is on disk
    assert (folder / "trajectories.csv").read_bytes() == open(
        os.path.join(sets["SGD"], "trajectories.csv"), "rb"
    ).read()

    code, _, err = _report(out, capsys)
    _one_error(code, err, f"{folder / 'manifest.json'}: says its set was still being written", "again")

    code, stdout, _ = _main([*ADAM, "--out", out], capsys)  # the same command again: loads its stages
    assert code == 0 and "3 of 3 stages loaded" in stdout
    code, _, err = _report(out, capsys)
    assert code == 0 and err == ""
    trajectories = pd.read_csv(folder / "trajectories.csv")
    assert set(trajectories.run_id) <= set(pd.read_csv(folder / "runs.csv").run_id)


def test_a_file_from_another_set_is_refused(sets, tmp_path, capsys):
    """Another complete run's trajectories.csv copied in: same columns, other runs; refused."""
    out = _copy(sets["SGD"], tmp_path)
    shutil.copy(os.path.join(sets["Adam"], "trajectories.csv"), tmp_path / "functions" / "trajectories.csv")
    code, _, err = _report(out, capsys)
    _one_error(code, err, "trajectories.csv: ", "replaced")


# -- two configurations in one --out -------------------------------------------------------------------
def test_two_configurations_in_one_out_are_both_resumable(sets, tmp_path, monkeypatch, capsys):
    from benchmarks.convergence import tuning

    out = str(tmp_path)
    for argv in (SGD, ADAM):
        code, stdout, _ = _main([*argv, "--out", out], capsys)
        assert code == 0 and "0 of 3 stages loaded" in stdout
    units = os.listdir(tmp_path / "functions" / "units")
    assert len([u for u in units if u.endswith(".unit.pkl")]) == 6, units

    batches = []
    real = tuning.run_batch
    monkeypatch.setattr(tuning, "run_batch", lambda *a, **k: batches.append(1) or real(*a, **k))
    for name, argv in (("SGD", SGD), ("Adam", ADAM)):
        code, stdout, _ = _main([*argv, "--out", out], capsys)
        assert code == 0 and "3 of 3 stages loaded" in stdout, stdout
        assert batches == []  # nothing computed again
        runs = pd.read_csv(tmp_path / "functions" / "runs.csv")
        expected = pd.read_csv(os.path.join(sets[name], "runs.csv"))
        pd.testing.assert_frame_equal(runs.drop(columns=PROVENANCE), expected.drop(columns=PROVENANCE))


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


def test_sweep_set_is_written_atomically(tmp_path, monkeypatch, capsys):
    """A full disk while the set is written: the manifest says the set is unfinished, so report refuses it."""
    real = result_set.write_bytes

    def full_at_sweep_json(path, data):
        if path.endswith("sweep.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        real(path, data)

    monkeypatch.setattr(result_set, "write_bytes", full_at_sweep_json)
    code, _, err = _main([*SGD, "--out", str(tmp_path)], capsys)
    assert code == 2 and "No space left on device" in err and "sweep.json" in err, err
    monkeypatch.undo()
    code, _, err = _report(str(tmp_path), capsys)
    _one_error(code, err, "still being written")


def test_readme_is_written_atomically(tmp_path, monkeypatch):
    from benchmarks.readme import update_readme

    (tmp_path / "cnn").mkdir()
    (tmp_path / "cnn" / "cnn.md").write_text("Made by `x`.\n\n## Results\n\n| a |\n|---|\n| 1 |\n")
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


# -- the README step reads results too -------------------------------------------------------------------
README_DAMAGES = [
    (
        "speed/speed_cpu.csv",
        b"command,git_commit,package_version,torch_version,device,threads,workload,rule,implementation,"
        b"ms_median,pct_of_floor\n",
        "has a header but no rows",
    ),
    ("speed/speed_cpu.csv", b"workload,rule\n16M,adam\n", "lacks the columns"),
    ("saddles/convergence.md", b"# Escaping saddles\n\xff\n", "not UTF-8 text"),
    (
        "saddles/convergence.md",
        b"# Escaping saddles\n\nMade by `x`.\n",
        "has no '## Escape against lr' section",
    ),
    ("cnn/cnn.md", b"", "empty"),
]


@pytest.mark.parametrize(
    "file, content, expected", README_DAMAGES, ids=[f"{f}: {e}" for f, _, e in README_DAMAGES]
)
def test_readme_step_refuses_damaged_results(file, content, expected, sets, tmp_path, monkeypatch, capsys):
    """`optbench report` on the repository's results/ also rewrites the README's blocks from results files;
    a damaged one is one line naming it, and the README is left as it was."""
    from benchmarks import metadata

    results = tmp_path / "results"
    _copy(sets["SGD"], results)
    path = results / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    readme = tmp_path / "README.md"
    readme.write_text("<!-- optbench:functions -->\nold\n<!-- /optbench:functions -->\n")
    monkeypatch.setattr(metadata, "REPO", str(tmp_path))
    code, _, err = _report(str(results), capsys)
    _one_error(code, err, f"{path}: ", expected)
    assert "old" in readme.read_text()


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
