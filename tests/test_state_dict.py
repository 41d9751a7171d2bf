"""Checkpoints: ours resume bitwise on CPU, survive torch.save/torch.load, and interoperate with
torch.optim's state_dicts in both directions."""

import copy
import io

import pytest
import torch

from tests.helpers import (
    PARITY_TOL,
    all_params,
    assert_optimizers_close,
    assert_optimizers_equal,
    clone_params,
    make_params,
    run_lockstep,
)
from tests.optim_db import OPTIM_DB, configs, info_of, params_for

CHECKPOINTED = configs("checkpoints")


def _through_torch_save(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer)  # weights_only=True: a checkpoint must hold only plain data and tensors


# deepcopy: load_state_dict copies only shallowly, so without it the two optimizers would share state tensors.
TRANSPORTS = [pytest.param(copy.deepcopy, id="in memory"), pytest.param(_through_torch_save, id="torch.save")]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("config", params_for(CHECKPOINTED))
def test_resume_from_state_dict_is_bitwise_identical(config, transport, fused):
    first = config.build(make_params(), fused)
    run_lockstep([first], 5, seed=1)
    saved = transport(first.state_dict())

    resumed = config.build(clone_params(all_params(first)), fused)  # fresh params, copied
    resumed.load_state_dict(saved)
    assert_optimizers_equal(first, resumed)
    run_lockstep([first, resumed], 5, seed=2)
    assert_optimizers_equal(first, resumed)
    assert resumed.param_groups[0]["fused"] is fused


# Configs of the classes whose checkpoints interchange with torch.optim's.
TORCH_CHECKPOINTS = [
    c for info in OPTIM_DB if info.supports_torch_checkpoints for c in info.torch.checkpoints
]


def _interop_params():
    # Without the 1-element param: after only 25 steps its grad_avg (a mean of random grads) can be
    # near 0 by cancellation, where torch's lerp and the doc's a*x + (1-a)*g round differently by
    # more than 1e-5 of the value. The sizes themselves are covered by the parity tests.
    return make_params()[2:]


@pytest.mark.parametrize("config", params_for(TORCH_CHECKPOINTS))
def test_torch_checkpoint_loads_into_ours(config, fused):
    """A torch.optim state_dict, loaded into ours, continues like torch itself does."""
    theirs = config.build_reference(_interop_params())
    run_lockstep([theirs], 5, seed=1)
    ours = config.build(clone_params(all_params(theirs)), fused)
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))
    for key in ours.defaults:
        assert key in ours.param_groups[0], key  # our own hyperparameters are filled in
    for group in ours.param_groups:
        # torch.optim.Adam's checkpoint carries its own `fused` flag (None: auto), which replaces ours
        # on load, as load_state_dict replaces every group hyperparameter; choose the path under test.
        group["fused"] = fused
    run_lockstep([ours, theirs], 20, seed=2)
    assert_optimizers_close(ours, theirs, PARITY_TOL[torch.float32])


@pytest.mark.parametrize("config", params_for(TORCH_CHECKPOINTS))
def test_our_checkpoint_loads_into_torch(config, fused):
    ours = config.build(_interop_params(), fused)
    run_lockstep([ours], 5, seed=1)
    sd = copy.deepcopy(ours.state_dict())
    for group in sd["param_groups"]:
        group["fused"] = None  # our fused=True/False flag means something else to torch
    theirs = info_of(config.cls).torch.cls(clone_params(all_params(ours)), lr=0.01)
    theirs.load_state_dict(sd)
    run_lockstep([ours, theirs], 20, seed=2)
    assert_optimizers_close(ours, theirs, PARITY_TOL[torch.float32])
