"""The optbench command line: one-line errors with exit status 2, resuming an interrupted run without
losing or repeating work, `report` rebuilding the same tables from the CSVs, and quick smoke runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from benchmarks import cli, problems
from benchmarks.metadata import run_metadata
from benchmarks.resume import UnitStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROVENANCE = [*run_metadata(), "git_dirty", "platform"]
"""Columns that say which process made a row (they differ between a subprocess and pytest)."""

QUICK_FUNCTIONS = ["functions", "--quick", "--no-plots", "--no-progress"]


def _optbench(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _results(path: str) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns=PROVENANCE, errors="ignore")


def _units(folder: str) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.endswith(".unit.pkl")) if os.path.isdir(folder) else []


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted `optbench functions --quick` (tables only): what every resumed run must equal."""
    out = str(tmp_path_factory.mktemp("reference"))
    cli.main([*QUICK_FUNCTIONS, "--out", out])
    return os.path.join(out, "functions")


# -- errors -----------------------------------------------------------------------------------------
ERRORS = [
    ([], ["no command", "functions", "report"]),
    (["bogus"], ["'bogus'", "functions", "saddles"]),
    (["functions", "--optimizers", "Adamm"], ["'Adamm'", "DiffGrad", "torch Adam"]),
    (["functions", "--problems", "monkey-saddle"], ["'monkey-saddle'", "rosenbrock-2d"]),
    (["saddles", "--problems", "beale"], ["'beale'", "monkey-saddle"]),
    (["saddles", "--seeds", "-1"], ["--seeds", "'-1'", "positive integer"]),
    (["functions", "--steps", "0"], ["--steps", "'0'", "positive integer"]),
    (["functions", "--steps", "ten"], ["--steps", "'ten'", "positive integer"]),
    (["cnn", "--epochs", "-3"], ["--epochs", "'-3'", "positive integer"]),
    (["cnn", "--dataset", "imagenet"], ["'imagenet'", "digits", "cifar10"]),
    (["speed", "--rounds", "0"], ["--rounds", "positive integer"]),
    (["speed", "--rules", "adamx"], ["'adamx'", "diffgrad"]),
    (["speed", "--workloads", "2G"], ["'2G'", "resnet50"]),
    (["speed", "--device", "tpu"], ["'tpu'", "cpu"]),
    (["speed", "--dtype", "int8"], ["'int8'", "bfloat16"]),
    (["all", "--device", "tpu"], ["'tpu'", "cpu"]),
    (["functions", "--frobnicate"], ["--frobnicate", "optbench functions --help"]),
    (["report", "bogus"], ["'bogus'", "functions", "speed"]),
    (["report", "--out", "{tmp}"], ["no results", "functions"]),
    (["functions", "--out", "{file}/results"], ["cannot write", "{file}", "--out"]),
    (["cnn", "--dataset", "mnist", "--data-dir", "{tmp}/none", "--out", "{tmp}"], ["mnist", "--data-dir"]),
]


@pytest.mark.parametrize("argv, expected", ERRORS, ids=[" ".join(a) or "(nothing)" for a, _ in ERRORS])
def test_bad_input_is_one_line_and_exit_status_2(argv, expected, tmp_path, capsys):
    file = tmp_path / "a-file"
    file.write_text("")
    fill = {"{tmp}": str(tmp_path), "{file}": str(file)}

    def filled(text: str) -> str:
        for k, v in fill.items():
            text = text.replace(k, v)
        return text

    with pytest.raises(SystemExit) as exit_info:
        cli.main([filled(a) for a in argv])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("optbench"), captured.err
    for text in expected:
        assert filled(text) in captured.err, (text, captured.err)


@pytest.mark.parametrize(
    "argv, expected",
    [(["functions", "--seeds", "-1"], "--seeds"), (["functions", "--out", "{file}/x"], "cannot write")],
)
def test_bad_input_from_the_shell_has_no_traceback(argv, expected, tmp_path):
    file = tmp_path / "a-file"
    file.write_text("")
    proc = _optbench(*[a.replace("{file}", str(file)) for a in argv])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err


def test_cnn_data_not_found_is_a_usage_error(monkeypatch, tmp_path, capsys):
    cnn = pytest.importorskip("benchmarks.cnn")

    def missing(*args, **kwargs):
        raise cnn.DataNotFoundError("cifar10: file data_batch_1 not found;\nlooked in /nowhere")

    monkeypatch.setattr(cnn, "run_cnn", missing)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["cnn", "--dataset", "cifar10", "--data-dir", "/nowhere", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data_batch_1" in err and "--dataset digits" in err, err


def test_problem_sets_split_by_saddle():
    assert set(problems.FUNCTIONS) | set(problems.SADDLES) == set(problems.FACTORIES)
    for name, problem in zip(problems.FACTORIES, problems.get(None)):
        assert problem.is_saddle == (name in problems.SADDLES), name


# -- resume -----------------------------------------------------------------------------------------
def test_resume_after_an_exception_between_stages(reference, tmp_path, monkeypatch, capsys):
    """Interrupted after the first stage: the rerun runs only the other two and writes what an
    uninterrupted run writes."""
    from benchmarks.convergence import tuning

    real, calls, armed = tuning.run_batch, [], [True]

    def interrupting(*args, **kwargs):
        calls.append(len(calls))
        if armed[0] and len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning, "run_batch", interrupting)
    out = str(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*QUICK_FUNCTIONS, "--out", out])
    assert exit_info.value.code == 130
    assert "resume" in capsys.readouterr().err
    units = os.path.join(out, "functions", "units")
    assert _units(units) == ["1-grid+default.unit.pkl"]
    assert not os.path.exists(os.path.join(out, "functions", "runs.csv"))

    calls.clear()
    armed[0] = False
    cli.main([*QUICK_FUNCTIONS, "--out", out])
    assert len(calls) == 2  # refine and final; the grid stage was loaded
    assert "1 of 3 stages loaded" in capsys.readouterr().out
    for name in ("runs.csv", "curves.csv", "trajectories.csv"):
        pd.testing.assert_frame_equal(
            _results(os.path.join(out, "functions", name)), _results(os.path.join(reference, name))
        )


def test_resume_after_the_process_is_killed(reference, tmp_path, capsys):
    """SIGKILL as soon as the first stage is on disk; the rerun loads it, runs the rest, and gives the same
    rows as an uninterrupted run, none twice."""
    out = str(tmp_path)
    units = os.path.join(out, "functions", "units")
    proc = _optbench(*QUICK_FUNCTIONS, "--out", out)
    deadline = time.monotonic() + 60
    while not _units(units) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be interrupted"
    saved = _units(units)
    assert saved and len(saved) < 3 and not os.path.exists(os.path.join(out, "functions", "runs.csv"))

    cli.main([*QUICK_FUNCTIONS, "--out", out])
    assert f"{len(saved)} of 3 stages loaded" in capsys.readouterr().out
    runs = pd.read_csv(os.path.join(out, "functions", "runs.csv"))
    assert runs.run_id.is_unique
    assert not runs.duplicated(["stage", "optimizer", "problem", "lr", "seed"]).any()
    assert runs.command.iloc[0].startswith("python -m benchmarks functions")  # made by the killed run
    pd.testing.assert_frame_equal(
        runs.drop(columns=PROVENANCE), _results(os.path.join(reference, "runs.csv"))
    )


def test_speed_resumes_per_rule_and_workload(tmp_path, monkeypatch, capsys):
    from benchmarks.speed import run, shapes

    monkeypatch.setitem(shapes.WORKLOADS, "tiny", lambda: [(1000,), (10, 10)])
    real, calls, armed = run.measure_workload, [], [True]

    def interrupting(rule, *args, **kwargs):
        calls.append(rule)
        if armed[0] and len(calls) == 2:
            raise KeyboardInterrupt
        return real(rule, *args, **kwargs)

    monkeypatch.setattr(run, "measure_workload", interrupting)
    argv = ["speed", "--rules", "adam", "momentum", "diffgrad", "--workloads", "tiny", "--rounds", "2"]
    argv += ["--no-plots", "--no-progress", "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        cli.main(argv)
    units = os.path.join(tmp_path, "speed", "units")
    assert _units(units) == ["cpu-adam-tiny.unit.pkl"]
    saved = pd.DataFrame(pd.read_pickle(os.path.join(units, "cpu-adam-tiny.unit.pkl"))["value"])

    calls.clear()
    armed[0] = False
    cli.main(argv)
    assert calls == ["momentum", "diffgrad"]
    df = pd.read_csv(os.path.join(tmp_path, "speed", "speed_cpu.csv"))
    assert not df.duplicated(["rule", "implementation", "workload"]).any()
    assert list(dict.fromkeys(df.rule)) == ["adam", "momentum", "diffgrad"]
    adam = df[df.rule == "adam"].reset_index(drop=True)
    assert adam.ms_median.tolist() == pytest.approx(saved.ms_median.tolist(), rel=1e-12)
    assert "speed_cpu.md" in capsys.readouterr().out

    # report: the same table again from the CSV
    md = os.path.join(tmp_path, "speed", "speed_cpu.md")
    before = open(md, "rb").read()
    os.unlink(md)
    cli.main(["report", "speed", "--out", str(tmp_path), "--no-plots"])
    assert open(md, "rb").read() == before


def test_speed_low_precision_writes_its_own_table(tmp_path, monkeypatch, capsys):
    """--dtype float16: fp16 params, ours-master timed beside ours, its own CSV and table."""
    from benchmarks.speed import shapes

    monkeypatch.setitem(shapes.WORKLOADS, "tiny", lambda: [(1000,), (10, 10)])
    argv = ["speed", "--rules", "adam", "--workloads", "tiny", "--rounds", "2", "--dtype", "float16"]
    cli.main(argv + ["--no-plots", "--no-progress", "--out", str(tmp_path)])
    df = pd.read_csv(os.path.join(tmp_path, "speed", "speed_cpu_float16.csv"))
    assert set(df.dtype) == {"float16"}
    assert {"ours", "ours-master", "torch-fused"} <= set(df.implementation)
    md = open(os.path.join(tmp_path, "speed", "speed_cpu_float16.md")).read()
    assert "float16 params" in md and "| tiny | adam (ours-master) |" in md
    assert not os.path.exists(os.path.join(tmp_path, "speed", "speed_cpu.csv"))


def test_units_of_other_settings_are_not_loaded(tmp_path):
    store = UnitStore(str(tmp_path))
    store.save("a", {"steps": 10}, [1, 2])
    assert store.load("a", {"steps": 10}) == [1, 2]
    assert store.load("a", {"steps": 20}) is None
    (tmp_path / "b.unit.pkl").write_bytes(b"truncated")
    assert store.load("b", {}) is None
    assert UnitStore(str(tmp_path), fresh=True).load("a", {"steps": 10}) is None
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


# -- report -----------------------------------------------------------------------------------------
def test_report_rebuilds_identical_tables_from_the_csvs(reference, tmp_path, capsys):
    """Only the CSVs (and sweep.json) copied to a new folder: `report` writes the same bytes."""
    folder = tmp_path / "functions"
    folder.mkdir()
    for name in ("runs.csv", "curves.csv", "trajectories.csv", "sweep.json"):
        shutil.copy(os.path.join(reference, name), folder / name)
    cli.main(["report", "--out", str(tmp_path), "--no-plots"])
    assert str(folder / "convergence.md") in capsys.readouterr().out
    expected = open(os.path.join(reference, "convergence.md"), "rb").read()
    assert (folder / "convergence.md").read_bytes() == expected
    cli.main(["report", "functions", "--out", str(tmp_path), "--no-plots"])
    assert (folder / "convergence.md").read_bytes() == expected


# -- smoke ------------------------------------------------------------------------------------------
def test_quick_functions(reference):
    runs = pd.read_csv(os.path.join(reference, "runs.csv"))
    assert list(dict.fromkeys(runs.problem)) == list(problems.FUNCTIONS)
    assert set(runs.optimizer) == set(cli.optimizer_specs.DEFAULT)
    assert set(runs.stage) == {"grid", "refine", "final", "default"}
    assert set(runs.budget) == {cli.QUICK_SWEEP["steps"]}
    for column in PROVENANCE:
        assert column == "cuda_version" or runs[column].notna().all(), column
    md = open(os.path.join(reference, "convergence.md")).read()
    assert md.startswith("# Convergence on test functions\n\nMade by `")
    assert "## Tuned learning rate" in md


def test_quick_saddles_with_plots(tmp_path, capsys):
    from PIL import Image

    cli.main(["saddles", "--quick", "--no-progress", "--optimizers", "SGD", "Adam", "--out", str(tmp_path)])
    written = capsys.readouterr().out.split()
    folder = tmp_path / "saddles"
    runs = pd.read_csv(folder / "runs.csv")
    assert list(dict.fromkeys(runs.problem)) == list(problems.SADDLES)
    assert runs.escaped.notna().all()
    assert (folder / "convergence.md").read_text().startswith("# Escaping saddles\n")
    pngs = [p for p in written if p.endswith(".png")]
    assert {os.path.basename(p) for p in pngs} >= {"lr_sensitivity.png", "trajectories_monkey-saddle.png"}
    for png in pngs:
        text = Image.open(png).text
        assert text["Source"] == runs.command.iloc[0], png  # the command that made the runs
        for part in ("commit", "torch", " thread"):
            assert part in text["Description"], (png, part)


def test_cnn_command_passes_its_options(tmp_path, monkeypatch, capsys):
    cnn = pytest.importorskip("benchmarks.cnn")
    seen = {}

    def fake_run(*args, **kwargs):
        seen["args"], seen["kwargs"] = args, kwargs
        return pd.DataFrame()

    monkeypatch.setattr(cnn, "run_cnn", fake_run)
    monkeypatch.setattr(cnn, "write_cnn_report", lambda csv, out, **kw: [os.path.join(out, "cnn.md")])
    cli.main(["cnn", "--quick", "--optimizers", "Adam", "--no-progress", "--out", str(tmp_path)])
    optimizers, seeds, epochs, dataset, data_dir, out = seen["args"]
    assert (optimizers, seeds, epochs, dataset, data_dir) == (
        ["Adam"],
        cli.QUICK_CNN_SEEDS,
        None,
        "digits",
        None,
    )
    assert out == os.path.join(str(tmp_path), "cnn")
    assert seen["kwargs"] == {"device": "cpu", "quick": True, "progress": False}


def test_all_runs_every_part_in_order(tmp_path, monkeypatch, capsys):
    pytest.importorskip("benchmarks.cnn")
    parts = []
    monkeypatch.setattr(cli, "run_convergence", lambda args, part: parts.append(part) or [])
    monkeypatch.setattr(cli, "run_cnn_part", lambda args, cnn: parts.append("cnn") or [])

    def fake_speed(args, workloads=None, rounds=None):
        parts.append(("speed", workloads, rounds, tuple(args.rules)))
        return []

    monkeypatch.setattr(cli, "run_speed_part", fake_speed)
    cli.main(["all", "--optimizers", "SGD", "Adam", "DiffGrad", "--out", str(tmp_path)])
    speed = ("speed", None, None, ("momentum", "adam", "diffgrad"))  # speed's own defaults
    assert parts == ["functions", "saddles", "cnn", speed]
    assert sorted(os.listdir(tmp_path)) == sorted(cli.PARTS)
