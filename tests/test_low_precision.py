"""bf16/fp16 params, flash-attention's rule: our error against a float64 run (same initial values,
same gradients) is at most twice the error of the reference run natively at that precision
(torch.optim, or the oracle of tests/oracles.py where torch lacks the rule)."""

import math

import pytest
import torch

from tests.helpers import all_params, clone_params, make_params, rel_diff, run_lockstep
from tests.optim_db import configs, fp16_safe, params_for

STEPS = 100
ERROR_FACTOR = 2.0
SLACK = 1e-6  # only matters if both errors were ~0


def _as_one_vector(opt) -> torch.Tensor:
    """All params as one float64 vector: the error of the whole param set, not of its smallest tensor."""
    return torch.cat([p.detach().reshape(-1).to(torch.float64) for p in all_params(opt)])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("config", params_for(configs("low_precision")))
def test_error_bounded_by_native_low_precision_error(config, dtype, fused):
    if dtype == torch.float16:
        config = fp16_safe(config)
    low = make_params(dtype)
    ours = config.build(clone_params(low), fused)
    native = config.build_reference(clone_params(low))
    exact = config.build_reference(clone_params(low, torch.float64))
    run_lockstep([ours, native, exact], STEPS, round_through=dtype)

    for p in all_params(ours):
        assert p.dtype == dtype
    for state in ours.state.values():
        for name, value in state.items():
            if name != "step":
                assert value.dtype == dtype, name
    truth = _as_one_vector(exact)
    our_error = rel_diff(_as_one_vector(ours), truth)
    native_error = rel_diff(_as_one_vector(native), truth)
    assert math.isfinite(native_error) and native_error > 0
    assert our_error <= ERROR_FACTOR * native_error + SLACK, (our_error, native_error)
