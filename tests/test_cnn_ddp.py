"""Data-parallel CNN training: two processes under torchrun on loopback (gloo), after a few epochs every
rank holds the same parameters, BN buffers and optimizer state (exp_avg, exp_avg_sq, step, ...)."""

from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest
import torch
import torch.distributed as dist

from benchmarks.metadata import REPO
from tests.helpers import torchrun_command

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo")


@pytest.mark.parametrize("optimizer", ["DiffGrad", "Nesterov"])
def test_two_ranks_stay_identical(tmp_path, optimizer):
    state_dir, out = tmp_path / "state", tmp_path / "out"
    command = torchrun_command(
        "-m",
        "benchmarks.cnn.ddp",
        "--optimizer",
        optimizer,
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--save-state",
        str(state_dir),
        "--out",
        str(out),
    )
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "replicas identical" in done.stdout

    ranks = [torch.load(state_dir / f"rank{r}.pt") for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    state = {k for k in ranks[0] if k.startswith("state ")}
    expected = "exp_avg" if optimizer == "DiffGrad" else "momentum_buffer"
    assert any(k.endswith(f".{expected}") for k in state), sorted(state)
    assert any(k.startswith("buffer ") and k.endswith("running_mean") for k in ranks[0])
    for name, tensor in ranks[0].items():
        assert torch.equal(tensor, ranks[1][name]), name
    # the replicas trained: the state moved away from zero
    assert all(ranks[0][k].abs().sum() > 0 for k in state if k.endswith(f".{expected}"))

    rows = pd.read_csv(out / "ddp_epochs.csv")
    assert rows.epoch.tolist() == [1, 2] and (rows.world_size == 2).all() and rows.replicas_identical.all()
    assert rows.test_accuracy.iloc[-1] > 0.7
    # each rank took batches of 32 from its half of the images
    per_rank = -(-int(rows.train_size.iloc[0]) // 2)
    assert rows.steps.iloc[-1] == 2 * -(-per_rank // 32)
