"""The README's result blocks are rewritten from results/ files, idempotently, and nothing else changes."""

import pandas as pd

from benchmarks.readme import update_readme

REPORT = (
    "# Title\n\nMade by `optbench all` at commit `abc`.\n\n## {heading}\n\n"
    "intro\n\n| a | b |\n|---|---|\n| {cell} | 2 |\n\nprofile\n\n| c |\n|---|\n| {cell}-2 |\n\nafter\n"
)


def _results(tmp_path, cell):
    for part, heading in (("functions", "Tuned hyperparameters"), ("saddles", "Escape against lr")):
        (tmp_path / part).mkdir(parents=True, exist_ok=True)
        (tmp_path / part / "convergence.md").write_text(REPORT.format(heading=heading, cell=cell))
    (tmp_path / "cnn").mkdir(exist_ok=True)
    (tmp_path / "cnn" / "cnn.md").write_text(REPORT.format(heading="Results", cell=cell))
    (tmp_path / "speed").mkdir(exist_ok=True)
    meta = dict(
        command="optbench all",
        git_commit="abc",
        package_version="0.1.0",
        torch_version="2.13",
        device="cpu",
        threads=2,
        workload="16M",
        rule="adam",
        pct_of_floor=100.0,
    )
    meta["per_round"] = 1
    noisy = dict(meta, rule="momentum")  # two sides whose samples overlap: parity
    pd.DataFrame(
        [
            {**meta, "implementation": "ours", "ms_median": 10.0, "samples_ms": "10 10 10 10"},
            {
                **meta,
                "implementation": "torch-fused",
                "ms_median": 12.0,
                "pct_of_floor": 80.0,
                "samples_ms": "12 12 12 12",
            },
            {**noisy, "implementation": "ours", "ms_median": 10.0, "samples_ms": "9 11 10 12 8 10"},
            {**noisy, "implementation": "torch-fused", "ms_median": 10.0, "samples_ms": "11 9 10 8 12 10"},
        ]
    ).to_csv(tmp_path / "speed" / "speed_cpu.csv", index=False)
    return str(tmp_path)


def test_blocks_follow_results_and_rewrite_idempotently(tmp_path):
    readme = tmp_path / "README.md"
    names = ("speed", "functions", "saddles", "cnn")
    readme.write_text(
        "intro\n" + "".join(f"<!-- optbench:{n} -->\nold\n<!-- /optbench:{n} -->\ntext\n" for n in names)
    )
    results = _results(tmp_path / "results", cell="first")
    assert update_readme(results, str(readme))
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.count("\ntext\n") == 4
    assert text.count("| first | 2 |") == 3  # functions, saddles, cnn tables copied
    assert text.count("| first-2 |") == 1  # functions: its second table (the performance profile) too
    assert text.count("intro") == 4  # each with the line above it that says what the cells are
    # Each speedup with its bootstrap interval (here every round gives 12 ÷ 10); parity where it holds 1.
    assert "| 16M | adam | 10.00 | 100% | torch-fused | 12.00 | 80% | 1.20× (1.20–1.20) |" in text
    momentum = next(line for line in text.splitlines() if line.startswith("| 16M | momentum |"))
    assert momentum.startswith("| 16M | momentum | 10.00 | 100% | torch-fused | 10.00 | 100% | 1.00× (")
    assert momentum.endswith("), parity |")
    assert not update_readme(results, str(readme))  # same results: unchanged
    update_readme(_results(tmp_path / "results", cell="second"), str(readme))
    assert readme.read_text().count("| second | 2 |") == 3 and "first" not in readme.read_text()
