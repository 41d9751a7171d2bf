"""FSDP2 (fully_shard: DTensor params and state) with the fused kernels, two processes under torchrun
on gloo: the same result as torch.optim's rule (or our reference path, which runs DTensor ops) on
the same sharded model, a DCP checkpoint resume that continues exactly, and a clear error where a
state tensor is placed unlike its param. The worker is tests/distributed/fsdp2_worker.py."""

from __future__ import annotations

import os
import subprocess

import pytest
import torch
import torch.distributed as dist

from benchmarks.metadata import REPO
from tests.helpers import PARITY_TOL, rel_diff, torchrun_command
from tests.optim_db import CLASSES

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo")

NAMES = [cls.__name__ for cls in CLASSES]  # the worker runs every class of tests/optim_db.py


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("fsdp2")
    command = torchrun_command(
        os.path.join(REPO, "tests", "distributed", "fsdp2_worker.py"), "--out", str(out)
    )
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return torch.load(out / "results.pt")


def test_two_ranks_ran(results):
    assert results["world_size"] == 2


@pytest.mark.parametrize("name", NAMES)
def test_fused_step_on_dtensor_params_matches_the_reference(results, name):
    """The state is sharded as its params (DTensors), and the trained params match torch.optim's
    (where it has the rule) and our reference path's, at the package's fp32 parity tolerance."""
    case = results[name]
    assert "DTensor" in case["state_types"]
    references = [case["reference"]] + ([case["torch"]] if "torch" in case else [])
    for reference in references:
        for ours, ref in zip(case["fused"], reference, strict=True):
            assert rel_diff(ours, ref) <= PARITY_TOL[torch.float32]


@pytest.mark.parametrize("name", NAMES)
def test_dcp_resume_continues_exactly(results, name):
    case = results[name]
    for uninterrupted, resumed in zip(case["fused"], case["resumed"], strict=True):
        assert torch.equal(uninterrupted, resumed)


def test_a_state_placed_unlike_its_param_is_refused(results):
    assert "one mesh and one placement" in results["mismatch_error"]
