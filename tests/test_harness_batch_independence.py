"""A run's record does not depend on which other runs share its batch, on any problem: the same run
(spec, lr, seed) alone and inside a full batch (every problem, several optimizers, lrs and seeds) gives
the same row, bit for bit. Objectives must compute every run's value and gradient independently of the
batch's size and layout, and noisy problems must draw each run's noise from its own seed and step."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from benchmarks import optimizer_specs
from benchmarks import problems as registry
from benchmarks.convergence.runner import Slab, run_batch
from benchmarks.problems import DEFAULT_START

STEPS = 200
SEEDS = (3, 1008, 11, DEFAULT_START, 5)
LRS = (1e-3, 2e-2)
COLUMNS = ["status", "stop_step", "final_loss", "final_gap", "final_dist", "steps_to_threshold"]
NAMES = list(registry.FACTORIES)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The sweep's setting; on a shared 2-core machine a second thread mostly waits (8 ms per product)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def full_batch():
    """Every problem; every default optimizer at two lrs; five seeds: 16 slabs x 5 runs per problem."""
    problems = registry.get(NAMES)
    slabs = [Slab.uniform(spec, lr, problems, SEEDS) for spec in optimizer_specs.get() for lr in LRS]
    return run_batch(problems, slabs, STEPS).runs


def _lone_candidates(runs: pd.DataFrame, name: str, count: int = 3) -> pd.DataFrame:
    """The problem's longest-running runs (most steps to compare), from different optimizers, none from
    the batch's first slab or first seed (whose place in the batch is most like a lone run's)."""
    rows = runs[(runs.problem == name) & (runs.run % len(SEEDS) != 0) & (runs.run >= len(runs) // 16)]
    rows = rows.sort_values(["stop_step", "run"], ascending=[False, True])
    return rows.drop_duplicates("optimizer").head(count)


@pytest.mark.parametrize("name", NAMES)
def test_lone_run_matches_the_same_run_in_a_full_batch(full_batch, name):
    candidates = _lone_candidates(full_batch, name)
    assert len(candidates) == 3
    for row in candidates.itertuples():
        problem = registry.get([name])[0]
        spec = optimizer_specs.SPECS[row.optimizer]
        alone = run_batch([problem], [Slab.uniform(spec, row.lr, [problem], (row.seed,))], STEPS).runs.iloc[0]
        for column in COLUMNS:
            mine, batched = alone[column], getattr(row, column)
            same = (pd.isna(mine) and pd.isna(batched)) or mine == batched
            assert same, (
                f"{name} {row.optimizer} lr={row.lr} seed={row.seed}: {column} {mine!r} != {batched!r}"
            )
