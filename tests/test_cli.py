"""The optbench command line: one-line errors with exit status 2 (bad arguments, damaged dataset files, a
full disk, a folder where a result file goes), a quiet end when its output pipe closes, resuming an
interrupted run without losing or repeating work, `report` rebuilding the same tables from the CSVs, and
quick smoke runs."""

from __future__ import annotations

import errno
import os
import re
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
from tests.cnn_damage import DAMAGES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROVENANCE = [*run_metadata(), "git_dirty", "platform"]
"""Columns that say which process made a row (they differ between a subprocess and pytest)."""

QUICK_FUNCTIONS = ["functions", "--quick", "--no-plots", "--no-progress"]
TINY_SPEED = ["speed", "--rules", "adam", "--workloads", "tiny", "--rounds", "2", "--no-plots"]
TINY_SPEED += ["--no-progress"]
"""With the "tiny" workload of the `tiny_workload` fixture: one unit, measured in a second."""


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


@pytest.fixture
def tiny_workload(monkeypatch):
    from benchmarks.speed import shapes

    monkeypatch.setitem(shapes.WORKLOADS, "tiny", lambda: [(1000,), (10, 10)])


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
    assert err.count("\n") == 1 and "data_batch_1" in err and "--dataset mnist1d" in err, err


PARSER_ERRORS = [
    (["functions", "--seeds", "300000"], ["--seeds", "at most 5000", "'300000'", "memory"]),
    (["saddles", "--steps", "1" + "0" * 30], ["--steps", "at most 100000", "hours"]),
    (["cnn", "--epochs", "1" + "0" * 30], ["--epochs", "at most 1000", "30 epochs"]),
    (["cnn", "--seeds", "5001"], ["--seeds", "at most 5000", "training run"]),
    (["all", "--steps", "100001"], ["--steps", "at most 100000"]),
    (["speed", "--rounds", "10001"], ["--rounds", "at most 10000"]),
    (["functions", "--out", ""], ["--out", "''", "--out ."]),
    (["report", "--out", ""], ["--out", "''", "--out ."]),
]
"""Bad values that would start a run if they got past the parser (a huge one, or one into the current
directory): checked on the parser alone, so that a regression fails instead of starting that run."""


@pytest.mark.parametrize("argv, expected", PARSER_ERRORS, ids=[" ".join(a) for a, _ in PARSER_ERRORS])
def test_values_refused_by_the_parser_are_one_line(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"optbench {argv[0]}: error: argument"), err
    for text in expected:
        assert text in err, (text, err)


COUNTS = [
    ("functions", "--seeds", cli.MAX_SEEDS),
    ("saddles", "--steps", cli.MAX_STEPS),
    ("cnn", "--seeds", cli.MAX_SEEDS),
    ("cnn", "--epochs", cli.MAX_EPOCHS),
    ("all", "--epochs", cli.MAX_EPOCHS),
    ("speed", "--rounds", cli.MAX_ROUNDS),
]


@pytest.mark.parametrize("command, option, limit", COUNTS, ids=[f"{c} {o}" for c, o, _ in COUNTS])
def test_counts_are_bounded_with_the_reason(command, option, limit, capsys):
    """The limit itself is taken; above it, even past what int() parses, one line gives limit and why."""
    parser = cli.build_parser()
    assert getattr(parser.parse_args([command, option, str(limit)]), option[2:]) == limit
    for too_many in (str(limit + 1), str(10**30), "9" * 5000):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, option, too_many])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and len(err) < 400, err
        assert f"{option}: must be at most {limit}, got '{too_many[:10]}" in err, err


# -- damaged inputs and outputs -----------------------------------------------------------------------
@pytest.mark.parametrize("damage", DAMAGES, ids=[d.desc for d in DAMAGES])
def test_damaged_dataset_file_is_one_line_and_exit_status_2(damage, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    path = damage.make(str(data))
    argv = ["cnn", "--dataset", damage.dataset, "--data-dir", str(data), "--out", str(out), "--no-progress"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"optbench cnn: error: damaged {damage.dataset} file"), err
    assert path in err and damage.expected in err and "--dataset mnist1d" in err, err
    assert not os.path.exists(out / "cnn" / "runs")  # refused before any training


def test_damaged_dataset_from_the_shell_has_no_traceback(tmp_path):
    damage = next(d for d in DAMAGES if d.desc == "cifar truncated")
    path = damage.make(str(tmp_path / "data"))
    proc = _optbench(
        "cnn", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path)
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and err.count("\n") == 1 and path in err and "Traceback" not in err, err


def test_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch, tiny_workload, capsys):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # the last step of every atomic write
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*TINY_SPEED, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    unit = os.path.join(tmp_path, "speed", "units", "cpu-adam-tiny.unit.pkl")
    assert err.count("\n") == 1 and err.startswith("optbench speed: error: No space left on device"), err
    assert unit in err and "run the same command again" in err, err
    assert os.listdir(os.path.dirname(unit)) == []


def test_folder_where_a_result_file_goes_is_one_line(tmp_path, tiny_workload, capsys):
    csv = tmp_path / "speed" / "speed_cpu.csv"
    csv.mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*TINY_SPEED, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"Is a directory: {csv};" in err, err
    assert not [f for f in os.listdir(csv.parent) if f.endswith(".tmp")]

    csv.rmdir()  # the measurement was kept: the rerun only writes the files
    cli.main([*TINY_SPEED, "--out", str(tmp_path)])
    assert "(1 of 1 measurements loaded)" in capsys.readouterr().out
    assert len(pd.read_csv(csv)) > 0


def test_closed_output_pipe_ends_quietly(tmp_path, tiny_workload):
    """`optbench report | head`: the reader is gone before optbench writes; it stops with 128 + SIGPIPE
    and says nothing (no traceback, no 'Exception ignored')."""
    cli.main([*TINY_SPEED, "--out", str(tmp_path)])
    proc = _optbench("report", "speed", "--no-plots", "--out", str(tmp_path))
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 128 + signal.SIGPIPE, err
    assert err == ""


def test_non_utf8_cnn_run_file_is_trained_again(tmp_path, capsys):
    """A run file that is not text at all is one more damaged run file: trained again, like garbage."""
    pytest.importorskip("benchmarks.cnn")
    argv = ["cnn", "--quick", "--optimizers", "SGD", "--seeds", "1", "--epochs", "1", "--no-plots"]
    argv += ["--no-progress", "--jobs", "1", "--out", str(tmp_path)]
    cli.main(argv)
    first = pd.read_csv(tmp_path / "cnn" / "cnn_epochs.csv")
    runs = tmp_path / "cnn" / "runs"
    spoiled = sorted(os.listdir(runs))[0]
    (runs / spoiled).write_bytes(b"stage,optimizer\n\xff\xfe\x80\x81 garbage\n")
    capsys.readouterr()
    cli.main(argv)
    assert f"cnn: 1 runs trained, {len(os.listdir(runs)) - 1} loaded" in capsys.readouterr().out
    again = pd.read_csv(tmp_path / "cnn" / "cnn_epochs.csv")
    timing = [c for c in first.columns if c.endswith("_seconds") or c == "step_ms"]
    pd.testing.assert_frame_equal(first.drop(columns=timing), again.drop(columns=timing))


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
    assert [re.sub(r"-[0-9a-f]{12}\.unit\.pkl$", "", u) for u in _units(units)] == ["1-search"]
    assert not os.path.exists(os.path.join(out, "functions", "runs.csv"))

    calls.clear()
    armed[0] = False
    cli.main([*QUICK_FUNCTIONS, "--out", out])
    assert len(calls) == 2  # refine and final; the search stage was loaded
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
    assert not runs.duplicated(["stage", "optimizer", "problem", "lr", "hyperparams", "seed"]).any()
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
    assert set(runs.stage) == {"search", "refine", "final", "default"}
    assert set(runs.budget) == {cli.QUICK_SWEEP["steps"]}
    for column in PROVENANCE:
        assert column == "cuda_version" or runs[column].notna().all(), column
    md = open(os.path.join(reference, "convergence.md")).read()
    assert md.startswith("# Convergence on test functions\n\nMade by `")
    assert "## Tuned hyperparameters" in md


def test_quick_saddles_with_plots(tmp_path, capsys):
    from PIL import Image

    cli.main(["saddles", "--quick", "--no-progress", "--optimizers", "SGD", "Adam", "--out", str(tmp_path)])
    written = capsys.readouterr().out.split()
    folder = tmp_path / "saddles"
    runs = pd.read_csv(folder / "runs.csv")
    assert list(dict.fromkeys(runs.problem)) == list(problems.SADDLES)
    assert runs.escaped.notna().all()
    assert set(runs.stage) == {"lr-curve", "default"}  # escape against lr, not one tuned lr
    assert (folder / "convergence.md").read_text().startswith("# Escaping saddles\n")
    pngs = [p for p in written if p.endswith(".png")]
    assert {os.path.basename(p) for p in pngs} >= {"escape_vs_lr.png", "trajectories_monkey-saddle.png"}
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
    assert (optimizers, seeds, epochs, dataset, data_dir) == (["Adam"], None, None, "mnist1d", None)
    assert out == os.path.join(str(tmp_path), "cnn")
    expected = {"device": "cpu", "quick": True, "progress": False, "schedule": "constant", "jobs": None}
    assert seen["kwargs"] == expected
    argv = ["cnn", "--schedule", "cosine", "--jobs", "3", "--seeds", "7", "--no-progress"]
    argv += ["--out", str(tmp_path)]
    cli.main(argv)
    assert seen["args"][1] == 7 and seen["kwargs"]["schedule"] == "cosine" and seen["kwargs"]["jobs"] == 3


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
